// The CUDA ladders' benchmarks (part of locality_bench).
#pragma once

#include <atomic>

namespace locality::bench {

// Registers gpu/matmul/<variant|cublas>/<m>x<n>x<k> for every GPU rung and
// cuBLAS, where a device is present; without one, throws cli::UsageError
// when `required` (--locality_family=gpu), else says why on stderr. A wrong
// result sets `failed`.
void register_gpu_matmul(bool required, std::atomic<bool>& failed);

// Registers gpu/attention/<variant|cublas>/<batch>x<heads>x<seq>x<seq>x<d>/causal:<0|1>
// for every GPU attention rung (up to its largest_timed) and the unfused
// cuBLAS peer, where a device is present (register_gpu_matmul says why not).
void register_gpu_attention(std::atomic<bool>& failed);

// Registers gpu/matmul_bf16/<variant|cublas>/<m>x<n>x<k> for every
// tensor-core rung this device runs (others are named on stderr, with the
// reason) on the shapes its rule for k and n allows, and the cuBLASLt peer.
void register_gpu_bf16_matmul(std::atomic<bool>& failed);

// Frees the device memory the benchmarks keep between runs (call before exit,
// while CUDA is still up).
void release_gpu_problems();

}  // namespace locality::bench

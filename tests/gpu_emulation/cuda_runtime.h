// The CUDA runtime as the emulation needs it: the GPU rungs' kernels run on
// the CPU, each CUDA thread as a std::thread, the blocks of a launch one
// after another (tests/gpu_emulation/rewrite.py turns a rung's launches into
// locality::emu::launch). __syncthreads is a barrier of the block's threads,
// __syncwarp and the shuffles go through a barrier of the warp's 32, and
// shared memory is one buffer the block's threads share. Enough for kernels
// written against CUDA's documented semantics to compute what they would on
// a GPU; nothing about their speed, and nothing a data race would do
// differently on hardware (compute-sanitizer's racecheck is for that).
#pragma once

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __grid_constant__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
struct float2 {
  float x, y;
};
inline float2 make_float2(float a, float b) { return {a, b}; }
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }

namespace locality::emu {

// A block's shared memory (the dynamic part; static __shared__ arrays become
// function statics, shared by the block's threads the same way).
inline constexpr std::size_t kSharedBytes = 228 * 1024;
struct alignas(1024) Shared {  // as the swizzles' atoms need
  unsigned char bytes[kSharedBytes];
};
inline Shared shared;

struct Warp {
  std::barrier<> barrier{32};
  std::uint64_t slots[32];
};
inline std::barrier<>* block_barrier = nullptr;
// Checks run between blocks, when every thread has finished the last one
// (the emulated instructions register theirs: a named barrier left half
// arrived, say).
inline std::vector<void (*)()> between_blocks;
inline std::vector<std::unique_ptr<Warp>> warps;

// A thread's place in its block, x fastest (as CUDA numbers threads into
// warps), and its lane.
inline thread_local unsigned thread_rank;
inline unsigned lane() { return thread_rank % 32; }

inline Warp& my_warp() { return *warps[thread_rank / 32]; }

// Every lane's `value`, in lane order: the primitive the shuffles and the
// warp-wide PTX instructions are built on. All 32 lanes must call it.
inline std::vector<std::uint64_t> exchange(std::uint64_t value) {
  Warp& w = my_warp();
  w.slots[lane()] = value;
  w.barrier.arrive_and_wait();
  std::vector<std::uint64_t> all(w.slots, w.slots + 32);
  w.barrier.arrive_and_wait();
  return all;
}

// Runs `body` as grid.x x grid.y blocks of `block_dim` threads (1-, 2- or
// 3-D, a multiple of 32 in all), block after block, on one team of as many
// CPU threads made once per launch. Shared memory is refilled with 0xff
// bytes (NaN as floats) before each block, so a kernel that reads what it
// never wrote shows it.
inline void launch(dim3 grid, dim3 block_dim, std::size_t shared_bytes,
                   const std::function<void()>& body) {
  const unsigned block = block_dim.x * block_dim.y * block_dim.z;
  if (shared_bytes > kSharedBytes || block % 32 != 0 || block == 0) std::abort();
  gridDim = grid;
  blockDim = block_dim;
  const std::uint64_t blocks = std::uint64_t{grid.x} * grid.y;
  std::uint64_t next = 0;  // the block the team starts on its next round
  bool done = false;
  // Runs once per round, after every thread finished the previous block.
  auto start_block = [&]() noexcept {
    for (auto check : between_blocks) check();
    done = next == blocks;
    if (!done) std::memset(shared.bytes, 0xff, sizeof shared.bytes);
    ++next;
  };
  std::barrier<decltype(start_block)> round(block, start_block);
  std::barrier<> barrier(block);
  block_barrier = &barrier;
  warps.clear();
  for (unsigned w = 0; w < block / 32; ++w) warps.push_back(std::make_unique<Warp>());
  std::vector<std::thread> threads;
  threads.reserve(block);
  for (unsigned t = 0; t < block; ++t) {
    threads.emplace_back([&, t] {
      thread_rank = t;
      threadIdx =
          dim3(t % block_dim.x, t / block_dim.x % block_dim.y, t / (block_dim.x * block_dim.y));
      for (;;) {
        round.arrive_and_wait();
        if (done) return;
        const std::uint64_t b = next - 1;
        blockIdx = dim3(static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x));
        body();
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace locality::emu

inline void __syncthreads() { locality::emu::block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  locality::emu::my_warp().barrier.arrive_and_wait();
}

inline float __shfl_xor_sync(unsigned, float value, int lane_mask) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const std::uint64_t other = locality::emu::exchange(bits)[locality::emu::lane() ^ lane_mask];
  const auto other_bits = static_cast<std::uint32_t>(other);
  float out;
  std::memcpy(&out, &other_bits, 4);
  return out;
}

template <typename T>
T __shfl_sync(unsigned, T value, int src_lane) {
  static_assert(sizeof(T) <= 8);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof value);
  bits = locality::emu::exchange(bits)[static_cast<unsigned>(src_lane) % 32];
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

inline bool __any_sync(unsigned, bool predicate) {
  for (const std::uint64_t p : locality::emu::exchange(predicate ? 1 : 0)) {
    if (p != 0) return true;
  }
  return false;
}

inline float __uint_as_float(unsigned x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline int min(int a, int b) { return a < b ? a : b; }
// CUDA's math functions that <cmath> has only in std.
using std::isfinite;

// The device's multiprocessor count, small, so that a persistent grid's
// blocks each take several tiles.
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
inline constexpr int kEmulatedMultiprocessors = 3;
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
  *value = kEmulatedMultiprocessors;
  return cudaSuccess;
}

inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

// Device memory is host memory here: copies and fills are memcpy and memset.
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
inline cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}

template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int bytes) {
  return bytes <= static_cast<int>(locality::emu::kSharedBytes) ? cudaSuccess : 1;
}

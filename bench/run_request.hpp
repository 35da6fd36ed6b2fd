// `locality run ...` parsed: what to run, at which size, how, and the memory
// it will need. Parsing allocates nothing and touches no kernel, so the
// fuzzer (tests/fuzz/) can drive it with any argument list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "locality/attention.hpp"
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"

namespace locality::cli {

struct RunRequest {
  const MatmulVariant* matmul = nullptr;        // set for `run matmul` on the CPU
  const gpu::GpuMatmulVariant* gpu_matmul = nullptr;  // set for `run matmul ... --device gpu`
  bool gpu = false;                             // --device gpu
  const AttentionVariant* attention = nullptr;  // set for `run attention`
  std::int64_t m = 512, n = 512, k = 512;
  AttentionShape shape{1, 1, 1024, 1024, 64};
  AttentionOptions options;
  int threads = 1;
  std::int64_t repeat = 1;  // 0: build the inputs, call nothing
  bool verify = true;
  std::uint64_t workspace_bytes = 0;  // attention: what the rung asks for
  std::uint64_t bytes = 0;            // everything the run allocates, reference included
};

// The arguments after `run` (family, variant, flags). Throws UsageError, with
// a one-line message, for anything it cannot run; never anything else.
RunRequest parse_run(const std::vector<std::string>& args);

}  // namespace locality::cli

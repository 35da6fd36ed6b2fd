// `locality`'s command line (CLI11) parsed: what to run, at which size, how,
// and the memory it will need. Parsing allocates nothing and touches no
// kernel, so the fuzzer (tests/fuzz/) can drive it with any argument list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "locality/attention.hpp"
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"

namespace locality::cli {

struct RunRequest {
  const MatmulVariant* matmul = nullptr;                    // set for `run matmul` on the CPU
  const gpu::GpuMatmulVariant* gpu_matmul = nullptr;        // set for `run matmul ... --device gpu`
  bool gpu = false;                                         // --device gpu
  const AttentionVariant* attention = nullptr;              // set for `run attention` on the CPU
  const gpu::GpuAttentionVariant* gpu_attention = nullptr;  // `run attention ... --device gpu`
  const gpu::GpuBf16MatmulVariant* gpu_bf16 = nullptr;      // `run matmul_bf16 ...`
  const gpu::GpuBf16AttentionVariant* gpu_bf16_attention = nullptr;  // `run attention_bf16 ...`
  std::int64_t m = 512, n = 512, k = 512;
  AttentionShape shape{1, 1, 1024, 1024, 64};
  AttentionOptions options;
  int threads = 1;
  std::int64_t repeat = 1;  // 0: build the inputs, call nothing
  bool verify = true;
  bool verbose = false;               // --verbose: the caches and blocks too
  std::uint64_t workspace_bytes = 0;  // attention: what the rung asks for
  std::uint64_t bytes = 0;            // everything the run allocates, reference included
};

// A whole command line of `locality` (without the program name), parsed by
// CLI11: `list`, `caches`, `run <family> <variant> [options]`, or a request
// for help.
struct Command {
  bool list = false;  // `locality list`
  enum class Caches { no, text, json };
  Caches caches = Caches::no;     // `locality caches [--json]`
  std::optional<RunRequest> run;  // `locality run ...`
  std::string help;               // --help at any level (or no command): the usage to print
  bool usage_error = false;       // no command at all: print the usage, then exit 2
};

// Throws UsageError, with a one-line message, for anything it cannot run;
// never anything else.
Command parse_command(const std::vector<std::string>& args);

// The arguments after `run` (family, variant, flags), as parse_command reads
// them (what the fuzzer drives).
RunRequest parse_run(const std::vector<std::string>& args);

}  // namespace locality::cli

// libFuzzer target: arbitrary argument lists through `locality run`'s parser
// (bench/run_request.cpp) and the number parsers both tools share
// (bench/cli_args.cpp). The input is split into arguments at NUL bytes, the
// one byte no argument can hold, so arguments carry any other byte (newlines
// and control characters included: an error message must still be one line). A parse
// either succeeds with a request that is safe to run or throws UsageError;
// anything else (another exception, a sanitizer report, a broken invariant)
// is a finding. Built by the `fuzz` preset (clang); run by tests/fuzz/run.sh.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cli_args.hpp"
#include "run_request.hpp"

namespace {

using locality::cli::UsageError;

void require(bool ok) {
  if (!ok) std::abort();  // libFuzzer saves the input that got here
}

void check_request(const locality::cli::RunRequest& r) {
  const int gpu_rungs = (r.gpu_matmul != nullptr) + (r.gpu_bf16 != nullptr) +
                        (r.gpu_attention != nullptr) + (r.gpu_bf16_attention != nullptr);
  require((r.matmul != nullptr) + (r.attention != nullptr) + gpu_rungs == 1);
  require(r.gpu == (gpu_rungs == 1));
  require(r.threads >= 1 && r.threads <= locality::kMaxThreads);
  require(r.repeat >= 0);
  require(r.bytes > 0);
  if (r.matmul || r.gpu_matmul || r.gpu_bf16) {
    require(r.m >= 1 && r.n >= 1 && r.k >= 1);
  } else {
    const locality::AttentionShape& s = r.shape;
    require(s.batch >= 1 && s.heads >= 1 && s.seq_q >= 1 && s.seq_kv >= 1);
    require(s.head_dim >= 1 && s.head_dim <= locality::kMaxHeadDim);
    require(r.bytes >= r.workspace_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\0', start), text.size());
    args.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  try {
    check_request(locality::cli::parse_run(args));
  } catch (const UsageError& e) {
    require(!e.message.empty() && e.message.find('\n') == std::string::npos);
  }
  try {
    for (std::int64_t x : locality::cli::parse_list(args[0], -5, 1 << 20, "list")) {
      require(x >= -5 && x <= (1 << 20));
    }
  } catch (const UsageError&) {
  }
  try {
    const float x = locality::cli::parse_float(args[0], "number");
    require(x == x && x - x == 0.0f);  // finite
  } catch (const UsageError&) {
  }
  return 0;
}

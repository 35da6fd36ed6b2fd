// locality: list the rungs, or run one once (or a few times) and check it.
// The command line is CLI11's (bench/run_request.cpp); `locality --help`, and
// --help at every level, print it:
//
//   locality list
//   locality caches [--json]
//   locality run matmul <variant> [--size N | --m M --n N --k K] [--threads T]
//                                 [--repeat R] [--no-verify] [--verbose] [--device cpu|gpu]
//   locality run attention <variant> [--batch B] [--heads H] [--seq N | --seq-q N --seq-kv N]
//                                    [--head-dim D] [--causal] [--scale S] [--threads T]
//                                    [--repeat R] [--no-verify] [--verbose] [--device cpu|gpu]
//   locality run matmul_bf16 <variant> [--size N | --m M --n N --k K] [--repeat R] [--no-verify]
//   locality run attention_bf16 <variant> [attention's shape options, --head-dim 64 or 128]
//   (--device gpu, matmul_bf16 and attention_bf16: the CUDA ladders, `locality list` shows them)
//
// `run` with --repeat 1 calls the kernel exactly once, so it can run under
// valgrind; --no-verify also skips the Eigen reference, leaving only the
// kernel's own memory traffic to count; --repeat 0 builds the inputs and
// stops, the baseline a profiler subtracts (bench/cachegrind.py). Exit codes: 0 ok, 1 wrong result,
// 2 bad input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "flash.hpp"
#include "locality/attention.hpp"
#include "locality/caches.hpp"
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"
#include "microkernel.hpp"
#include "run_request.hpp"

namespace locality::cli {
namespace {

int list() {
  std::printf("%-11s %-5s %-16s %-6s %s\n", "family", "rung", "variant", "device", "lesson");
  const auto row = [](const char* family, int rung, std::string_view name, const char* device,
                      std::string_view lesson) {
    std::printf("%-11s %-5d %-16.*s %-6s %.*s\n", family, rung, static_cast<int>(name.size()),
                name.data(), device, static_cast<int>(lesson.size()), lesson.data());
  };
  for (const MatmulVariant& v : cpu::matmul_variants()) {
    row("matmul", v.rung, v.name, "cpu", v.lesson);
  }
  for (const AttentionVariant& v : cpu::attention_variants()) {
    row("attention", v.rung, v.name, "cpu", v.lesson);
  }
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) {
    row("matmul", v.rung, v.name, "gpu", v.lesson);
  }
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) {
    row("attention", v.rung, v.name, "gpu", v.lesson);
  }
  for (const gpu::GpuBf16MatmulVariant& v : gpu::bf16_matmul_variants()) {
    row("matmul_bf16", v.rung, v.name, "gpu", v.lesson);
  }
  for (const gpu::GpuBf16AttentionVariant& v : gpu::bf16_attention_variants()) {
    row("attention_bf16", v.rung, v.name, "gpu", v.lesson);
  }
  return 0;
}

// The blocks the packed, parallel and flash rungs cut for this machine's
// caches, one line each.
void print_blocks() {
  const CacheSizes& sizes = machine_cache_sizes();
  std::printf("blocks for L1d %lld KiB, L2 %lld KiB (%s):\n",
              static_cast<long long>(sizes.l1d_bytes >> 10),
              static_cast<long long>(sizes.l2_bytes >> 10), one_line(sizes.source).c_str());
  for (const cpu::MicroKernel& uk : cpu::available_microkernels()) {
    std::printf("  %-26.*s kc %td, mc %td, nc %td; flash kv_block %td%s\n",
                static_cast<int>(uk.name.size()), uk.name.data(), uk.kc, uk.mc, uk.nc,
                cpu::flash_kv_block(uk, sizes),
                &uk == &cpu::best_microkernel() ? "  (the rungs use this one)" : "");
  }
}

// A JSON string: quotes, backslashes and control characters escaped.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// `locality caches`: what read_caches() finds, as a table or as JSON; exit 2
// with one line where neither source answers.
int caches(bool json) {
  CacheReading reading;
  try {
    reading = read_caches();
  } catch (const CacheError& e) {
    throw UsageError{e.what()};
  }
  if (json) {
    std::printf("{\"source\": %s, \"caches\": [", json_string(reading.source).c_str());
    const char* sep = "";
    for (const Cache& c : reading.caches) {
      std::printf("%s\n  {\"level\": %d, \"type\": %s, \"size_bytes\": %lld, \"ways\": %lld, "
                  "\"line_bytes\": %lld}",
                  sep, c.level, json_string(c.type).c_str(), static_cast<long long>(c.size_bytes),
                  static_cast<long long>(c.ways), static_cast<long long>(c.line_bytes));
      sep = ",";
    }
    std::printf("\n]}\n");
    return 0;
  }
  std::printf("caches from %s:\n", one_line(reading.source).c_str());
  for (const Cache& c : reading.caches) {
    std::printf("  L%d %-11s %8lld KiB  %3lld-way  %lld B lines\n", c.level,
                one_line(c.type).c_str(), static_cast<long long>(c.size_bytes >> 10),
                static_cast<long long>(c.ways), static_cast<long long>(c.line_bytes));
  }
  print_blocks();
  return 0;
}

// What `run` does once parsed: a label, the FLOPs of one call, the call, and
// the check against Eigen. The data lives in `keep`, for the lambdas.
struct Job {
  std::string label;
  double flops = 0.0;
  std::function<void()> call;
  std::function<double()> seconds;  // one timed call; by default the wall clock around `call`
  std::function<VerifyResult()> verify;
  std::shared_ptr<void> keep;
};

struct MatmulData {
  Matrix<float> a, b, c;
};

Job matmul_job(const RunRequest& req) {
  const std::int64_t m = req.m, n = req.n, k = req.k;
  auto data = std::make_shared<MatmulData>(MatmulData{{m, k}, {k, n}, {m, n}});
  fill_random(data->a.view(), 1);
  fill_random(data->b.view(), 2);
  poison(data->c.view());
  Job job;
  job.keep = data;
  job.label = "matmul/" + std::string(req.matmul->name) + "  m=" + std::to_string(m) +
              " n=" + std::to_string(n) + " k=" + std::to_string(k);
  job.flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  job.call = [variant = req.matmul, data, threads = req.threads] {
    matmul(*variant, data->a.cview(), data->b.cview(), data->c.view(), threads);
  };
  job.verify = [data] { return verify_matmul(data->a.cview(), data->b.cview(), data->c.cview()); };
  return job;
}

struct AttentionData {
  std::vector<float> q, k, v, o, workspace;
};

Job attention_job(const RunRequest& req) {
  const AttentionShape& shape = req.shape;
  auto data = std::make_shared<AttentionData>();
  data->q.resize(shape.q_elements());
  data->o.resize(shape.q_elements());
  data->k.resize(shape.kv_elements());
  data->v.resize(shape.kv_elements());
  data->workspace.resize(req.workspace_bytes / sizeof(float));
  fill_random(std::span<float>(data->q), 1);
  fill_random(std::span<float>(data->k), 2);
  fill_random(std::span<float>(data->v), 3);
  poison(std::span<float>(data->o));
  Job job;
  job.keep = data;
  job.label = "attention/" + std::string(req.attention->name) +
              "  batch=" + std::to_string(shape.batch) + " heads=" + std::to_string(shape.heads) +
              " seq_q=" + std::to_string(shape.seq_q) + " seq_kv=" + std::to_string(shape.seq_kv) +
              " head_dim=" + std::to_string(shape.head_dim) +
              (req.options.causal ? " causal" : "") +
              "  workspace=" + std::to_string(req.workspace_bytes) + " B";
  job.flops = attention_flops(shape, req.options.causal);
  job.call = [variant = req.attention, data, shape, options = req.options, threads = req.threads] {
    attention(*variant, shape, data->q, data->k, data->v, data->o, options, threads,
              data->workspace);
  };
  job.verify = [data, shape, options = req.options] {
    return verify_attention(shape, data->q, data->k, data->v, data->o, options);
  };
  return job;
}

// On the GPU: the benchmark harness's problem (inputs on the device, L2
// flushed before each call), timed with CUDA events around each launch.
Job gpu_matmul_job(const RunRequest& req) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) throw UsageError{"run --device gpu: " + status.reason};
  const int m = static_cast<int>(req.m), n = static_cast<int>(req.n), k = static_cast<int>(req.k);
  auto bench = std::make_shared<gpu::MatmulBench>(m, n, k);
  const gpu::GpuMatmulVariant* variant = req.gpu_matmul;
  Job job;
  job.keep = bench;
  job.label = "matmul/" + std::string(variant->name) + " on " + status.name +
              "  m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
  job.flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  job.seconds = [bench, variant] { return bench->time_ms(*variant) * 1e-3; };
  job.verify = [bench, variant, m] { return bench->check(*variant, spread_rows(m, m)); };
  return job;
}

// The tensor-core ladder, likewise: its harness (bf16 inputs, cuBLASLt beside
// it), every row of C checked with the bf16 bound.
Job gpu_bf16_job(const RunRequest& req) {
  const gpu::GpuBf16MatmulVariant* variant = req.gpu_bf16;
  if (const std::string why = gpu::bf16_unavailable_reason(*variant); !why.empty()) {
    throw UsageError{"run matmul_bf16: " + why};
  }
  const int m = static_cast<int>(req.m), n = static_cast<int>(req.n), k = static_cast<int>(req.k);
  auto bench = std::make_shared<gpu::Bf16MatmulBench>(m, n, k);
  Job job;
  job.keep = bench;
  job.label = "matmul_bf16/" + std::string(variant->name) + " on " + gpu::query_device().name +
              "  m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
  job.flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  job.seconds = [bench, variant] { return bench->time_ms(*variant) * 1e-3; };
  job.verify = [bench, variant, m] { return bench->check(*variant, spread_rows(m, m)); };
  return job;
}

// The rows of O a GPU attention run checks: every row up to 2^27
// multiply-adds of the reference, else 64 spread over it.
std::ptrdiff_t checked_rows(const AttentionShape& shape) {
  const std::ptrdiff_t rows = shape.batch * shape.heads * shape.seq_q;
  const bool all = static_cast<double>(rows) * static_cast<double>(shape.seq_kv) *
                       static_cast<double>(shape.head_dim) <=
                   0x1p27;
  return all ? rows : 64;
}

// The GPU attention ladder, likewise: the benchmarks' problem, events around
// each call, the rows checked_rows names checked.
Job gpu_attention_job(const RunRequest& req) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) throw UsageError{"run --device gpu: " + status.reason};
  const AttentionShape& shape = req.shape;
  const bool causal = req.options.causal;
  auto bench = std::make_shared<gpu::AttentionBench>(shape, causal);
  const gpu::GpuAttentionVariant* variant = req.gpu_attention;
  Job job;
  job.keep = bench;
  job.label = "attention/" + std::string(variant->name) + " on " + status.name +
              "  batch=" + std::to_string(shape.batch) + " heads=" + std::to_string(shape.heads) +
              " seq_q=" + std::to_string(shape.seq_q) + " seq_kv=" + std::to_string(shape.seq_kv) +
              " head_dim=" + std::to_string(shape.head_dim) + (causal ? " causal" : "") +
              "  device workspace=" + std::to_string(req.workspace_bytes) + " B";
  job.flops = attention_flops(shape, causal);
  job.seconds = [bench, variant] { return bench->time_ms(*variant) * 1e-3; };
  job.verify = [bench, variant, shape] {
    const std::ptrdiff_t rows = shape.batch * shape.heads * shape.seq_q;
    return bench->check(*variant, spread_rows(rows, checked_rows(shape)));
  };
  return job;
}

// The bf16 attention ladder on the same harness (Q, K and V rounded to bf16
// on first use), checked with the bf16 bound on the same rows.
Job gpu_bf16_attention_job(const RunRequest& req) {
  const gpu::GpuBf16AttentionVariant* variant = req.gpu_bf16_attention;
  if (const std::string why = gpu::bf16_unavailable_reason(*variant); !why.empty()) {
    throw UsageError{"run attention_bf16: " + why};
  }
  const AttentionShape& shape = req.shape;
  const bool causal = req.options.causal;
  auto bench = std::make_shared<gpu::AttentionBench>(shape, causal);
  Job job;
  job.keep = bench;
  job.label = "attention_bf16/" + std::string(variant->name) + " on " + gpu::query_device().name +
              "  batch=" + std::to_string(shape.batch) + " heads=" + std::to_string(shape.heads) +
              " seq_q=" + std::to_string(shape.seq_q) + " seq_kv=" + std::to_string(shape.seq_kv) +
              " head_dim=" + std::to_string(shape.head_dim) + (causal ? " causal" : "");
  job.flops = attention_flops(shape, causal);
  job.seconds = [bench, variant] { return bench->time_ms(*variant) * 1e-3; };
  job.verify = [bench, variant, shape] {
    const std::ptrdiff_t rows = shape.batch * shape.heads * shape.seq_q;
    return bench->check(*variant, spread_rows(rows, checked_rows(shape)));
  };
  return job;
}

int run(const RunRequest& req) {
  require_memory(req.bytes, req.attention || req.gpu_attention || req.gpu_bf16_attention
                                ? "this attention"
                                : "this product");
  // The caches are read and the blocks cut once, on first use: here, with the
  // inputs, so that neither a timed call nor a profiled one (--repeat 1 less
  // --repeat 0, bench/cachegrind.py) counts the reading.
  if (!req.gpu) cpu::available_microkernels();
  Job job = req.gpu_matmul           ? gpu_matmul_job(req)
            : req.gpu_bf16           ? gpu_bf16_job(req)
            : req.gpu_attention      ? gpu_attention_job(req)
            : req.gpu_bf16_attention ? gpu_bf16_attention_job(req)
            : req.matmul             ? matmul_job(req)
                                     : attention_job(req);
  if (!job.seconds) {
    job.seconds = [call = job.call] {
      const auto t0 = std::chrono::steady_clock::now();
      call();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
  }

  std::vector<double> seconds;
  if (req.repeat == 0) {
    std::printf("%s  setup only (--repeat 0): inputs built, kernel not called\n",
                job.label.c_str());
    return 0;
  }
  for (std::int64_t r = 0; r < req.repeat; ++r) seconds.push_back(job.seconds());
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("%s  threads=%d  runs=%lld\n", job.label.c_str(), req.threads,
              static_cast<long long>(req.repeat));
  if (req.verbose && !req.gpu) print_blocks();
  std::printf("time: median %.6f s, best %.6f s\n", median, seconds.front());
  std::printf("rate: %.2f GFLOP/s (median), %.2f GFLOP/s (best)\n", job.flops / median * 1e-9,
              job.flops / seconds.front() * 1e-9);
  if (!req.verify) {
    std::printf("verify: skipped (--no-verify)\n");
    return 0;
  }
  const VerifyResult check = job.verify();
  std::printf("error vs Eigen (double): max %.3g, %.3g of the bound\n", check.max_error,
              check.max_bound_ratio);
  if (!check.ok) {
    std::printf("verify: FAILED: %s\n", check.message.c_str());
    return 1;
  }
  std::printf("verify: ok\n");
  return 0;
}

}  // namespace
}  // namespace locality::cli

int main(int argc, char** argv) {
  using namespace locality::cli;
  try {
    const Command command = parse_command({argv + 1, argv + argc});
    if (!command.help.empty()) {
      std::fputs(command.help.c_str(), stdout);
      // No command at all: the usage on stdout, and stderr keeps its promise of one line.
      if (command.usage_error) throw UsageError{"no command given (the usage is above)"};
      return 0;
    }
    if (command.list) return list();
    if (command.caches != Command::Caches::no)
      return caches(command.caches == Command::Caches::json);
    return run(*command.run);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "locality: %s\n", e.message.c_str());
    return 2;
  } catch (const locality::gpu::GpuError& e) {
    std::fprintf(stderr, "locality: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "locality: out of memory\n");
    return 2;
  }
}

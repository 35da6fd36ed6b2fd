// The CUDA ladders' benchmarks (part of locality_bench): every rung and its
// cuBLAS peer on each shape, timed with CUDA events after an L2 flush.
#include "gpu_bench.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "attention_bench.hpp"
#include "check_once.hpp"
#include "cli_args.hpp"
#include "locality/attention.hpp"
#include "locality/gpu.hpp"
#include "locality/verify.hpp"

namespace locality::bench {
namespace {

// gpu/matmul/<variant>/<m>x<n>x<k>: square sizes, and shapes that are
// neither square nor multiples of the tiles.
struct GpuShape {
  int m, n, k;
};
const std::vector<GpuShape> kGpuShapes{{256, 256, 256},    {512, 512, 512},    {1024, 1024, 1024},
                                       {2048, 2048, 2048}, {4096, 4096, 4096}, {8192, 8192, 8192},
                                       {4096, 8192, 1024}, {8192, 1024, 8192}, {3001, 4099, 2053}};

// One problem per shape and ladder (Bench: gpu::MatmulBench or
// gpu::Bf16MatmulBench), kept for all the benchmarks at that shape (the
// inputs take a while to make at 8192), with cuBLAS's time on it, measured
// once (the median of 5 calls) for every rung's `cublas_fraction`.
template <typename Bench>
struct GpuProblem {
  std::unique_ptr<Bench> bench;
  double cublas_ms = 0.0;
};

template <typename Bench>
std::map<std::tuple<int, int, int>, GpuProblem<Bench>>& gpu_problems() {
  static std::map<std::tuple<int, int, int>, GpuProblem<Bench>> problems;
  return problems;
}

template <typename Bench>
GpuProblem<Bench>& gpu_problem(const GpuShape& s) {
  GpuProblem<Bench>& p = gpu_problems<Bench>()[{s.m, s.n, s.k}];
  if (!p.bench) {
    p.bench = std::make_unique<Bench>(s.m, s.n, s.k);
    std::vector<double> ms;
    for (int i = 0; i < 5; ++i) ms.push_back(p.bench->time_cublas_ms());
    std::sort(ms.begin(), ms.end());
    p.cublas_ms = ms[2];
  }
  return p;
}

// The verdict of benchmark `name`'s check: on its first call, `check` runs
// and then `warm_up`; its repetitions reuse the verdict. A wrong result marks
// the run failed and stops the benchmark (nullopt).
template <typename WarmUp, typename Check>
std::optional<VerifyResult> checked_once(benchmark::State& state, const std::string& name,
                                         std::atomic<bool>& failed, WarmUp warm_up, Check check) {
  std::optional<VerifyResult> earlier = CheckOnce::earlier(name);
  if (!earlier) {
    earlier = check();
    CheckOnce::remember(name, *earlier);
    warm_up();
  }
  if (!earlier->ok) {
    failed = true;
    state.SkipWithError(("wrong result: " + earlier->message).c_str());
    return std::nullopt;
  }
  return earlier;
}

// A rung of either matmul ladder (or its cuBLAS peer, when `variant` is
// null), timed with CUDA events around each call after an L2 flush (manual
// time), checked before timing. The bf16 peer's rows carry the algorithm
// cuBLASLt ran as their label.
template <typename Bench, typename Variant>
void gpu_matmul_benchmark(benchmark::State& state, const std::string& name, const Variant* variant,
                          const GpuShape& s, std::atomic<bool>& failed) {
  GpuProblem<Bench>& problem = gpu_problem<Bench>(s);
  Bench& bench = *problem.bench;
  const auto call = [&] { return variant ? bench.time_ms(*variant) : bench.time_cublas_ms(); };
  const std::optional<VerifyResult> earlier = checked_once(state, name, failed, call, [&] {
    const std::vector<std::ptrdiff_t> rows = matmul_rows_to_check(s.m, s.n, s.k);
    return variant ? bench.check(*variant, rows) : bench.check_cublas(rows);
  });
  if (!earlier) return;
  double total_ms = 0.0;
  for (auto _ : state) {
    const double ms = call();
    total_ms += ms;
    state.SetIterationTime(ms * 1e-3);
  }
  const double flops = 2.0 * s.m * static_cast<double>(s.n) * s.k;
  using benchmark::Counter;
  state.counters["flops"] = Counter(flops, Counter::kIsIterationInvariantRate);
  state.counters["cublas_fraction"] =
      problem.cublas_ms / (total_ms / static_cast<double>(state.iterations()));
  state.counters["max_error_over_bound"] = earlier->max_bound_ratio;
  if (variant) {
    state.counters["rung"] = variant->rung;
  } else if constexpr (std::is_same_v<Bench, gpu::Bf16MatmulBench>) {
    state.SetLabel(bench.cublas_algorithm());
  }
}

// Registers gpu/<family>/<variant|cublas>/<m>x<n>x<k> for `entries` (null:
// the peer) on `shapes`, a rung only where its rule allows the shape.
template <typename Bench, typename Variant>
void register_matmul_ladder(const std::string& family, const std::vector<const Variant*>& entries,
                            const std::vector<GpuShape>& shapes, std::atomic<bool>& failed) {
  for (const GpuShape& s : shapes) {
    for (const Variant* v : entries) {
      if constexpr (std::is_same_v<Variant, gpu::GpuBf16MatmulVariant>) {
        if (v && (s.k % v->multiple != 0 || s.n % v->multiple != 0)) continue;
      }
      const std::string name = "gpu/" + family + "/" + std::string(v ? v->name : "cublas") + "/" +
                               std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
                               std::to_string(s.k);
      register_guarded(name, failed,
                       [name, v, s, &failed](benchmark::State& state) {
                         gpu_matmul_benchmark<Bench>(state, name, v, s, failed);
                       })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

// gpu/attention/<variant|cublas>/<batch>x<heads>x<seq>x<seq>x<head_dim>/causal:<0|1>:
// the FlashAttention papers' convention, batch x seq = 16384 and heads x
// head_dim = 2048, so every shape has the same tensors (one problem serves
// them all).
constexpr std::int64_t kGpuAttentionTokens = 16384, kGpuAttentionWidth = 2048;
const std::vector<std::int64_t> kGpuAttentionSeqs{512, 1024, 2048, 4096, 8192, 16384};
const std::vector<std::int64_t> kGpuAttentionHeadDims{64, 128};

AttentionShape gpu_attention_shape(std::int64_t seq, std::int64_t head_dim) {
  return {kGpuAttentionTokens / seq, kGpuAttentionWidth / head_dim, seq, seq, head_dim};
}

std::unique_ptr<gpu::AttentionBench>& gpu_attention_problem() {
  static std::unique_ptr<gpu::AttentionBench> problem;
  return problem;
}

// A rung of either attention ladder (or the cuBLAS peer, when `variant` is
// null) on one shape, timed with CUDA events after an L2 flush (manual
// time), checked before timing.
template <typename Variant>
void gpu_attention_benchmark(benchmark::State& state, const std::string& name,
                             const Variant* variant, const AttentionShape& s, bool causal,
                             std::atomic<bool>& failed) {
  std::unique_ptr<gpu::AttentionBench>& problem = gpu_attention_problem();
  if (!problem) problem = std::make_unique<gpu::AttentionBench>(s, causal);
  gpu::AttentionBench& bench = *problem;
  bench.use(s, causal);
  const auto call = [&] { return variant ? bench.time_ms(*variant) : bench.time_cublas_ms(); };
  const std::optional<VerifyResult> earlier = checked_once(state, name, failed, call, [&] {
    const std::vector<std::ptrdiff_t> rows = spread_rows(s.batch * s.heads * s.seq_q, 24);
    return variant ? bench.check(*variant, rows) : bench.check_cublas(rows);
  });
  if (!earlier) return;
  for (auto _ : state) state.SetIterationTime(call() * 1e-3);
  const double flops = attention_flops(s, causal);
  using benchmark::Counter;
  state.counters["flops"] = Counter(flops, Counter::kIsIterationInvariantRate);
  state.counters["max_error_over_bound"] = earlier->max_bound_ratio;
  if (variant) state.counters["rung"] = variant->rung;
  if constexpr (std::is_same_v<Variant, gpu::GpuAttentionVariant>) {
    if (variant) {
      state.counters["workspace_bytes"] =
          static_cast<double>(variant->workspace_floats(s) * sizeof(float));
    }
  }
}

// Registers gpu/<family>/<variant|cublas>/<batch>x<heads>x<seq>x<seq>x<d>/causal:<0|1>
// for `entries` (null: the cuBLAS peer) on every shape the rung takes.
template <typename Variant, typename Takes>
void register_attention_ladder(const std::string& family,
                               const std::vector<const Variant*>& entries, Takes takes,
                               std::atomic<bool>& failed) {
  for (std::int64_t seq : kGpuAttentionSeqs) {
    for (std::int64_t d : kGpuAttentionHeadDims) {
      for (bool causal : {false, true}) {
        const AttentionShape s = gpu_attention_shape(seq, d);
        for (const Variant* v : entries) {
          if (v && !takes(*v, s)) continue;
          const std::string name = "gpu/" + family + "/" + std::string(v ? v->name : "cublas") +
                                   "/" + std::to_string(s.batch) + "x" + std::to_string(s.heads) +
                                   "x" + std::to_string(seq) + "x" + std::to_string(seq) + "x" +
                                   std::to_string(d) + "/causal:" + (causal ? "1" : "0");
          register_guarded(name, failed,
                           [name, v, s, causal, &failed](benchmark::State& state) {
                             gpu_attention_benchmark(state, name, v, s, causal, failed);
                           })
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
}

// The rungs of a tensor-core ladder this device runs; each other one is
// named on stderr with the reason.
template <typename Variant>
std::vector<const Variant*> runnable(std::span<const Variant> variants, const char* family) {
  std::vector<const Variant*> out;
  for (const Variant& v : variants) {
    if (const std::string why = gpu::bf16_unavailable_reason(v); !why.empty()) {
      std::cerr << "locality_bench: gpu/" << family << "/" << v.name << " not registered: " << why
                << "\n";
      continue;
    }
    out.push_back(&v);
  }
  return out;
}

}  // namespace

void release_gpu_problems() {
  gpu_problems<gpu::MatmulBench>().clear();
  gpu_problems<gpu::Bf16MatmulBench>().clear();
  gpu_attention_problem().reset();
}

void register_gpu_attention(std::atomic<bool>& failed) {
  if (!gpu::query_device().available) return;  // register_gpu_matmul said why
  std::vector<const gpu::GpuAttentionVariant*> entries;
  for (const gpu::GpuAttentionVariant& v : gpu::attention_variants()) entries.push_back(&v);
  entries.push_back(nullptr);  // the cuBLAS peer
  register_attention_ladder(
      "attention", entries,
      [](const gpu::GpuAttentionVariant& v, const AttentionShape& s) {
        return s.seq_q <= v.largest_timed;
      },
      failed);
  // Its peers are PyTorch's kernels (gpu/torch_sdpa.py --dtype bfloat16).
  register_attention_ladder(
      "attention_bf16", runnable(gpu::bf16_attention_variants(), "attention_bf16"),
      [](const gpu::GpuBf16AttentionVariant&, const AttentionShape&) { return true; }, failed);
}

void register_gpu_bf16_matmul(std::atomic<bool>& failed) {
  if (!gpu::query_device().available) return;  // register_gpu_matmul said why
  std::vector<const gpu::GpuBf16MatmulVariant*> entries =
      runnable(gpu::bf16_matmul_variants(), "matmul_bf16");
  entries.push_back(nullptr);  // the cuBLASLt peer
  std::vector<GpuShape> shapes = kGpuShapes;
  shapes.push_back({16384, 16384, 16384});
  register_matmul_ladder<gpu::Bf16MatmulBench>("matmul_bf16", entries, shapes, failed);
}

void register_gpu_matmul(bool required, std::atomic<bool>& failed) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) {
    if (required) throw cli::UsageError{"--locality_family=gpu: " + status.reason};
    std::cerr << "locality_bench: GPU benchmarks not registered: " << status.reason << "\n";
    return;
  }
  const gpu::DeviceInfo info = gpu::device_info();
  benchmark::AddCustomContext("gpu_name", info.name);
  benchmark::AddCustomContext("gpu_sm_count", std::to_string(info.sm_count));
  benchmark::AddCustomContext("gpu_sm_clock_mhz", std::to_string(info.sm_clock_mhz));
  benchmark::AddCustomContext("gpu_memory_clock_mhz", std::to_string(info.memory_clock_mhz));
  benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(info.l2_bytes));
  benchmark::AddCustomContext("gpu_memory_bytes", std::to_string(info.memory_bytes));
  benchmark::AddCustomContext("gpu_compute_capability", info.compute_capability);
  benchmark::AddCustomContext("cuda_driver", info.driver_version);
  benchmark::AddCustomContext("cuda_runtime", info.runtime_version);
  benchmark::AddCustomContext("cublas_version", info.cublas_version);
  std::vector<const gpu::GpuMatmulVariant*> entries;
  for (const gpu::GpuMatmulVariant& v : gpu::matmul_variants()) entries.push_back(&v);
  entries.push_back(nullptr);  // the cuBLAS peer
  register_matmul_ladder<gpu::MatmulBench>("matmul", entries, kGpuShapes, failed);
}

}  // namespace locality::bench

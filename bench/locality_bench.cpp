// locality_bench: every rung of the CPU matmul ladder and its peers, timed
// with Google Benchmark, beside the machine probes they are measured against.
//
// Names:  cpu/matmul/<variant>/<m>x<n>x<k>/omp_threads:<t>
//         cpu/attention/<variant>/<batch>x<heads>x<seq_q>x<seq_kv>x<head_dim>/causal:<0|1>/
//             omp_threads:<t>
//         gpu/matmul/<variant|cublas>/<m>x<n>x<k>   (CUDA events, manual time)
//         gpu/attention/<variant|cublas>/<batch>x<heads>x<seq>x<seq>x<head_dim>/causal:<0|1>
//         gpu/matmul_bf16/<variant|cublas>/<m>x<n>x<k>   (bf16 inputs, float C)
//         cpu/probe/fma/omp_threads:<t>,
//         cpu/probe/stream/triad/<256KiB|8MiB|128MiB>/omp_threads:<t>
// (Google Benchmark's own "threads" field counts its driver threads, which we
// keep at 1; OpenMP teams are part of the name and of the `omp_threads` counter.)
//
// Own flags (everything else is Google Benchmark's):
//   --locality_family=all|matmul|attention|gpu   which ladders (default all: the CPU ladders,
//                                   and the GPU ones where a device is present)
//   --locality_sweep=default|full|quick   sizes to run (quick: small ones, for a first try)
//   --locality_sizes=64,256,...     square matmul sizes instead of the sweep's
//   --locality_seqs=1024,4096       attention sequence lengths instead of the sweep's
//   --locality_head_dims=64,128     attention head dims (default 64 and 128)
//   --locality_threads=1,2          OpenMP team sizes (default 1 and 2)
//   --locality_seed=N               the order of the variants within each problem (default: drawn
//                                   at random; the JSON context's locality_order says which)
//   --locality_fused_peers=onnxruntime,torch   the fused attention peers, timed in each
//                                   attention problem's turn by bench/fused_peers.py as a helper
//   --locality_python=PATH          the Python that runs it (default python3; bench/run.sh
//                                   passes the virtual environment's)
//   --locality_fused_min_time=S     seconds of calls per fused peer timing (default 0.2)
//   --locality_pairs=N              also time the top matmul rung against each BLAS peer call
//                                   by call, N rounds per problem (default 0: not), as
//                                   cpu/pairs/matmul/<rung>_vs_<peer>/<m>x<n>x<k>/omp_threads:<t>
//
// The CPU benchmarks are registered problem by problem (a size and a team;
// a shape, mask and team), each problem's rungs and peers together in a
// random order (shuffled_order in check_once.hpp), so that Google Benchmark,
// run without its own random interleaving, times a rung and its peers
// seconds apart.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attention_bench.hpp"
#include "check_once.hpp"
#include "cli_args.hpp"
#include "flash.hpp"
#include "fused_peers.hpp"
#include "gpu_bench.hpp"
#include "locality/caches.hpp"
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"
#include "microkernel.hpp"
#include "peers.hpp"
#include "probes.hpp"
#include "quiet.hpp"

namespace locality::bench {
namespace {

std::atomic<bool> g_verification_failed{false};
// A peer's wrong result or error: reported with the benchmark (its row says
// why), but the run is this project's, so it does not fail it.
std::atomic<bool> g_peer_failed{false};

struct Options {
  std::vector<std::int64_t> sizes;
  std::vector<std::int64_t> seqs;
  std::vector<std::int64_t> head_dims{64, 128};
  std::vector<int> threads{1, 2};
  std::uint64_t order_seed = std::random_device{}();
  std::string sweep = "default";  // default, full or quick
  bool matmul = true, attention = true;
  bool gpu = true;                       // the CUDA matmul ladder, where a device is present
  bool gpu_required = false;             // --locality_family=gpu: no device is an error
  std::vector<std::string> fused_peers;  // bench/fused_peers.py's peers (attention)
  std::string python = "python3";
  double fused_min_time = 0.2;
  int pairs = 0;  // rounds of the call-by-call comparison (0: none)
};

// Square sizes, each chosen for the cache level its working set (3 n^2 floats)
// lands in on the reference machine (48 KiB L1d, 2 MiB L2 per core, large L3):
//   64 -> 48 KiB (L1)   256 -> 768 KiB (L2)   512 -> 3 MiB (just past L2)
//   1024 -> 12 MiB, 2048 -> 48 MiB, 4096 -> 192 MiB (L3 and DRAM)
const std::vector<std::int64_t> kDefaultSizes{64, 256, 512, 1024, 2048, 4096};
// The quick sweep: every rung, sizes small enough for the whole ladder in seconds.
const std::vector<std::int64_t> kQuickSizes{64, 128, 256};
const std::vector<std::int64_t> kFullSizes{64,  96,   128,  192,  256,  384, 512,
                                           768, 1024, 1536, 2048, 3072, 4096};

// Removes our flags from argv (Google Benchmark rejects what it does not know).
Options parse_own_flags(int& argc, char** argv) {
  Options opts;
  bool sizes_given = false, seqs_given = false, head_dims_given = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (arg.substr(0, flag.size()) == flag && arg.size() > flag.size() &&
          arg[flag.size()] == '=') {
        return arg.substr(flag.size() + 1);
      }
      return std::nullopt;
    };
    if (auto f = value("--locality_family")) {
      if (*f != "all" && *f != "matmul" && *f != "attention" && *f != "gpu") {
        throw cli::UsageError{
            "--locality_family must be 'all', 'matmul', 'attention' or 'gpu', got '" +
            std::string(*f) + "'"};
      }
      opts.matmul = *f == "all" || *f == "matmul";
      opts.attention = *f == "all" || *f == "attention";
      opts.gpu = *f == "all" || *f == "gpu";
      opts.gpu_required = *f == "gpu";
    } else if (auto v = value("--locality_sweep")) {
      if (*v != "default" && *v != "full" && *v != "quick") {
        throw cli::UsageError{"--locality_sweep must be 'default', 'full' or 'quick', got '" +
                              std::string(*v) + "'"};
      }
      opts.sweep = *v;
    } else if (auto s = value("--locality_sizes")) {
      opts.sizes = cli::parse_list(*s, 1, cli::kMaxDimension, "--locality_sizes entry");
      sizes_given = true;
    } else if (auto q = value("--locality_seqs")) {
      opts.seqs = cli::parse_list(*q, 1, cli::kMaxDimension, "--locality_seqs entry");
      seqs_given = true;
    } else if (auto h = value("--locality_head_dims")) {
      opts.head_dims = cli::parse_list(*h, 1, kMaxHeadDim, "--locality_head_dims entry");
      head_dims_given = true;
    } else if (auto t = value("--locality_threads")) {
      opts.threads.clear();
      for (std::int64_t n : cli::parse_list(*t, 1, kMaxThreads, "--locality_threads entry")) {
        opts.threads.push_back(static_cast<int>(n));
      }
    } else if (auto r = value("--locality_seed")) {
      opts.order_seed = static_cast<std::uint64_t>(
          cli::parse_int(*r, 0, std::numeric_limits<std::int64_t>::max(), "--locality_seed"));
    } else if (auto fp = value("--locality_fused_peers")) {
      opts.fused_peers.clear();
      for (std::string_view rest = *fp; !rest.empty();) {
        const std::size_t comma = rest.find(',');
        const std::string_view peer = rest.substr(0, comma);
        if (peer != "onnxruntime" && peer != "torch") {
          throw cli::UsageError{"--locality_fused_peers takes onnxruntime and torch, got '" +
                                std::string(peer) + "'"};
        }
        opts.fused_peers.emplace_back(peer);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      if (opts.fused_peers.empty()) throw cli::UsageError{"--locality_fused_peers is empty"};
    } else if (auto py = value("--locality_python")) {
      opts.python = *py;
    } else if (auto m = value("--locality_fused_min_time")) {
      opts.fused_min_time = cli::parse_float(*m, "--locality_fused_min_time");
      if (!(opts.fused_min_time > 0) || opts.fused_min_time > 60) {
        throw cli::UsageError{"--locality_fused_min_time must be seconds in (0, 60], got '" +
                              std::string(*m) + "'"};
      }
    } else if (auto n = value("--locality_pairs")) {
      opts.pairs = static_cast<int>(cli::parse_int(*n, 0, 1000, "--locality_pairs"));
    } else if (arg.substr(0, 11) == "--locality_") {
      throw cli::UsageError{"unknown flag '" + std::string(arg) + "'"};
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  const bool full = opts.sweep == "full", quick = opts.sweep == "quick";
  if (!sizes_given) opts.sizes = full ? kFullSizes : quick ? kQuickSizes : kDefaultSizes;
  if (!seqs_given) {
    opts.seqs = full    ? attention_full_seqs()
                : quick ? attention_quick_seqs()
                        : attention_default_seqs();
  }
  if (!head_dims_given && quick) opts.head_dims = {64};
  if (opts.matmul) {
    for (std::int64_t n : opts.sizes) {
      cli::require_memory(cli::matmul_bytes(n, n, n, true), "size " + std::to_string(n));
    }
  }
  if (opts.attention) {
    const int most_threads = *std::max_element(opts.threads.begin(), opts.threads.end());
    for (std::int64_t seq : opts.seqs) {
      for (std::int64_t d : opts.head_dims) {
        cli::require_memory(
            attention_benchmark_bytes(attention_heads_for(seq), seq, d, most_threads),
            "attention at seq " + std::to_string(seq) + ", head_dim " + std::to_string(d));
      }
    }
  }
  return opts;
}

using Kernel = std::function<void(ConstView<float>, ConstView<float>, View<float>, int)>;

// The check before timing, once per benchmark name (check_once.hpp): the
// kernel's C against the reference on matmul_rows_to_check's rows.
VerifyResult checked(const std::string& name, const Kernel& kernel, const Matrix<float>& a,
                     const Matrix<float>& b, Matrix<float>& c, int threads) {
  if (std::optional<VerifyResult> earlier = CheckOnce::earlier(name)) return *earlier;
  kernel(a.cview(), b.cview(), c.view(), threads);  // also the warm-up
  const VerifyResult verdict = verify_matmul_rows(
      a.cview(), b.cview(), c.cview(), matmul_rows_to_check(a.rows(), b.cols(), a.cols()));
  CheckOnce::remember(name, verdict);
  return verdict;
}

// `rung` is the kernel's place on the ladder, -1 for a peer.
void matmul_benchmark(benchmark::State& state, const std::string& name, const Kernel& kernel,
                      int rung, std::int64_t n, int threads, double peak_flops) {
  const std::int64_t m = n, k = n;
  Matrix<float> a(m, k), b(k, n), c(m, n);
  fill_random(a.view(), 1);
  fill_random(b.view(), 2);
  poison(c.view());

  const VerifyResult check = checked(name, kernel, a, b, c, threads);
  if (!check.ok) {
    (rung < 0 ? g_peer_failed : g_verification_failed) = true;
    state.SkipWithError(("wrong result: " + check.message).c_str());
    return;
  }

  for (auto _ : state) {
    kernel(a.cview(), b.cview(), c.view(), threads);
    benchmark::ClobberMemory();
  }

  const double flops =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const double bytes = 4.0 * static_cast<double>(m * k + k * n + m * n);
  using benchmark::Counter;
  state.counters["flops"] = Counter(flops, Counter::kIsIterationInvariantRate);
  state.counters["peak_fraction"] = Counter(flops / peak_flops, Counter::kIsIterationInvariantRate);
  state.counters["omp_threads"] = threads;
  state.counters["min_bytes"] = bytes;
  state.counters["arithmetic_intensity"] = flops / bytes;
  state.counters["max_error_over_bound"] = check.max_bound_ratio;
  // The rung's place on the ladder travels with its numbers, so the report
  // and the plots order the rungs without a list of their own (peers: none).
  if (rung >= 0) state.counters["rung"] = rung;
}

// The top rung against one peer, call by call: `pairs` rounds of one call of
// each, the order alternating from round to round, each call started once
// the threads are idle (quiet.hpp), on the same inputs, after both are
// checked. The counters: the median, lowest and highest over the rounds of
// the peer's time over the rung's (the rung's speed as a multiple of the
// peer's). On a machine whose speed drifts within seconds, this is the
// closest comparison a benchmark can make: each ratio is of two calls made
// one after the other.
void matmul_pair_benchmark(benchmark::State& state, const std::string& rung_name,
                           const Kernel& rung, const std::string& peer_name, const Kernel& peer,
                           std::int64_t n, int threads, int pairs) {
  Matrix<float> a(n, n), b(n, n), c(n, n);
  fill_random(a.view(), 1);
  fill_random(b.view(), 2);
  poison(c.view());
  const auto passes = [&](const std::string& name, const Kernel& kernel,
                          std::atomic<bool>& failed) {
    const VerifyResult check = checked(name, kernel, a, b, c, threads);
    if (!check.ok) {
      failed = true;
      state.SkipWithError((name + ": wrong result: " + check.message).c_str());
    }
    return check.ok;
  };
  if (!passes(rung_name, rung, g_verification_failed) || !passes(peer_name, peer, g_peer_failed)) {
    return;
  }
  const auto timed = [&](const Kernel& kernel) {
    wait_for_idle_threads(state);
    const auto start = std::chrono::steady_clock::now();
    kernel(a.cview(), b.cview(), c.view(), threads);
    benchmark::ClobberMemory();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<double> ratios;
  double total = 0;
  for (auto _ : state) {
    for (int r = 0; r < pairs; ++r) {
      double rung_s = 0, peer_s = 0;
      if (r % 2 == 0) {
        rung_s = timed(rung);
        peer_s = timed(peer);
      } else {
        peer_s = timed(peer);
        rung_s = timed(rung);
      }
      ratios.push_back(peer_s / rung_s);
      total += rung_s + peer_s;
    }
    state.SetIterationTime(total);
  }
  std::sort(ratios.begin(), ratios.end());
  const std::size_t mid = ratios.size() / 2;
  state.counters["ratio"] = ratios.size() % 2 ? ratios[mid] : 0.5 * (ratios[mid - 1] + ratios[mid]);
  state.counters["ratio_low"] = ratios.front();
  state.counters["ratio_high"] = ratios.back();
  state.counters["pairs"] = pairs;
  state.counters["omp_threads"] = threads;
}

std::string matmul_name(std::string_view variant, std::int64_t n, int threads) {
  std::ostringstream name;
  name << "cpu/matmul/" << variant << "/" << n << "x" << n << "x" << n
       << "/omp_threads:" << threads;
  return name.str();
}

void register_all(const Options& opts, FusedPeers* fused) {
  if (opts.gpu) {
    register_gpu_matmul(opts.gpu_required, g_verification_failed);
    register_gpu_attention(g_verification_failed);
    register_gpu_bf16_matmul(g_verification_failed);
  }
  if (!opts.matmul && !opts.attention) return;  // the CPU probes serve the CPU ladders
  std::map<int, double> peak;
  for (int t : opts.threads) {
    peak[t] = measure_fma_peak(t);
    benchmark::AddCustomContext("fma_peak_flops_omp_threads_" + std::to_string(t),
                                std::to_string(peak[t]));
  }

  for (int t : opts.threads) {
    benchmark::RegisterBenchmark(("cpu/probe/fma/omp_threads:" + std::to_string(t)).c_str(),
                                 [t](benchmark::State& state) {
                                   constexpr std::int64_t kReps = 1'000'000;
                                   for (auto _ : state)
                                     benchmark::DoNotOptimize(fma_probe(t, kReps));
                                   state.counters["flops"] = benchmark::Counter(
                                       static_cast<double>(fma_probe_flops(t, kReps)),
                                       benchmark::Counter::kIsIterationInvariantRate);
                                   state.counters["omp_threads"] = t;
                                 })
        ->Setup(wait_for_idle_threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  // STREAM triad over 3 arrays of 256 KiB (past a 48 KiB L1d, inside a 2 MiB
  // L2: the L2's bandwidth), 8 MiB (past the L2, inside the L3) and 128 MiB
  // (past any L3 we expect to meet: memory's). The report's roofline draws
  // each as a roof.
  for (const std::int64_t stream_floats :
       {std::int64_t{64} << 10, std::int64_t{2} << 20, std::int64_t{32} << 20}) {
    const std::int64_t kib = stream_floats * 4 >> 10;
    const std::string size =
        kib < 1024 ? std::to_string(kib) + "KiB" : std::to_string(kib >> 10) + "MiB";
    for (int t : opts.threads) {
      benchmark::RegisterBenchmark(
          ("cpu/probe/stream/triad/" + size + "/omp_threads:" + std::to_string(t)).c_str(),
          [t, kStreamFloats = stream_floats](benchmark::State& state) {
            StreamArrays* arrays = stream_arrays(kStreamFloats, t);
            for (auto _ : state) {
              stream_triad(arrays, t);
              benchmark::ClobberMemory();
            }
            state.SetBytesProcessed(state.iterations() * stream_triad_bytes(kStreamFloats));
            state.counters["omp_threads"] = t;
          })
          ->Setup(wait_for_idle_threads)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }

  struct Entry {
    std::string_view name;
    Kernel kernel;
    int rung;                    // -1 for a peer
    std::int64_t largest_timed;  // the largest size it is timed at
  };
  std::vector<Entry> entries;
  for (const MatmulVariant& v : cpu::matmul_variants()) {
    entries.push_back({v.name,
                       [&v](ConstView<float> a, ConstView<float> b, View<float> c, int t) {
                         matmul(v, a, b, c, t);
                       },
                       v.rung, v.largest_timed});
  }
  if (opts.attention) {
    register_attention({opts.seqs, opts.head_dims, opts.threads, opts.order_seed}, peak,
                       g_verification_failed, {fused, opts.fused_min_time, &g_peer_failed});
  }
  if (!opts.matmul) return;
  // Screened in main(), before the probes started an OpenMP team.
  for (const MatmulPeer& p : matmul_peers()) {
    entries.push_back({p.name, p.run, -1, std::numeric_limits<std::int64_t>::max()});
  }
  std::mt19937_64 rng(opts.order_seed);
  for (std::int64_t n : opts.sizes) {
    for (int t : opts.threads) {
      for (std::size_t i : shuffled_order(entries.size(), rng)) {
        const Entry& e = entries[i];
        if (n > e.largest_timed) continue;
        const std::string name = matmul_name(e.name, n, t);
        register_guarded(
            name, e.rung < 0 ? g_peer_failed : g_verification_failed,
            [name, kernel = e.kernel, rung = e.rung, n, t, p = peak[t]](benchmark::State& s) {
              matmul_benchmark(s, name, kernel, rung, n, t, p);
            })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
      if (opts.pairs == 0) continue;
      const Entry& top =
          *std::max_element(entries.begin(), entries.end(),
                            [](const Entry& x, const Entry& y) { return x.rung < y.rung; });
      for (const Entry& e : entries) {
        if (e.rung >= 0) continue;
        register_guarded(
            "cpu/pairs/matmul/" + std::string(top.name) + "_vs_" + std::string(e.name) + "/" +
                std::to_string(n) + "x" + std::to_string(n) + "x" + std::to_string(n) +
                "/omp_threads:" + std::to_string(t),
            g_verification_failed,
            [top_name = matmul_name(top.name, n, t), top_kernel = top.kernel,
             peer_name = matmul_name(e.name, n, t), peer_kernel = e.kernel, n, t,
             pairs = opts.pairs](benchmark::State& s) {
              matmul_pair_benchmark(s, top_name, top_kernel, peer_name, peer_kernel, n, t, pairs);
            })
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

void add_context(const Options& opts) {
  benchmark::AddCustomContext("locality_version", LOCALITY_VERSION);
  benchmark::AddCustomContext("compiler", LOCALITY_COMPILER);
  benchmark::AddCustomContext("compiler_flags", LOCALITY_CXX_FLAGS);
  const cpu::MicroKernel& uk = cpu::best_microkernel();
  const CacheSizes& caches = machine_cache_sizes();
  benchmark::AddCustomContext("locality_microkernel", std::string(uk.name));
  benchmark::AddCustomContext(
      "locality_blocks", "kc " + std::to_string(uk.kc) + ", mc " + std::to_string(uk.mc) + ", nc " +
                             std::to_string(uk.nc) + "; flash kv_block " +
                             std::to_string(cpu::flash_kv_block(uk, caches)) +
                             ", P V kernel at head_dim 64 and 128 " +
                             std::string(cpu::pv_microkernel(uk, 64).name) + ", " +
                             std::string(cpu::pv_microkernel(uk, 128).name));
  benchmark::AddCustomContext(
      "locality_caches", "L1d " + std::to_string(caches.l1d_bytes >> 10) + " KiB, L2 " +
                             std::to_string(caches.l2_bytes >> 10) + " KiB, from " + caches.source);
  benchmark::AddCustomContext("locality_sweep", opts.sweep);
  benchmark::AddCustomContext("locality_order",
                              "problem by problem, the variants of each in a random order "
                              "(--locality_seed=" +
                                  std::to_string(opts.order_seed) + ")");
  benchmark::AddCustomContext("locality_family", opts.matmul && opts.attention ? "all"
                                                 : opts.matmul                 ? "matmul"
                                                 : opts.attention              ? "attention"
                                                                               : "gpu");
  for (const auto& [key, value] : peer_context()) benchmark::AddCustomContext(key, value);
}

}  // namespace
}  // namespace locality::bench

int main(int argc, char** argv) {
  using namespace locality;
  try {
    const bench::Options opts = bench::parse_own_flags(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
      std::cerr << "locality_bench: unknown argument '" << cli::one_line(argv[1])
                << "' (see --help)\n";
      return 2;
    }
    // The peers are screened in child processes, before any OpenMP team
    // starts here (a fork inherits no thread pool, only its locks), and
    // after the arguments are known good (a usage error stays one line).
    if (opts.matmul) bench::matmul_peers();
    // The fused attention peers' helper, started once; its libraries' threads
    // count as ours when each run waits for quiet.
    std::optional<bench::FusedPeers> fused;
    if (opts.attention && !opts.fused_peers.empty()) {
      fused.emplace(opts.python, LOCALITY_SOURCE_DIR "/bench/fused_peers.py", opts.fused_peers);
      if (fused->pid() > 0) bench::also_wait_for(fused->pid());
      for (const auto& [key, value] : fused->context()) benchmark::AddCustomContext(key, value);
    }
    bench::add_context(opts);
    bench::register_all(opts, fused ? &*fused : nullptr);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    bench::release_gpu_problems();  // device memory goes back while CUDA is still up
  } catch (const cli::UsageError& e) {
    std::cerr << "locality_bench: " << e.message << "\n";
    return 2;
  }
  if (bench::g_peer_failed) {
    std::cerr << "locality_bench: a peer failed on at least one size (see the errors above); "
                 "its rows are left out\n";
  }
  if (bench::g_verification_failed) {
    std::cerr << "locality_bench: at least one kernel gave a wrong result (see the errors above)\n";
    return 1;
  }
  return 0;
}

#include "attention_bench.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>

#include "check_once.hpp"
#include "cli_args.hpp"
#include "fused_peers.hpp"
#include "locality/attention.hpp"
#include "locality/matrix.hpp"
#include "locality/verify.hpp"
#include "peers.hpp"

namespace locality::bench {
namespace {

std::string attention_name(std::string_view variant, const AttentionShape& s, bool causal,
                           int threads) {
  std::ostringstream name;
  name << "cpu/attention/" << variant << "/" << s.batch << "x" << s.heads << "x" << s.seq_q << "x"
       << s.seq_kv << "x" << s.head_dim << "/causal:" << (causal ? 1 : 0)
       << "/omp_threads:" << threads;
  return name.str();
}

void attention_benchmark(benchmark::State& state, const std::string& name,
                         const AttentionVariant& variant, const AttentionShape& s, bool causal,
                         int threads, double peak_flops, std::atomic<bool>& failed) {
  std::vector<float> q(s.q_elements()), k(s.kv_elements()), v(s.kv_elements()), o(s.q_elements());
  fill_random(std::span<float>(q), 1);
  fill_random(std::span<float>(k), 2);
  fill_random(std::span<float>(v), 3);
  poison(std::span<float>(o));
  const AttentionOptions options{std::nullopt, causal};
  const std::size_t workspace_bytes = attention_workspace_bytes(variant, s, threads);
  Matrix<float> workspace(1, static_cast<std::ptrdiff_t>(workspace_bytes / sizeof(float)));
  const std::span<float> ws(workspace.data(), workspace_bytes / sizeof(float));

  std::optional<VerifyResult> earlier = CheckOnce::earlier(name);
  if (!earlier) {
    attention(variant, s, q, k, v, o, options, threads, ws);  // also the warm-up
    earlier =
        verify_attention_rows(s, q, k, v, o, options, spread_rows(s.batch * s.heads * s.seq_q, 24));
    CheckOnce::remember(name, *earlier);
  }
  const VerifyResult& check = *earlier;
  if (!check.ok) {
    failed = true;
    state.SkipWithError(("wrong result: " + check.message).c_str());
    return;
  }
  for (auto _ : state) {
    attention(variant, s, q, k, v, o, options, threads, ws);
    benchmark::ClobberMemory();
  }

  const double flops = attention_flops(s, causal);
  const double bytes = 4.0 * static_cast<double>(2 * s.q_elements() + 2 * s.kv_elements());
  using benchmark::Counter;
  state.counters["flops"] = Counter(flops, Counter::kIsIterationInvariantRate);
  state.counters["peak_fraction"] = Counter(flops / peak_flops, Counter::kIsIterationInvariantRate);
  state.counters["omp_threads"] = threads;
  // The rung's place on the ladder travels with its numbers, so the report
  // and the plots order the rungs without a list of their own (peers: none).
  if (variant.rung >= 0) state.counters["rung"] = variant.rung;
  state.counters["workspace_bytes"] = static_cast<double>(workspace_bytes);
  state.counters["min_bytes"] = bytes;
  state.counters["arithmetic_intensity"] = flops / bytes;
  state.counters["max_error_over_bound"] = check.max_bound_ratio;
}

// A fused peer's turn: one request to the helper (bench/fused_peers.py),
// which checks the peer on the problem's first request, then times as many
// calls as fill `min_time` and answers their mean: one iteration, of that
// mean (manual time), with the calls it averaged as a counter.
void fused_peer_benchmark(benchmark::State& state, FusedPeers& fused, const std::string& peer,
                          const AttentionShape& s, bool causal, int threads, double peak_flops,
                          double min_time, std::atomic<bool>& failed) {
  FusedTiming t;
  for (auto _ : state) {
    t = fused.time(peer, s, causal, threads, min_time);
    if (!t.error.empty()) {
      state.SkipWithError(t.error.c_str());
      break;
    }
    state.SetIterationTime(t.seconds);
  }
  if (!t.error.empty()) {
    failed = true;
    return;
  }
  const double flops = attention_flops(s, causal);
  using benchmark::Counter;
  state.counters["flops"] = Counter(flops, Counter::kIsIterationInvariantRate);
  state.counters["peak_fraction"] = Counter(flops / peak_flops, Counter::kIsIterationInvariantRate);
  state.counters["omp_threads"] = threads;
  state.counters["calls"] = static_cast<double>(t.calls);
  state.counters["max_error_over_bound"] = t.max_error_over_bound;
  if (!t.label.empty()) state.SetLabel(t.label);
}

}  // namespace

const std::vector<std::int64_t>& attention_default_seqs() {
  static const std::vector<std::int64_t> seqs{512, 1024, 4096};
  return seqs;
}

const std::vector<std::int64_t>& attention_quick_seqs() {
  static const std::vector<std::int64_t> seqs{256, 512};
  return seqs;
}

const std::vector<std::int64_t>& attention_full_seqs() {
  static const std::vector<std::int64_t> seqs{256, 512, 1024, 2048, 4096, 8192};
  return seqs;
}

std::int64_t attention_heads_for(std::int64_t seq) {
  const std::int64_t ratio = seq < 2048 ? 2048 / seq : 1;
  return std::max<std::int64_t>(1, ratio * ratio);
}

std::uint64_t attention_benchmark_bytes(std::int64_t heads, std::int64_t seq, std::int64_t d,
                                        int threads) {
  const char* what = "the buffer size of this attention benchmark";
  const std::uint64_t tensor = cli::checked_mul(
      cli::checked_mul(static_cast<std::uint64_t>(heads), static_cast<std::uint64_t>(seq), what),
      static_cast<std::uint64_t>(d) * sizeof(float), what);
  // The largest workspace: a score matrix slab per thread (the unfused rungs).
  const std::uint64_t scores = cli::checked_mul(
      cli::checked_mul(static_cast<std::uint64_t>(seq), static_cast<std::uint64_t>(seq), what),
      sizeof(float) * static_cast<std::uint64_t>(std::max(threads, 1)), what);
  return cli::checked_mul(tensor, 4, what) + scores;
}

void register_attention(const AttentionSweep& sweep, const std::map<int, double>& peak,
                        std::atomic<bool>& failed, const FusedSetup& fused) {
  // Peers become variants (rung -1), so that they run through attention() too.
  static std::vector<AttentionVariant> entries;
  entries.assign(cpu::attention_variants().begin(), cpu::attention_variants().end());
  for (const AttentionPeer& p : attention_peers()) {
    entries.push_back(
        {p.name, -1, "peer", p.run, p.workspace_floats, std::numeric_limits<std::int64_t>::max()});
  }
  // The fused peers come after them in the order drawn for each problem.
  const std::vector<std::string> fused_names =
      fused.peers ? fused.peers->peers() : std::vector<std::string>{};
  std::mt19937_64 rng(sweep.order_seed);
  for (std::int64_t seq : sweep.seqs) {
    for (std::int64_t d : sweep.head_dims) {
      for (bool causal : {false, true}) {
        for (int t : sweep.threads) {
          const AttentionShape shape{1, attention_heads_for(seq), seq, seq, d};
          for (std::size_t i : shuffled_order(entries.size() + fused_names.size(), rng)) {
            if (i >= entries.size()) {
              const std::string& peer = fused_names[i - entries.size()];
              register_guarded(
                  attention_name(peer, shape, causal, t), *fused.failed,
                  [fused, peer, shape, causal, t, p = peak.at(t)](benchmark::State& state) {
                    fused_peer_benchmark(state, *fused.peers, peer, shape, causal, t, p,
                                         fused.min_time, *fused.failed);
                  })
                  ->Iterations(1)
                  ->UseManualTime()
                  ->Unit(benchmark::kMillisecond);
              continue;
            }
            const AttentionVariant& v = entries[i];
            if (seq > v.largest_timed) continue;
            const std::string name = attention_name(v.name, shape, causal, t);
            register_guarded(
                name, failed,
                [name, &v, shape, causal, t, p = peak.at(t), &failed](benchmark::State& state) {
                  attention_benchmark(state, name, v, shape, causal, t, p, failed);
                })
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
          }
        }
      }
    }
  }
}

}  // namespace locality::bench

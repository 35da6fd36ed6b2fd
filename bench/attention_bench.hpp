// The attention ladder's benchmarks (part of locality_bench).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <vector>

#include "locality/attention.hpp"

namespace locality::bench {

class FusedPeers;

struct AttentionSweep {
  std::vector<std::int64_t> seqs;       // seq_q = seq_kv
  std::vector<std::int64_t> head_dims;  // 64, 128
  std::vector<int> threads;
  std::uint64_t order_seed = 0;  // the variants' order within each shape (shuffled_order)
};

// The default, quick and full sweeps of sequence lengths.
const std::vector<std::int64_t>& attention_default_seqs();
const std::vector<std::int64_t>& attention_full_seqs();
const std::vector<std::int64_t>& attention_quick_seqs();

// Heads per benchmark for sequence length `seq`: up to 2048, every size does
// the work of one 2048 x 2048 head (batch 1, (2048 / seq)^2 heads); beyond,
// one head.
std::int64_t attention_heads_for(std::int64_t seq);

// Bytes a benchmark of this shape needs: Q, K, V, O and the largest workspace.
std::uint64_t attention_benchmark_bytes(std::int64_t heads, std::int64_t seq, std::int64_t d,
                                        int threads);

// The fused peers, where asked for: the helper's peers are timed in each
// problem's turn, each request for about min_time seconds of calls; their
// wrong results and failures set `failed` (the peers' flag, not the run's).
struct FusedSetup {
  FusedPeers* peers = nullptr;  // none: no fused peers
  double min_time = 0.2;
  std::atomic<bool>* failed = nullptr;
};

// Registers cpu/attention/<variant>/<B>x<H>x<Sq>x<Skv>x<D>/causal:<0|1>/omp_threads:<t>
// for every rung and peer; a wrong result of a rung or C++ peer sets `failed`.
void register_attention(const AttentionSweep& sweep, const std::map<int, double>& peak,
                        std::atomic<bool>& failed, const FusedSetup& fused);

}  // namespace locality::bench

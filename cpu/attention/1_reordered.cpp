// Rung 1 -- reordered: the same three passes, every inner loop unit-stride.
//
// Idea: as matmul's i-k-j. S's row i is built as a sum over c of
//   q(i, c) * (row c of K^T), so K is transposed once per head; P V is built
//   as a sum over j of p(i, j) * (row j of V). Each inner loop now sweeps a
//   contiguous row the compiler turns into vector loads and FMAs.
// Locality: every cache line fetched is used whole, front to back; rows of
//   K^T and V stream through L1 instead of being picked a float per line.
// Cost: a transposed copy of K per head (seq_kv x head_dim floats), and S is
//   still materialized: its traffic to L2/L3/DRAM is unchanged, and the
//   vector FMAs load as much as they compute.
// Edges: as rung 0 (causal rows stop at their last key).
#include <algorithm>
#include <cstddef>

#include "common.hpp"

namespace locality::cpu {
namespace {

void reordered_head(const HeadRows& h, std::span<float> workspace) {
  const std::ptrdiff_t rows = h.q.rows(), n = h.k.rows(), d = h.q.cols();
  Carver carve(workspace);
  float* kt = carve.take(static_cast<std::size_t>(d * n));
  float* s = carve.take(static_cast<std::size_t>(rows * n));
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    for (std::ptrdiff_t c = 0; c < d; ++c) kt[c * n + j] = h.k(j, c);
  }
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // S = Q K^T
    const std::ptrdiff_t visible = visible_keys(h.first_row + i, n, h.causal);
    float* si = s + i * n;
    std::fill(si, si + visible, 0.0f);
    for (std::ptrdiff_t c = 0; c < d; ++c) {  // S row i += q(i, c) * K^T row c
      const float qc = h.q(i, c);
      const float* ktc = kt + c * n;
      for (std::ptrdiff_t j = 0; j < visible; ++j) si[j] += qc * ktc[j];
    }
  }
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // P = softmax(scale * S), row by row
    softmax_row(s + i * n, visible_keys(h.first_row + i, n, h.causal), n, h.scale);
  }
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // O = P V
    const std::ptrdiff_t visible = visible_keys(h.first_row + i, n, h.causal);
    const float* si = s + i * n;
    float* oi = h.o.row(i);
    std::fill(oi, oi + d, 0.0f);
    add_weighted_rows(si, visible, h.v, oi);  // O row i += p(i, j) * V row j
  }
}

std::size_t per_thread(const AttentionShape& shape, int threads) {
  return add_floats(line_floats(shape.head_dim, shape.seq_kv),
                    line_floats(slab_rows(shape, threads), shape.seq_kv));
}

}  // namespace

std::size_t reordered_attention_workspace(const AttentionShape& shape, int threads) {
  return team_floats(attention_team(shape, threads), per_thread(shape, threads));
}

void reordered_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  split_query_rows(reordered_head, args, workspace, per_thread(args.shape, threads), threads);
}

}  // namespace locality::cpu

// Rung 0 -- naive: attention as the formula reads, in three passes.
//
// Idea: S = Q K^T (one dot product per score), softmax each row of S, then
//   O = P V with the textbook loop order: for each output element, walk the
//   keys (j innermost), so V is read down a column, d floats apart.
// Locality: the dot products read rows of Q and K front to back, but the
//   whole slab of S (rows x seq_kv floats, 64 MiB for one 4096 x 4096 head) is
//   written, read and written again by the softmax, and read once more by
//   P V; and each step of P V's inner loop touches a new cache line of V.
// Cost: O(seq_q * seq_kv) workspace, and memory traffic that grows with it.
// Edges: with the causal mask each row stops at its last visible key; a
//   workspace too large for the address space is refused (ShapeError), never
//   wrapped. Speed and cache counts: docs/cpu-attention.md.
#include <cstddef>

#include "common.hpp"

namespace locality::cpu {
namespace {

void naive_head(const HeadRows& h, std::span<float> workspace) {
  const std::ptrdiff_t rows = h.q.rows(), n = h.k.rows(), d = h.q.cols();
  float* s = Carver(workspace).take(static_cast<std::size_t>(rows * n));
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // S = Q K^T
    const std::ptrdiff_t visible = visible_keys(h.first_row + i, n, h.causal);
    for (std::ptrdiff_t j = 0; j < visible; ++j) {
      float dot = 0.0f;
      for (std::ptrdiff_t c = 0; c < d; ++c) dot += h.q(i, c) * h.k(j, c);
      s[i * n + j] = dot;
    }
  }
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // P = softmax(scale * S), row by row
    softmax_row(s + i * n, visible_keys(h.first_row + i, n, h.causal), n, h.scale);
  }
  for (std::ptrdiff_t i = 0; i < rows; ++i) {  // O = P V, V walked down its columns
    const std::ptrdiff_t visible = visible_keys(h.first_row + i, n, h.causal);
    for (std::ptrdiff_t c = 0; c < d; ++c) {
      float sum = 0.0f;
      for (std::ptrdiff_t j = 0; j < visible; ++j) sum += s[i * n + j] * h.v(j, c);
      h.o(i, c) = sum;
    }
  }
}

std::size_t per_thread(const AttentionShape& shape, int threads) {
  return line_floats(slab_rows(shape, threads), shape.seq_kv);
}

}  // namespace

std::size_t naive_attention_workspace(const AttentionShape& shape, int threads) {
  return team_floats(attention_team(shape, threads), per_thread(shape, threads));
}

void naive_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  split_query_rows(naive_head, args, workspace, per_thread(args.shape, threads), threads);
}

}  // namespace locality::cpu

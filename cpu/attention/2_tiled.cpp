// Rung 2 -- tiled: both products through the matmul ladder's packed loops.
//
// Idea: S = Q K^T and O = P V are matrix products, so hand them to the
//   building blocks of matmul rung 4 (packing, macro-kernel, micro-kernel:
//   cpu/matmul/4_packed.cpp), each block sized for a cache level. K is
//   transposed once per head so that K^T is an ordinary row-major operand.
// Locality: inside each product, registers hold a tile of the output, L1 a
//   micro-panel, L2 a block of packed A: the FLOPs run near the FMA probe.
//   What is left is S itself: rows x seq_kv floats, written by the first
//   product, read and rewritten by the softmax, read by the second.
// Cost: O(seq_q * seq_kv) workspace and the traffic it brings; with the
//   causal mask, the products still compute every score up to the slab's
//   last visible key (about twice the needed work for a whole head).
// Edges: the products stop at the slab's last visible key; with the causal
//   mask and a NaN or infinity in V, P V goes row by row over each row's
//   visible keys, so a masked zero never meets a NaN (attention.hpp's rules).
#include <algorithm>
#include <cstddef>

#include "common.hpp"
#include "microkernel.hpp"

namespace locality::cpu {
namespace {

struct Layout {
  std::size_t kt, s, pack;
  explicit Layout(const AttentionShape& shape, int threads) {
    const std::ptrdiff_t rows = slab_rows(shape, threads), n = shape.seq_kv, d = shape.head_dim;
    const MicroKernel& uk = best_microkernel();
    kt = line_floats(d, n);
    s = line_floats(rows, n);
    // The larger of the two products' packing buffers: m x n x k = rows x seq_kv x d, then
    // rows x d x seq_kv.
    pack = line_floats(std::max(packed_matmul_buffer_floats(uk, rows, n, d),
                                packed_matmul_buffer_floats(uk, rows, d, n)));
  }
  std::size_t total() const { return add_floats(add_floats(kt, s), pack); }
};

void tiled_head(const HeadRows& h, std::span<float> workspace) {
  const std::ptrdiff_t rows = h.q.rows(), n = h.k.rows(), d = h.q.cols();
  const MicroKernel& uk = best_microkernel();
  // Keys the slab's last row sees: the products stop there.
  const std::ptrdiff_t cols = visible_keys(h.first_row + rows - 1, n, h.causal);
  Carver carve(workspace);
  float* kt = carve.take(static_cast<std::size_t>(d * n));
  float* s = carve.take(static_cast<std::size_t>(rows * n));
  float* pack = carve.take(std::max(packed_matmul_buffer_floats(uk, rows, cols, d),
                                    packed_matmul_buffer_floats(uk, rows, d, cols)));
  for (std::ptrdiff_t j = 0; j < cols; ++j) {
    for (std::ptrdiff_t c = 0; c < d; ++c) kt[c * cols + j] = h.k(j, c);
  }
  const View<float> s_view(s, rows, cols);
  packed_matmul_into(uk, h.q, ConstView<float>(kt, d, cols), s_view, pack);
  for (std::ptrdiff_t i = 0; i < rows; ++i) {
    softmax_row(s_view.row(i), visible_keys(h.first_row + i, n, h.causal), cols, h.scale);
  }
  const ConstView<float> v = h.v.block(0, 0, cols, d);
  if (!h.causal || all_finite(v)) {
    packed_matmul_into(uk, s_view, v, h.o, pack);
    return;
  }
  // A NaN or infinity in V, and masked zeros in P: row by row over the keys
  // each row sees, so that 0 x NaN never happens (see all_finite).
  for (std::ptrdiff_t i = 0; i < rows; ++i) {
    float* oi = h.o.row(i);
    std::fill(oi, oi + d, 0.0f);
    add_weighted_rows(s_view.row(i), visible_keys(h.first_row + i, n, h.causal), v, oi);
  }
}

}  // namespace

std::size_t tiled_attention_workspace(const AttentionShape& shape, int threads) {
  return team_floats(attention_team(shape, threads), Layout(shape, threads).total());
}

void tiled_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  split_query_rows(tiled_head, args, workspace, Layout(args.shape, threads).total(), threads);
}

}  // namespace locality::cpu

#include "common.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace locality::cpu {

void softmax_row(float* s, std::ptrdiff_t visible, std::ptrdiff_t cols, float scale) {
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (std::ptrdiff_t j = 0; j < visible; ++j) {
    s[j] *= scale;
    max = std::max(max, s[j]);
  }
  // exp(s - max) as 2^((s - max) log2 e); the largest weight is exactly 1.
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (std::ptrdiff_t j = 0; j < visible; ++j) {
    s[j] = exp2_nonpositive((s[j] - max) * kLog2e);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (std::ptrdiff_t j = 0; j < visible; ++j) s[j] *= inv;
  std::fill(s + visible, s + cols, 0.0f);
}

void add_weighted_rows(const float* p, std::ptrdiff_t keys, ConstView<float> v, float* o_row) {
  const std::ptrdiff_t d = v.cols();
  for (std::ptrdiff_t j = 0; j < keys; ++j) {
    const float pj = p[j];
    const float* vj = v.row(j);
#pragma omp simd
    for (std::ptrdiff_t c = 0; c < d; ++c) o_row[c] += pj * vj[c];
  }
}

bool all_finite(ConstView<float> x) {
  for (std::ptrdiff_t i = 0; i < x.rows(); ++i) {
    const float* row = x.row(i);
    // All exponent bits set: an infinity or a NaN. On the bits, so that the
    // loop vectorizes (std::isfinite did not).
    std::uint32_t special = 0;
    for (std::ptrdiff_t c = 0; c < x.cols(); ++c) {
      special |= static_cast<std::uint32_t>(
          (std::bit_cast<std::uint32_t>(row[c]) & 0x7f800000u) == 0x7f800000u);
    }
    if (special != 0) return false;
  }
  return true;
}

int attention_team(const AttentionShape& shape, int threads) {
  const std::ptrdiff_t rows = shape.batch * shape.heads * shape.seq_q;
  return static_cast<int>(std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(threads, rows)));
}

std::ptrdiff_t slab_rows(const AttentionShape& shape, int threads) {
  const std::ptrdiff_t rows = shape.batch * shape.heads * shape.seq_q;
  const std::ptrdiff_t team = attention_team(shape, threads);
  return std::min(shape.seq_q, (rows + team - 1) / team);
}

void split_query_rows(HeadKernel kernel, const AttentionArgs& args, std::span<float> workspace,
                      std::size_t per_thread, int threads) {
  const AttentionShape& s = args.shape;
  const std::ptrdiff_t d = s.head_dim, total = s.batch * s.heads * s.seq_q;
  const int team = attention_team(s, threads);
  const auto work = [&](std::ptrdiff_t t, std::ptrdiff_t nt) {
    std::ptrdiff_t row = total * t / nt;
    const std::ptrdiff_t end = total * (t + 1) / nt;
    const std::span<float> mine =
        workspace.subspan(static_cast<std::size_t>(t) * per_thread, per_thread);
    while (row < end) {  // one piece per head the slab touches
      const std::ptrdiff_t head = row / s.seq_q, i0 = row % s.seq_q;
      const std::ptrdiff_t rows = std::min(end - row, s.seq_q - i0);
      const std::size_t q_at = static_cast<std::size_t>((head * s.seq_q + i0) * d);
      const std::size_t kv_at = static_cast<std::size_t>(head * s.seq_kv * d);
      const HeadRows piece{ConstView<float>(args.q + q_at, rows, d),
                           ConstView<float>(args.k + kv_at, s.seq_kv, d),
                           ConstView<float>(args.v + kv_at, s.seq_kv, d),
                           View<float>(args.o + q_at, rows, d),
                           i0,
                           args.scale,
                           args.causal};
      kernel(piece, mine);
      row += rows;
    }
  };
  if (team == 1) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(team)
  work(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace locality::cpu

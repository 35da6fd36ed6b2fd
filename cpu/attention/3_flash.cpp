// Rung 3 -- flash: one pass over K and V per block of queries, with a
//   running max and sum (online softmax); no seq_q x seq_kv buffer.
//
// Idea: for a block of NR queries, walk K and V in blocks of kv_block keys.
//   Each block's scores S_b = Q K_b^T go into a small buffer; the running max
//   m moves to max(m, max S_b), what was accumulated so far (the output and
//   the running sum l) is scaled by 2^(m_old - m_new), and the block's
//   weights 2^(S_b - m) are added in: O += P_b V_b, l += rowsum(P_b). At the
//   end O / l is exactly softmax(S) V, and S never existed as a whole.
//   Everything is laid out transposed (keys down, queries across), so both
//   products are calls of the matmul ladder's micro-kernel with no copies:
//     S_b^T (kv_block x NR) = K_b (packed A, MR keys a panel) * Q^T (packed B)
//     O^T   (d x NR)       += V_b^T (packed A, MR dims a panel) * S_b^T (as B)
//   and the softmax's per-query max and sum are vertical vector operations
//   across NR lanes, one query per lane. The scale and log2(e) are folded
//   into Q^T once, so the exponentials are powers of two.
// Locality: per query block, Q^T (d x NR), the score block (kv_block x NR)
//   and O^T (d x NR) stay in L1 for the whole pass; K and V, packed once per
//   head (O(seq_kv * d), not O(seq_q * seq_kv)), stream from L2 (L3 for long
//   sequences) once per query block. With the causal mask, key blocks past a
//   query block's last row are never touched.
// Cost: head_dim is rounded up to whole panels of the P V kernel's rows for
//   O^T (padding FMAs; that kernel is chosen to make them few, see
//   pv_microkernel); the exponentials; the rescale when the max moves.
//   With several threads this rung only cuts the rows into contiguous slabs,
//   which the causal mask makes uneven; rung 4 deals the work out.
// Edges: the last query block is padded with zero rows and K and V with
//   zero keys; keys a query may not see add nothing to its lane, even where
//   V holds a NaN or an infinity (masked_pv_key; attention.hpp's rules).
#include <algorithm>
#include <limits>
#include <stdexcept>

#include "flash.hpp"
#include "packing.hpp"

namespace locality::cpu {
namespace {

std::ptrdiff_t round_up(std::ptrdiff_t x, std::ptrdiff_t to) { return (x + to - 1) / to * to; }

// One step of the online softmax over a score block, NR queries wide (one per
// lane): update the running max and sum, rescale O^T, turn scores into weights.
template <int NR>
void online_softmax(float* __restrict st, std::ptrdiff_t keys, float* __restrict m,
                    float* __restrict l, float* __restrict ot, std::ptrdiff_t d_pad) {
  static_assert(NR % kLanes == 0);
  constexpr int kVecs = NR / kLanes;  // kLanes queries per vector, one per lane
  Vec top[kVecs], alpha[kVecs];
  for (Vec& t : top) t = Vec{} - std::numeric_limits<float>::infinity();
  for (std::ptrdiff_t j = 0; j < keys; ++j) {
    for (int h = 0; h < kVecs; ++h) {
      const Vec s = load_vec(st + j * NR + kLanes * h);
      top[h] = s > top[h] ? s : top[h];
    }
  }
  bool moved = false;
  for (int h = 0; h < kVecs; ++h) {
    const Vec m_old = load_vec(m + kLanes * h);
    const Vec m_new = m_old > top[h] ? m_old : top[h];
    alpha[h] = exp2_nonpositive(m_old - m_new);  // 0 on the first block (m = -inf)
    for (int i = 0; i < kLanes; ++i) moved |= alpha[h][i] != 1.0f;
    store_vec(m + kLanes * h, m_new);
    top[h] = m_new;
  }
  if (moved) {
    for (std::ptrdiff_t c = 0; c < d_pad; ++c) {
      for (int h = 0; h < kVecs; ++h) {
        store_vec(ot + c * NR + kLanes * h, load_vec(ot + c * NR + kLanes * h) * alpha[h]);
      }
    }
  }
  Vec sum[kVecs];
  for (int h = 0; h < kVecs; ++h) sum[h] = load_vec(l + kLanes * h) * alpha[h];
  for (std::ptrdiff_t j = 0; j < keys; ++j) {
    for (int h = 0; h < kVecs; ++h) {
      const Vec p = exp2_nonpositive(load_vec(st + j * NR + kLanes * h) - top[h]);
      store_vec(st + j * NR + kLanes * h, p);
      sum[h] += p;
    }
  }
  for (int h = 0; h < kVecs; ++h) store_vec(l + kLanes * h, sum[h]);
}

// O^T += (column j of V_b^T) x (row j of P_b^T) for one key, only in the
// lanes (queries) that see it: the masked lanes add nothing, even when V
// holds a NaN or an infinity.
template <int NR>
void masked_pv_key(const FlashBuffers& buf, const FlashLayout& layout, std::ptrdiff_t key,
                   std::ptrdiff_t j, std::ptrdiff_t first_row, std::ptrdiff_t d) {
  const std::ptrdiff_t mr = layout.pv->mr;
  Vec lane;
  for (int r = 0; r < kLanes; ++r) lane[r] = static_cast<float>(r);
  const float first_seen = static_cast<float>(key - first_row);  // first lane that sees key
  for (std::ptrdiff_t c = 0; c < d; ++c) {
    const float v = buf.v[(c / mr) * mr * layout.keys_pad + key * mr + c % mr];
    for (int h = 0; h < NR / kLanes; ++h) {
      const auto seen = lane + static_cast<float>(kLanes * h) >= first_seen;  // lane masks
      const Vec add = v * load_vec(buf.st + j * NR + kLanes * h);
      float* out = buf.ot + c * NR + kLanes * h;
      store_vec(out, load_vec(out) + (seen ? add : Vec{}));
    }
  }
}

// Q^T for a block of NR query rows, scaled: qt[c * NR + r] = q(r, c) * scale,
// zero for the rows past the block's end.
template <int NR>
void transpose_queries(ConstView<float> q, float scale, float* __restrict qt) {
  const std::ptrdiff_t rows = q.rows(), d = q.cols();
  std::ptrdiff_t c0 = 0;
#if defined(__AVX2__)
  if (rows == NR && NR % 8 == 0) {  // 8 x 8 blocks in registers, then the last columns
    const __m256 s = _mm256_set1_ps(scale);
    for (; c0 + 8 <= d; c0 += 8) {
      for (std::ptrdiff_t r0 = 0; r0 < NR; r0 += 8) {
        __m256 x[8];
        for (int i = 0; i < 8; ++i) x[i] = _mm256_mul_ps(_mm256_loadu_ps(q.row(r0 + i) + c0), s);
        transpose_8x8(x);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(qt + (c0 + j) * NR + r0, x[j]);
      }
    }
  }
#endif
  for (std::ptrdiff_t c = c0; c < d; ++c) {
    for (std::ptrdiff_t r = 0; r < NR; ++r) qt[c * NR + r] = r < rows ? q(r, c) * scale : 0.0f;
  }
}

// O for the block's rows from O^T and the running sums: o(r, c) =
// ot[c * NR + r] / l[r], as a product with 1 / l[r].
template <int NR>
void transpose_output(const float* __restrict ot, const float* __restrict l, View<float> o) {
  const std::ptrdiff_t rows = o.rows(), d = o.cols();
  std::ptrdiff_t c0 = 0;
#if defined(__AVX2__)
  if (rows == NR && NR % 8 == 0) {
    for (std::ptrdiff_t r0 = 0; r0 < NR; r0 += 8) {
      const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_loadu_ps(l + r0));
      for (c0 = 0; c0 + 8 <= d; c0 += 8) {
        __m256 x[8];
        for (int j = 0; j < 8; ++j)
          x[j] = _mm256_mul_ps(_mm256_loadu_ps(ot + (c0 + j) * NR + r0), inv);
        transpose_8x8(x);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(o.row(r0 + i) + c0, x[i]);
      }
    }
  }
#endif
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / l[r];
    for (std::ptrdiff_t c = c0; c < d; ++c) o(r, c) = ot[c * NR + r] * inv;
  }
}

template <int NR>
void query_block(const FlashLayout& layout, const FlashBuffers& buf, ConstView<float> q,
                 View<float> o, std::ptrdiff_t first_row, std::ptrdiff_t seq_kv, float scale,
                 bool causal, bool v_finite) {
  const MicroKernel &uk = *layout.uk, &pv = *layout.pv;
  const std::ptrdiff_t mr = uk.mr, d = layout.d, d_pad = layout.d_pad, rows = q.rows();
  constexpr float kInf = std::numeric_limits<float>::infinity();

  // Q^T, scaled so that scores come out in log2 units.
  transpose_queries<NR>(q, scale * kLog2e, buf.qt);
  std::fill(buf.ot, buf.ot + d_pad * NR, 0.0f);
  std::fill(buf.m, buf.m + NR, -kInf);
  std::fill(buf.l, buf.l + NR, 0.0f);

  // Keys the block's last row sees; later key blocks are skipped entirely.
  const std::ptrdiff_t keys = visible_keys(first_row + rows - 1, seq_kv, causal);
  for (std::ptrdiff_t j0 = 0; j0 < keys; j0 += layout.kv_block) {
    const std::ptrdiff_t kb = std::min(layout.kv_block, keys - j0), kb_pad = round_up(kb, mr);
    for (std::ptrdiff_t p = 0; p < kb_pad; p += mr) {  // S^T = K_b Q^T
      uk.run(d, buf.k + (j0 + p) * d, buf.qt, buf.st + p * NR, NR, false);
    }
    // Mask padding keys, and keys past the diagonal when causal.
    const bool ragged = j0 + kb_pad > keys;
    const bool diagonal = causal && j0 + kb_pad - 1 > first_row;
    if (ragged || diagonal) {
      for (std::ptrdiff_t j = 0; j < kb_pad; ++j) {
        const std::ptrdiff_t key = j0 + j;
        for (std::ptrdiff_t r = 0; r < NR; ++r) {
          if (key >= keys || (causal && key > first_row + r)) buf.st[j * NR + r] = -kInf;
        }
      }
    }
    online_softmax<NR>(buf.st, kb_pad, buf.m, buf.l, buf.ot, d_pad);
    // Keys of the block that every row of it sees; with finite V, all of them
    // can go through the micro-kernel, masked ones with weight exactly 0.
    const std::ptrdiff_t shared =
        diagonal && !v_finite ? std::clamp<std::ptrdiff_t>(first_row + 1 - j0, 0, kb) : kb_pad;
    for (std::ptrdiff_t c = 0; c < d_pad && shared > 0; c += pv.mr) {  // O^T += V_b^T P_b^T
      pv.run(shared, buf.v + c * layout.keys_pad + j0 * pv.mr, buf.st, buf.ot + c * NR, NR, true);
    }
    for (std::ptrdiff_t j = shared; j < kb; ++j) {  // the rest, lane by lane under the mask
      masked_pv_key<NR>(buf, layout, j0 + j, j, first_row, d);
    }
  }
  transpose_output<NR>(buf.ot, buf.l, o);
}

// V^T in MR-dim panels: panel c holds, key after key, dims c .. c+MR (zero past
// d), and zeros for the padding keys so that 0 weights never meet garbage. Row
// by row: each row of V is read once and its MR-wide pieces go to the panels.
// MR is the P V kernel's (0: not known at compile time).
template <int MR>
void pack_v_panels(const FlashLayout& layout, ConstView<float> v, std::ptrdiff_t keys, float* out) {
  const std::ptrdiff_t mr = MR > 0 ? MR : layout.pv->mr, d = layout.d;
  const std::ptrdiff_t keys_pad = round_up(keys, layout.uk->mr), whole = d / mr * mr;
  const std::ptrdiff_t step = mr * layout.keys_pad;  // from one panel to the next
  for (std::ptrdiff_t j = 0; j < keys_pad; ++j) {
    float* dst = out + j * mr;
    if (j >= keys) {
      for (std::ptrdiff_t c = 0; c < layout.d_pad; c += mr, dst += step) std::fill_n(dst, mr, 0.0f);
      continue;
    }
    const float* src = v.row(j);
    std::ptrdiff_t c = 0;
    for (; c < whole; c += mr, dst += step) {
      for (std::ptrdiff_t r = 0; r < mr; ++r) dst[r] = src[c + r];
    }
    for (; c < layout.d_pad; c += mr, dst += step) {
      for (std::ptrdiff_t r = 0; r < mr; ++r) dst[r] = c + r < d ? src[c + r] : 0.0f;
    }
  }
}

void flash_head(const HeadRows& h, std::span<float> workspace) {
  const FlashLayout layout(AttentionShape{1, 1, h.q.rows(), h.k.rows(), h.q.cols()});
  Carver carve(workspace);
  const FlashBuffers buf(carve, layout);
  const std::ptrdiff_t rows = h.q.rows(), n = h.k.rows(), nr = layout.uk->nr;
  const bool v_finite =
      flash_pack_kv(layout, h.k, h.v, visible_keys(h.first_row + rows - 1, n, h.causal), buf);
  for (std::ptrdiff_t i = 0; i < rows; i += nr) {
    const std::ptrdiff_t block = std::min(nr, rows - i);
    flash_query_block(layout, buf, h.q.block(i, 0, block, h.q.cols()),
                      h.o.block(i, 0, block, h.o.cols()), h.first_row + i, n, h.scale, h.causal,
                      v_finite);
  }
}

}  // namespace

FlashLayout::FlashLayout(const AttentionShape& shape)
    : uk(&best_microkernel()),
      pv(&pv_microkernel(*uk, shape.head_dim)),
      d(shape.head_dim),
      d_pad(round_up(shape.head_dim, pv->mr)),
      keys_pad(round_up(shape.seq_kv, uk->mr)),
      kv_block(flash_kv_block(*uk, machine_cache_sizes())) {}

const MicroKernel& pv_microkernel(const MicroKernel& uk, std::ptrdiff_t d) {
  const MicroKernel* best = &uk;
  for (const MicroKernel& k : available_microkernels()) {
    if (k.isa == uk.isa && k.nr == uk.nr && round_up(d, k.mr) < round_up(d, best->mr)) best = &k;
  }
  return *best;
}

std::ptrdiff_t flash_kv_block(const MicroKernel& uk, const CacheSizes& caches) {
  // The kv_block x NR score block takes half of L1d, leaving room for Q^T,
  // O^T and the micro-panels streaming through; whole MR-key panels.
  const std::ptrdiff_t bytes = caches.l1d_bytes / 2;
  return std::max(uk.mr,
                  bytes / static_cast<std::ptrdiff_t>(sizeof(float) * uk.nr) / uk.mr * uk.mr);
}

std::size_t FlashLayout::floats() const {
  const std::ptrdiff_t nr = uk->nr;
  std::size_t sum = line_floats(keys_pad, d);
  for (std::size_t piece :
       {line_floats(d_pad, keys_pad), line_floats(d, nr), line_floats(kv_block, nr),
        line_floats(d_pad, nr), line_floats(nr, 1), line_floats(nr, 1)}) {
    sum = add_floats(sum, piece);
  }
  return sum;
}

FlashBuffers::FlashBuffers(Carver& carve, const FlashLayout& layout) {
  const auto take = [&](std::ptrdiff_t floats) {
    return carve.take(static_cast<std::size_t>(floats));
  };
  const std::ptrdiff_t nr = layout.uk->nr;
  k = take(layout.keys_pad * layout.d);
  v = take(layout.d_pad * layout.keys_pad);
  qt = take(layout.d * nr);
  st = take(layout.kv_block * nr);
  ot = take(layout.d_pad * nr);
  m = take(nr);
  l = take(nr);
}

bool flash_pack_kv(const FlashLayout& layout, ConstView<float> k, ConstView<float> v,
                   std::ptrdiff_t keys, const FlashBuffers& buf) {
  const MicroKernel& uk = *layout.uk;
  const std::ptrdiff_t d = layout.d;
  pack_a_block(uk, k.block(0, 0, keys, d), buf.k);
  switch (layout.pv->mr) {  // the micro-kernels' MRs, so that a piece is a few moves, not a loop
    case 4: pack_v_panels<4>(layout, v, keys, buf.v); break;
    case 6: pack_v_panels<6>(layout, v, keys, buf.v); break;
    case 8: pack_v_panels<8>(layout, v, keys, buf.v); break;
    case 12: pack_v_panels<12>(layout, v, keys, buf.v); break;
    default: pack_v_panels<0>(layout, v, keys, buf.v); break;
  }
  return all_finite(v.block(0, 0, keys, d));
}

void flash_query_block(const FlashLayout& layout, const FlashBuffers& buf, ConstView<float> q,
                       View<float> o, std::ptrdiff_t first_row, std::ptrdiff_t seq_kv, float scale,
                       bool causal, bool v_finite) {
  switch (layout.uk->nr) {
    case 32: return query_block<32>(layout, buf, q, o, first_row, seq_kv, scale, causal, v_finite);
    case 16: return query_block<16>(layout, buf, q, o, first_row, seq_kv, scale, causal, v_finite);
    default: throw std::logic_error("flash attention: no score-block code for this micro-kernel");
  }
}

std::size_t flash_attention_workspace(const AttentionShape& shape, int threads) {
  return team_floats(attention_team(shape, threads), FlashLayout(shape).floats());
}

void flash_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  split_query_rows(flash_head, args, workspace, FlashLayout(args.shape).floats(), threads);
}

}  // namespace locality::cpu

// The flash-attention core shared by rung 3 (flash) and rung 4
// (parallel_flash): K and V packed once per head, then one pass over K/V
// blocks per block of queries (internal to cpu/attention/).
#pragma once

#include <cstddef>

#include "common.hpp"
#include "microkernel.hpp"

namespace locality::cpu {

// Sizes of the per-thread buffers, in floats; none grows with seq_q, and
// only the packed K and V grow (linearly) with seq_kv.
struct FlashLayout {
  const MicroKernel* uk;    // for S^T = K_b Q^T (the matmul rungs' kernel)
  const MicroKernel* pv;    // for O^T += V_b^T P_b^T (pv_microkernel)
  std::ptrdiff_t d, d_pad;  // head_dim, and rounded up to whole panels of pv's MR rows
  std::ptrdiff_t keys_pad;  // seq_kv rounded up to whole MR-key panels
  std::ptrdiff_t kv_block;  // keys per block of the inner loop, a multiple of MR
  explicit FlashLayout(const AttentionShape& shape);
  std::size_t floats() const;
};

struct FlashBuffers {
  float* k;   // K packed as MR-key micro-panels of A (keys_pad x d)
  float* v;   // V^T packed as micro-panels of A of pv's MR dims (d_pad x keys_pad)
  float* qt;  // the query block, transposed and scaled: a micro-panel of B (d x NR)
  float* st;  // scores, then weights, transposed: a micro-panel of B (kv_block x NR)
  float* ot;  // the output block, transposed (d_pad x NR)
  float* m;   // running max per query (NR)
  float* l;   // running sum per query (NR)
  FlashBuffers(Carver& carve, const FlashLayout& layout);
};

// The kernel for P V at head_dim d: of the kernels of uk's instruction set and
// as wide as `uk` (the score block is NR queries wide), the one whose MR-row
// panels pad d the least, the first (fastest) of those that tie. With AVX-512, 8 x 32 for head_dim
// 64 and 128, which 12-row panels would pad to 72 and 132.
const MicroKernel& pv_microkernel(const MicroKernel& uk, std::ptrdiff_t d);

// Keys per block of the inner loop for `caches` (FlashLayout's kv_block).
std::ptrdiff_t flash_kv_block(const MicroKernel& uk, const CacheSizes& caches);

// Packs keys [0, keys) of one head's K and V (keys <= seq_kv). Returns
// whether those rows of V are all finite (see all_finite in common.hpp).
bool flash_pack_kv(const FlashLayout& layout, ConstView<float> k, ConstView<float> v,
                   std::ptrdiff_t keys, const FlashBuffers& buf);

// O rows for q (at most NR rows of one head, the first being row `first_row`
// of the head), from the K and V packed by flash_pack_kv. `v_finite` is what
// flash_pack_kv returned: when false, keys the causal mask hides from some
// rows of the block stay out of P V instead of entering with weight 0.
void flash_query_block(const FlashLayout& layout, const FlashBuffers& buf, ConstView<float> q,
                       View<float> o, std::ptrdiff_t first_row, std::ptrdiff_t seq_kv, float scale,
                       bool causal, bool v_finite);

}  // namespace locality::cpu

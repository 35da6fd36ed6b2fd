// Rung 4 -- parallel_flash: rung 3 with the work dealt out, not cut up.
//
// Idea: the unit of work is one (batch, head, query block) item: NR query
//   rows against the keys they see. OpenMP hands items out one at a time
//   (schedule(dynamic)), in head order so that a thread packs a head's K and
//   V once and then stays on it; within a head, with the causal mask, the
//   last query blocks (which see the most keys) go first, so the short ones
//   fill in at the end. Rung 3's contiguous slabs give one thread a causal
//   head's light upper rows and another its heavy lower rows.
// Locality: each core keeps its own packed K and V (L2) and its own query
//   block's buffers (L1); threads on the same head read the same K and V rows
//   from the shared L3. No buffer is shared, so no barrier is needed.
// Cost: each thread packs every head it touches (O(seq_kv * d) each time,
//   against O(seq_q * seq_kv * d) work); one atomic fetch per item.
// Edges: fewer items than threads: the team shrinks to the items.
#include <omp.h>

#include <algorithm>

#include "flash.hpp"

namespace locality::cpu {
namespace {

int team_for(const AttentionShape& shape, int threads) {
  const std::ptrdiff_t nr = best_microkernel().nr;
  const std::ptrdiff_t items = shape.batch * shape.heads * ((shape.seq_q + nr - 1) / nr);
  return static_cast<int>(std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(threads, items)));
}

}  // namespace

std::size_t parallel_flash_attention_workspace(const AttentionShape& shape, int threads) {
  return team_floats(team_for(shape, threads), FlashLayout(shape).floats());
}

void parallel_flash_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  const AttentionShape& s = args.shape;
  const FlashLayout layout(s);
  const std::size_t per_thread = layout.floats();
  const std::ptrdiff_t nr = layout.uk->nr, d = s.head_dim;
  const std::ptrdiff_t blocks = (s.seq_q + nr - 1) / nr, items = s.batch * s.heads * blocks;
  // Keys any row of a head sees: all of them unless the causal mask hides the tail.
  const std::ptrdiff_t head_keys = visible_keys(s.seq_q - 1, s.seq_kv, args.causal);
  const int team = team_for(s, threads);

#pragma omp parallel num_threads(team)
  {
    Carver carve(
        workspace.subspan(static_cast<std::size_t>(omp_get_thread_num()) * per_thread, per_thread));
    const FlashBuffers buf(carve, layout);
    std::ptrdiff_t packed_head = -1;
    bool v_finite = true;
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t item = 0; item < items; ++item) {
      const std::ptrdiff_t head = item / blocks;
      const std::ptrdiff_t in_head = item % blocks;
      const std::ptrdiff_t block = args.causal ? blocks - 1 - in_head : in_head;
      const std::size_t kv_at = static_cast<std::size_t>(head * s.seq_kv * d);
      if (head != packed_head) {
        v_finite = flash_pack_kv(layout, ConstView<float>(args.k + kv_at, s.seq_kv, d),
                                 ConstView<float>(args.v + kv_at, s.seq_kv, d), head_keys, buf);
        packed_head = head;
      }
      const std::ptrdiff_t i0 = block * nr, rows = std::min(nr, s.seq_q - i0);
      const std::size_t q_at = static_cast<std::size_t>((head * s.seq_q + i0) * d);
      flash_query_block(layout, buf, ConstView<float>(args.q + q_at, rows, d),
                        View<float>(args.o + q_at, rows, d), i0, s.seq_kv, args.scale, args.causal,
                        v_finite);
    }
  }
}

}  // namespace locality::cpu

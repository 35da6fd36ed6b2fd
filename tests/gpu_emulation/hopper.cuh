// gpu/matmul_bf16/hopper.cuh for the emulation: each instruction computed from
// the semantics that file documents. The copy engine copies at once and
// swizzles as CU_TENSOR_MAP_SWIZZLE_128B does (16-byte chunk c of each
// 128-byte row r at chunk c xor (r mod 8), by the address's bits); mbarriers
// count arrivals and bytes and flip their phase; wgmma reads its operands
// through the descriptors by the PTX ISA's canonical 128-byte-swizzled
// layouts (K-major: rows of 128 bytes, 8-row atoms SBO apart; N-major: rows
// along n, 8-row atoms along k SBO apart, 64-column slices LBO apart). A
// wgmma is asynchronous as on the GPU, at its latest: it reads its operands
// and writes its accumulators only when a wait_group retires its group, so a
// kernel that reads accumulators before the wait, changes an A register in
// flight, or lets a stage be refilled while an MMA still reads it computes
// wrong answers here too (fences and commits also bring the warp's threads
// together, as .sync.aligned does), and every group of MMAs must start with
// a wgmma_fence (stricter than the ISA, which the emulation cannot follow
// register by register).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cuda.h"
#include "cuda_bf16.h"
#include "cuda_runtime.h"
#include "ptx.cuh"

namespace locality::gpu::hopper {

namespace detail {

inline std::mutex barrier_lock;

// An mbarrier's state in its 8 bytes of shared memory.
struct Barrier {
  std::uint16_t expected, pending;
  std::uint32_t phase_and_tx;  // bit 31 the phase, bits 0-30 bytes still to come
};
static_assert(sizeof(Barrier) == 8);

inline Barrier load(const std::uint64_t* bar) {
  Barrier b;
  std::memcpy(&b, bar, 8);
  return b;
}
inline void store(std::uint64_t* bar, Barrier b) { std::memcpy(bar, &b, 8); }

// The phase completes when every arrival and every byte is in.
inline void maybe_complete(Barrier& b) {
  if (b.pending == 0 && (b.phase_and_tx & 0x7fffffffu) == 0) {
    b.phase_and_tx ^= 0x80000000u;
    b.pending = b.expected;
  }
}

// A descriptor's 14-bit field at `shift`, in bytes.
inline std::ptrdiff_t field(std::uint64_t desc, int shift) {
  return static_cast<std::ptrdiff_t>(((desc >> shift) & 0x3FFF) << 4);
}

// The 128-byte swizzle, a function of the shared-memory address.
inline unsigned char* swizzled(unsigned char* p) {
  const std::uintptr_t offset = static_cast<std::uintptr_t>(p - emu::shared.bytes);
  return emu::shared.bytes + (offset ^ (((offset >> 7) & 7) << 4));
}

inline float bf16_at(const unsigned char* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return from_bf16_bits(h);
}

}  // namespace detail

inline void mbarrier_init(std::uint64_t* bar, unsigned count) {
  std::lock_guard<std::mutex> hold(detail::barrier_lock);
  detail::store(bar, {static_cast<std::uint16_t>(count), static_cast<std::uint16_t>(count), 0});
}
inline void fence_barrier_init() {}

inline void mbarrier_arrive_expect_tx(std::uint64_t* bar, unsigned bytes) {
  std::lock_guard<std::mutex> hold(detail::barrier_lock);
  detail::Barrier b = detail::load(bar);
  b.phase_and_tx += bytes;
  --b.pending;
  detail::maybe_complete(b);
  detail::store(bar, b);
}

inline void mbarrier_arrive(std::uint64_t* bar) { mbarrier_arrive_expect_tx(bar, 0); }

// Named barriers, counted thread by thread (every thread of the warps that
// take part calls them, as the kernels do): a phase completes at `threads`
// arrivals; sync waits for the phase it arrived in.
namespace detail {
struct NamedBarrier {
  std::mutex lock;
  std::condition_variable done;
  int count = 0;
  unsigned phase = 0;
};
inline NamedBarrier named_barriers[16];
// A block must leave every named barrier as it found it: as many arrivals
// as each phase needs, none left over.
inline void named_barriers_settled() noexcept {
  for (const NamedBarrier& b : named_barriers) {
    if (b.count != 0) {
      std::fprintf(stderr, "emulation: a block ended with a named barrier half arrived\n");
      std::abort();
    }
  }
}
inline const bool named_barriers_checked =
    (emu::between_blocks.push_back(named_barriers_settled), true);
inline unsigned named_arrive(int id, int threads) {
  NamedBarrier& b = named_barriers[id];
  std::lock_guard<std::mutex> hold(b.lock);
  const unsigned mine = b.phase;
  if (++b.count == threads) {
    b.count = 0;
    ++b.phase;
    b.done.notify_all();
  }
  return mine;
}
}  // namespace detail
inline void named_barrier_arrive(int id, int threads) {
  if (id <= 0 || id >= 16 || threads % 32 != 0) std::abort();
  detail::named_arrive(id, threads);
}
inline void named_barrier_sync(int id, int threads) {
  if (id <= 0 || id >= 16 || threads % 32 != 0) std::abort();
  const unsigned mine = detail::named_arrive(id, threads);
  detail::NamedBarrier& b = detail::named_barriers[id];
  std::unique_lock<std::mutex> hold(b.lock);
  b.done.wait(hold, [&] { return b.phase != mine; });
}

inline void mbarrier_wait(std::uint64_t* bar, unsigned parity) {
  for (;;) {
    {
      std::lock_guard<std::mutex> hold(detail::barrier_lock);
      if ((detail::load(bar).phase_and_tx >> 31) != parity) return;
    }
    std::this_thread::yield();
  }
}

inline void tma_load_3d(void* smem, const CUtensorMap* map, std::uint64_t* bar, int x, int y,
                        int z) {
  auto* dst = static_cast<unsigned char*>(smem);
  const auto* plane =
      static_cast<const std::uint16_t*>(map->base) + std::int64_t{z} * map->rows * map->cols;
  if (map->box_cols * 2 > 128 || (dst - emu::shared.bytes) % 1024 != 0 || z >= map->planes) {
    std::abort();
  }
  for (int r = 0; r < map->box_rows; ++r) {
    for (int c = 0; c < map->box_cols; ++c) {
      const int gr = y + r, gc = x + c;
      const std::uint16_t v =
          gr < map->rows && gc < map->cols ? plane[std::int64_t{gr} * map->cols + gc] : 0;
      std::memcpy(detail::swizzled(dst + r * map->box_cols * 2 + c * 2), &v, 2);
    }
  }
  std::lock_guard<std::mutex> hold(detail::barrier_lock);
  detail::Barrier b = detail::load(bar);
  b.phase_and_tx -= static_cast<std::uint32_t>(map->box_rows * map->box_cols * 2);
  detail::maybe_complete(b);
  detail::store(bar, b);
}
inline void tma_load_2d(void* smem, const CUtensorMap* map, std::uint64_t* bar, int x, int y) {
  tma_load_3d(smem, map, bar, x, y, 0);
}

// The descriptor's fields as the real one packs them, the start address as
// an offset into the emulated shared memory.
inline std::uint64_t smem_descriptor(const void* start, unsigned leading_bytes,
                                     unsigned stride_bytes) {
  const auto offset =
      static_cast<std::uint64_t>(static_cast<const unsigned char*>(start) - emu::shared.bytes);
  return ((offset & 0x3FFFF) >> 4) | (std::uint64_t{leading_bytes >> 4} << 16) |
         (std::uint64_t{stride_bytes >> 4} << 32) | (std::uint64_t{1} << 62);
}

// The warpgroup instructions are .sync.aligned: no thread of a warp passes
// one until every thread of the warp has reached it. Without that, lane 0
// could release a stage (after its wait) while another lane of its warp
// still waits for the stage's previous fill.
inline void warp_converges() { emu::my_warp().barrier.arrive_and_wait(); }

namespace detail {
// The calling thread's wgmmas issued since its last commit, and its
// committed groups not yet retired, oldest first.
struct InFlight {
  std::vector<std::function<void()>> open;
  std::deque<std::vector<std::function<void()>>> groups;
  bool fenced = false;  // a wgmma_fence since the last commit
};
inline thread_local InFlight in_flight;

// The PTX ISA wants wgmma.fence before a warpgroup's first MMA and between
// any access to registers and an MMA that reads or writes them (the A
// fragments, the accumulators), which the emulation cannot see. It asks for
// more, and checks it: every group of MMAs starts with a fence (the kernels
// touch their accumulators or fragments between groups, or may come to).
inline void check_fenced() {
  if (!in_flight.fenced) {
    std::fprintf(stderr, "emulation: a wgmma issued without a wgmma_fence since the last commit\n");
    std::abort();
  }
}
}  // namespace detail

inline void wgmma_fence() {
  warp_converges();
  detail::in_flight.fenced = true;
}
inline void wgmma_commit() {
  warp_converges();
  detail::in_flight.groups.push_back(std::move(detail::in_flight.open));
  detail::in_flight.open.clear();
  detail::in_flight.fenced = false;
}
// Retires the oldest groups until at most kPending remain in flight: their
// MMAs happen now, reading shared memory and the A registers as they are.
// The wait ends for the whole warp at once, so no lane goes on (to release a
// stage, say) while another still reads it.
template <int kPending>
void wgmma_wait() {
  warp_converges();
  auto& groups = detail::in_flight.groups;
  while (groups.size() > static_cast<std::size_t>(kPending)) {
    for (auto& mma : groups.front()) mma();
    groups.pop_front();
  }
  warp_converges();
}

// d += A B for the calling thread's accumulators (the layout hopper.cuh
// documents). `a_at(row, k)` gives A (64 x 16); B is read through its
// descriptor, N-major (rows along n) or K-major (`b_kmajor`: columns along k).
template <int N, typename AAt>
void wgmma_m64nk16(float (&d)[N / 2], AAt a_at, std::uint64_t b_desc, bool b_kmajor) {
  if ((b_desc >> 62) != 1) std::abort();  // only the 128-byte swizzle
  unsigned char* b = emu::shared.bytes + detail::field(b_desc, 0);
  const std::ptrdiff_t b_lbo = detail::field(b_desc, 16), b_sbo = detail::field(b_desc, 32);
  const auto b_at = [&](int k, int col) {
    if (b_kmajor) {  // column col is row col of a K-major tile: 8-row atoms SBO apart
      return detail::bf16_at(detail::swizzled(b + (col / 8) * b_sbo + (col % 8) * 128 + 2 * k));
    }
    return detail::bf16_at(detail::swizzled(b + (col / 64) * b_lbo + (k / 8) * b_sbo +
                                            (k % 8) * 128 + 2 * (col % 64)));
  };
  const int t = static_cast<int>(emu::thread_rank % 128), warp = t / 32, lane = t % 32;
  for (int j = 0; j < N / 8; ++j) {
    for (int h = 0; h < 2; ++h) {
      for (int e = 0; e < 2; ++e) {
        const int row = lane / 4 + 8 * h, col = 8 * j + 2 * (lane % 4) + e;
        float s = d[4 * j + 2 * h + e];
        for (int k = 0; k < 16; ++k) s += a_at(16 * warp + row, row, k) * b_at(k, col);
        d[4 * j + 2 * h + e] = s;
      }
    }
  }
}

// A from shared memory, K-major: row r of the 64 in 8-row atoms SBO apart.
template <int N>
void wgmma_ss(float (&d)[N / 2], std::uint64_t a_desc, std::uint64_t b_desc, bool b_kmajor) {
  warp_converges();
  detail::check_fenced();
  if ((a_desc >> 62) != 1) std::abort();
  detail::in_flight.open.push_back([&d, a_desc, b_desc, b_kmajor] {
    unsigned char* a = emu::shared.bytes + detail::field(a_desc, 0);
    const std::ptrdiff_t a_sbo = detail::field(a_desc, 32);
    wgmma_m64nk16<N>(
        d,
        [&](int row, int, int k) {
          return detail::bf16_at(detail::swizzled(a + (row / 8) * a_sbo + (row % 8) * 128 + 2 * k));
        },
        b_desc, b_kmajor);
  });
}

// A from registers: the warp's 16 rows in the m16n8k16 A-fragment layout,
// gathered from the warp's lanes.
template <int N>
void wgmma_rs(float (&d)[N / 2], const std::uint32_t (&a)[4], std::uint64_t b_desc) {
  warp_converges();
  detail::check_fenced();
  detail::in_flight.open.push_back([&d, &a, b_desc] {
    float am[16][16];
    ptx::gather_a_16x16(a, am);
    wgmma_m64nk16<N>(
        d, [&](int, int row, int k) { return am[row][k]; }, b_desc, false);
  });
}

inline void wgmma_m64n128k16(float (&d)[64], std::uint64_t a, std::uint64_t b) {
  wgmma_ss<128>(d, a, b, false);
}
inline void wgmma_m64n256k16(float (&d)[128], std::uint64_t a, std::uint64_t b) {
  wgmma_ss<256>(d, a, b, false);
}
inline void wgmma_m64n64k16_bk(float (&d)[32], std::uint64_t a, std::uint64_t b) {
  wgmma_ss<64>(d, a, b, true);
}
inline void wgmma_m64n128k16_bk(float (&d)[64], std::uint64_t a, std::uint64_t b) {
  wgmma_ss<128>(d, a, b, true);
}
inline void wgmma_m64n64k16_ra(float (&d)[32], const std::uint32_t (&a)[4], std::uint64_t b) {
  wgmma_rs<64>(d, a, b);
}
inline void wgmma_m64n128k16_ra(float (&d)[64], const std::uint32_t (&a)[4], std::uint64_t b) {
  wgmma_rs<128>(d, a, b);
}

template <int kRegs>
void setmaxnreg_dec() {
  warp_converges();
}
template <int kRegs>
void setmaxnreg_inc() {
  warp_converges();
}

inline CUtensorMap bf16_tensor_map(const void* base, int rows, int cols, int box_rows,
                                   int box_cols) {
  return {base, 1, rows, cols, box_rows, box_cols};
}
inline CUtensorMap bf16_tensor_map_3d(const void* base, long long planes, int rows, int cols,
                                      int box_rows, int box_cols) {
  return {base, planes, rows, cols, box_rows, box_cols};
}

}  // namespace locality::gpu::hopper

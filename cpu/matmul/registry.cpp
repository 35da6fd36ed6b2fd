// The CPU matrix-multiplication ladder: the one list of its rungs. Tests,
// benchmarks, the driver, the report and the plots all derive from it.
// Adding a rung: one file, cpu/matmul/<number>_<name>.cpp, defining
// <name>_matmul; one line below; one line in cpu/CMakeLists.txt.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <string>

#include "locality/matmul.hpp"

// One line a rung: SERIAL for a kernel written for one thread (split_rows
// spreads it over the team, a slab of C's rows each) or THREADED for one that
// takes the thread count itself; then the rung's number, its name, the
// largest square size the benchmarks time it at (a call past it takes
// seconds), and the lesson `locality list` prints.
#define LOCALITY_MATMUL_LADDER(SERIAL, THREADED)                                                  \
  SERIAL(0, naive, 1024, "i-j-k: B is walked down its columns, one cache line per element")       \
  SERIAL(1, reordered, 2048, "i-k-j: every inner access is unit-stride, so lines are used whole") \
  SERIAL(2, tiled, kAnySize,                                                                      \
         "cache blocking: a block of B is reused from L1 by a block of C held in L2")             \
  SERIAL(3, register_blocked, kAnySize,                                                           \
         "a 6-row, two-vector-wide tile of C kept in registers over a slice of k, in plain "      \
         "C++ the compiler vectorizes")                                                           \
  SERIAL(4, packed, kAnySize,                                                                     \
         "five loops around a register-blocked micro-kernel, A and B packed into "                \
         "contiguous panels sized for L2 and L1")                                                 \
  THREADED(5, parallel, kAnySize,                                                                 \
           "each core packs a panel of B of its own where that pays (else the team packs one "    \
           "together), then the threads take blocks of C's rows from a shared counter")           \
  /* a new rung: one line above this one */

namespace locality {
namespace cpu {

#define LOCALITY_DECLARE_SERIAL(number, name, largest, lesson) \
  void name##_matmul(ConstView<float> a, ConstView<float> b, View<float> c);
#define LOCALITY_DECLARE_THREADED(number, name, largest, lesson) \
  void name##_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads);
LOCALITY_MATMUL_LADDER(LOCALITY_DECLARE_SERIAL, LOCALITY_DECLARE_THREADED)

namespace {

constexpr std::int64_t kAnySize = std::numeric_limits<std::int64_t>::max();

using SerialMatmulFn = void (*)(ConstView<float> a, ConstView<float> b, View<float> c);

// Runs a single-threaded kernel on `threads` OpenMP threads by giving each a
// contiguous slab of C's rows (and the matching rows of A). Every thread
// reads all of B. This is the parallelism any rung gets for free; the
// parallel rung does better by sharing out what this split repeats.
template <SerialMatmulFn Kernel>
void split_rows(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  const std::ptrdiff_t m = a.rows();
  const int team = static_cast<int>(std::min<std::ptrdiff_t>(threads, m));
  if (team <= 1) {
    Kernel(a, b, c);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const std::ptrdiff_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::ptrdiff_t i0 = m * t / nt, i1 = m * (t + 1) / nt;
    if (i1 > i0) Kernel(a.block(i0, 0, i1 - i0, a.cols()), b, c.block(i0, 0, i1 - i0, c.cols()));
  }
}

#define LOCALITY_ENTRY_SERIAL(number, name, largest, lesson) \
  {#name, number, lesson, split_rows<name##_matmul>, largest},
#define LOCALITY_ENTRY_THREADED(number, name, largest, lesson) \
  {#name, number, lesson, name##_matmul, largest},
constexpr MatmulVariant kVariants[] = {
    LOCALITY_MATMUL_LADDER(LOCALITY_ENTRY_SERIAL, LOCALITY_ENTRY_THREADED)};

}  // namespace

std::span<const MatmulVariant> matmul_variants() { return kVariants; }

const MatmulVariant* find_matmul_variant(std::string_view name) {
  for (const MatmulVariant& v : kVariants) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

}  // namespace cpu

void check_matmul_args(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  const auto shape = [](std::ptrdiff_t r, std::ptrdiff_t cols) {
    return std::to_string(r) + "x" + std::to_string(cols);
  };
  if (a.cols() != b.rows() || c.rows() != a.rows() || c.cols() != b.cols()) {
    throw ShapeError("matmul shape mismatch: A is " + shape(a.rows(), a.cols()) + ", B is " +
                     shape(b.rows(), b.cols()) + ", C is " + shape(c.rows(), c.cols()) +
                     " (need A m x k, B k x n, C m x n)");
  }
  const auto overlaps = [](const float* x, std::ptrdiff_t x_rows, std::ptrdiff_t x_cols,
                           std::ptrdiff_t x_ld, View<float> out) {
    if (x_rows == 0 || x_cols == 0 || out.rows() == 0 || out.cols() == 0) return false;
    const float* x_end = x + (x_rows - 1) * x_ld + x_cols;
    const float* out_end = out.data() + (out.rows() - 1) * out.ld() + out.cols();
    return x < out_end && out.data() < x_end;
  };
  if (overlaps(a.data(), a.rows(), a.cols(), a.ld(), c) ||
      overlaps(b.data(), b.rows(), b.cols(), b.ld(), c)) {
    throw ShapeError("matmul output C overlaps an input; C = A * B needs a separate C");
  }
  if (threads < 1 || threads > kMaxThreads) {
    throw std::invalid_argument("thread count " + std::to_string(threads) + " is outside 1.." +
                                std::to_string(kMaxThreads));
  }
}

void matmul(const MatmulVariant& variant, ConstView<float> a, ConstView<float> b, View<float> c,
            int threads) {
  check_matmul_args(a, b, c, threads);
  if (c.rows() == 0 || c.cols() == 0) return;
  if (a.cols() == 0) {  // empty sum: C = 0
    for (std::ptrdiff_t i = 0; i < c.rows(); ++i) std::fill_n(c.row(i), c.cols(), 0.0f);
    return;
  }
  variant.run(a, b, c, threads);
}

}  // namespace locality

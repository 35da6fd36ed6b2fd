// Rung 3 -- register-blocked: a small tile of C held in registers, plain C++.
//
// Idea: compute a 6 x 2-vector tile of C completely, over a kBlockK-long
//   slice of k, in local accumulators the compiler keeps in vector registers;
//   load it from C and store it back once per slice instead of once per
//   multiply-add.
// Locality: registers now hold the data reused most (each loaded B vector
//   meets 6 rows of A, each A value meets a whole row of the tile); a
//   kBlockK-row strip of B (16 KiB with AVX2, 32 KiB with AVX-512) stays in
//   L1 while the tiles of one column strip of C go by, as in rung 2.
// Cost: the tile must fit the register file, with room left for the B
//   vectors and the broadcast A value: 12 accumulators of AVX2's 16
//   registers (AVX-512 has 32); a tile of 8 x 32 floats needs 32 AVX2
//   registers and spills to the stack on every step. The compiler is told
//   which loop to vectorize (omp simd on the columns); left alone, GCC 12
//   vectorizes the long k loop with gathers.
//   A and B are still read in place: the B strip is kBlockK lines a whole
//   row of B apart, A's 6 rows 6 separate streams, which rung 4's packing
//   fixes.
// Edges: tiles that overhang C take a scalar path of the same loop order.
#include <algorithm>

#include "locality/matmul.hpp"
#include "microkernel.hpp"  // kVectorFloats

namespace locality::cpu {
namespace {

constexpr std::ptrdiff_t kTileRows = 6;  // rows of C per tile: B vectors reused 6 times
constexpr std::ptrdiff_t kTileCols = 2 * kVectorFloats;  // columns: two vectors
// kBlockK x kTileCols floats of B: 16 KiB (AVX2) or 32 KiB (AVX-512), within L1.
constexpr std::ptrdiff_t kBlockK = 256;

// c(0..6, 0..cols) (+)= a(0..6, 0..kc) * b(0..kc, 0..cols), the tile in registers.
void full_tile(std::ptrdiff_t kc, const float* a, std::ptrdiff_t lda, const float* b,
               std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, bool accumulate) {
  float acc[kTileRows][kTileCols] = {};
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const float* b_row = b + p * ldb;
#pragma GCC unroll 6
    for (std::ptrdiff_t r = 0; r < kTileRows; ++r) {
      const float a_rp = a[r * lda + p];
#pragma omp simd
      for (std::ptrdiff_t j = 0; j < kTileCols; ++j) acc[r][j] += a_rp * b_row[j];
    }
  }
  for (std::ptrdiff_t r = 0; r < kTileRows; ++r) {
    float* c_row = c + r * ldc;
    for (std::ptrdiff_t j = 0; j < kTileCols; ++j) {
      c_row[j] = accumulate ? c_row[j] + acc[r][j] : acc[r][j];
    }
  }
}

// The same for a tile cut short by the edge of C (rows x cols, at most the full tile).
void edge_tile(std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t kc, const float* a,
               std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc,
               bool accumulate) {
  float acc[kTileRows][kTileCols] = {};
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      for (std::ptrdiff_t j = 0; j < cols; ++j) acc[r][j] += a[r * lda + p] * b[p * ldb + j];
    }
  }
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    for (std::ptrdiff_t j = 0; j < cols; ++j) {
      c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
    }
  }
}

}  // namespace

void register_blocked_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  for (std::ptrdiff_t p0 = 0; p0 < k; p0 += kBlockK) {
    const std::ptrdiff_t kc = std::min(kBlockK, k - p0);
    for (std::ptrdiff_t j0 = 0; j0 < n; j0 += kTileCols) {
      const std::ptrdiff_t cols = std::min(kTileCols, n - j0);
      for (std::ptrdiff_t i0 = 0; i0 < m; i0 += kTileRows) {
        const std::ptrdiff_t rows = std::min(kTileRows, m - i0);
        const float* a_tile = a.row(i0) + p0;
        const float* b_strip = b.row(p0) + j0;
        float* c_tile = c.row(i0) + j0;
        if (rows == kTileRows && cols == kTileCols) {
          full_tile(kc, a_tile, a.ld(), b_strip, b.ld(), c_tile, c.ld(), p0 > 0);
        } else {
          edge_tile(rows, cols, kc, a_tile, a.ld(), b_strip, b.ld(), c_tile, c.ld(), p0 > 0);
        }
      }
    }
  }
}

}  // namespace locality::cpu

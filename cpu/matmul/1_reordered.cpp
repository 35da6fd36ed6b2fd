// Rung 1 -- reordered: the same three loops in i-k-j order.
//
// Idea: swap the two inner loops. For fixed i and p, the innermost loop adds
//   a(i, p) times row p of B into row i of C.
// Locality: every inner access is now unit-stride: a row of B and a row of C
//   stream through consecutive addresses, so each 64-byte line brings 16
//   useful floats instead of one, and the compiler vectorizes the j loop.
// Cost: row i of C is read and written k times, and the whole of B is
//   re-read for every row of C: once B outgrows L2, every row streams it from
//   L3 or memory, 4 bytes per 2 FLOPs, and bandwidth, not arithmetic, is the
//   limit (the size table shows the cliff).
// Edges: any shape; C is zeroed first, then accumulated.
#include "locality/matmul.hpp"

namespace locality::cpu {

void reordered_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    float* __restrict c_row = c.row(i);
    for (std::ptrdiff_t j = 0; j < n; ++j) c_row[j] = 0.0f;
    for (std::ptrdiff_t p = 0; p < k; ++p) {
      const float a_ip = a(i, p);
      const float* __restrict b_row = b.row(p);
      for (std::ptrdiff_t j = 0; j < n; ++j) c_row[j] += a_ip * b_row[j];
    }
  }
}

}  // namespace locality::cpu

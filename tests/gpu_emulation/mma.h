// nvcuda::wmma for the emulation. On a GPU a fragment's elements are spread
// over the warp's lanes in a layout CUDA does not document; here every lane
// holds the whole 16 x 16 tile, which computes the same results for code
// that touches fragments only through these calls (as the API requires).
#pragma once

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  float x[M * N];
};

template <typename Fragment>
void fill_fragment(Fragment& f, float value) {
  for (float& e : f.x) e = value;
}

template <typename Use, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p,
                      unsigned ld) {
  static_assert(std::is_same_v<Layout, row_major>, "the emulation loads row-major tiles only");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.x[i * 16 + j] = __bfloat162float(p[i * ld + j]);
}

template <typename LayoutA, typename LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
              const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b,
              const fragment<accumulator, 16, 16, 16, float>& c) {
  float out[256];
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 16; ++j) {
      float s = c.x[i * 16 + j];
      for (int q = 0; q < 16; ++q) s += a.x[i * 16 + q] * b.x[q * 16 + j];
      out[i * 16 + j] = s;
    }
  }
  for (int e = 0; e < 256; ++e) d.x[e] = out[e];
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f,
                              unsigned ld, layout_t layout) {
  if (layout != mem_row_major) __builtin_trap();
  // Every lane holds the whole tile; lane 0 writes it (a GPU's lanes each
  // write their part, once).
  if (locality::emu::lane() == 0) {
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) p[i * ld + j] = f.x[i * 16 + j];
  }
  locality::emu::my_warp().barrier.arrive_and_wait();
}

}  // namespace nvcuda::wmma

#include "packing.hpp"

#include <algorithm>
#include <cstring>

namespace locality::cpu {

float* PackBuffer::get(std::size_t floats) {
  if (floats > size_) {
    data_.reset(static_cast<float*>(
        ::operator new (floats * sizeof(float), std::align_val_t{kCacheLineBytes})));
    size_ = floats;
  }
  return data_.get();
}

std::size_t packed_a_floats(const MicroKernel& uk, std::ptrdiff_t mc, std::ptrdiff_t kc) {
  return static_cast<std::size_t>(micropanel_count(mc, uk.mr) * uk.mr * kc);
}

std::size_t packed_b_floats(const MicroKernel& uk, std::ptrdiff_t kc, std::ptrdiff_t nc) {
  return static_cast<std::size_t>(micropanel_count(nc, uk.nr) * uk.nr * kc);
}

void pack_a_micropanel(const MicroKernel& uk, ConstView<float> a, std::ptrdiff_t index,
                       float* packed) {
  const std::ptrdiff_t kc = a.cols(), mr = uk.mr;
  const std::ptrdiff_t i0 = index * mr;
  const std::ptrdiff_t rows = std::min(mr, a.rows() - i0);
  float* __restrict dst = packed + index * mr * kc;
  // Walk the MR rows side by side (MR sequential read streams) and write the
  // panel front to back, one column of MR values after another.
  const float* src[kMaxMicroTileRows];
  for (std::ptrdiff_t r = 0; r < rows; ++r) src[r] = a.row(i0 + r);
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) dst[r] = src[r][p];
    for (std::ptrdiff_t r = rows; r < mr; ++r) dst[r] = 0.0f;
    dst += mr;
  }
}

void pack_b_micropanels(const MicroKernel& uk, ConstView<float> b, std::ptrdiff_t first,
                        std::ptrdiff_t last, float* packed) {
  const std::ptrdiff_t kc = b.rows(), nr = uk.nr;
  const std::ptrdiff_t j0 = first * nr, j1 = std::min(last * nr, b.cols());
  // Row by row: each row of B is read once, front to back, and its NR-wide
  // pieces go to the same row of consecutive micro-panels.
  for (std::ptrdiff_t p = 0; p < kc; ++p) {
    const float* __restrict src = b.row(p);
    float* __restrict dst = packed + first * nr * kc + p * nr;
    std::ptrdiff_t j = j0;
    for (; j + nr <= j1; j += nr, dst += nr * kc) {
      std::memcpy(dst, src + j, static_cast<std::size_t>(nr) * sizeof(float));
    }
    if (j < j1) {  // the ragged last micro-panel: copy what exists, zero the rest
      std::memcpy(dst, src + j, static_cast<std::size_t>(j1 - j) * sizeof(float));
      std::memset(dst + (j1 - j), 0, static_cast<std::size_t>(nr - (j1 - j)) * sizeof(float));
    }
  }
}

void macro_kernel(const MicroKernel& uk, std::ptrdiff_t kc, const float* packed_a,
                  const float* packed_b, View<float> c, bool accumulate) {
  const std::ptrdiff_t mc = c.rows(), nc = c.cols(), mr = uk.mr, nr = uk.nr;
  alignas(kCacheLineBytes) float edge[kMaxMicroTileFloats];
  for (std::ptrdiff_t jr = 0; jr < nc; jr += nr) {
    const std::ptrdiff_t cols = std::min(nr, nc - jr);
    const float* b_panel = packed_b + (jr / nr) * nr * kc;
    for (std::ptrdiff_t ir = 0; ir < mc; ir += mr) {
      const std::ptrdiff_t rows = std::min(mr, mc - ir);
      const float* a_panel = packed_a + (ir / mr) * mr * kc;
      float* c_tile = c.row(ir) + jr;
      if (rows == mr && cols == nr) {
        uk.run(kc, a_panel, b_panel, c_tile, c.ld(), accumulate);
        continue;
      }
      // Ragged edge: compute the full tile aside, keep the part inside C.
      uk.run(kc, a_panel, b_panel, edge, nr, false);
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        float* dst = c_tile + r * c.ld();
        const float* src = edge + r * nr;
        for (std::ptrdiff_t j = 0; j < cols; ++j) dst[j] = accumulate ? dst[j] + src[j] : src[j];
      }
    }
  }
}

}  // namespace locality::cpu

// What the GPU matmul rungs share (registry.cu lists the rungs themselves).
#pragma once

#include <cuda_runtime.h>

namespace locality::gpu {

// Four consecutive floats of one row, row[col .. col + 3], zero past `cols`
// (or everywhere when the row itself is outside the matrix). With kVec the
// caller guarantees that cols is a multiple of 4 and rows start 16-byte
// aligned, so the four are all in or all out and one 128-bit load fetches
// them; otherwise each is loaded and bounds-checked alone.
template <bool kVec>
__device__ __forceinline__ float4 load4(const float* row, bool row_ok, int col, int cols) {
  float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (!row_ok) return v;
  if constexpr (kVec) {
    if (col < cols) v = *reinterpret_cast<const float4*>(row + col);
  } else {
    if (col + 0 < cols) v.x = row[col + 0];
    if (col + 1 < cols) v.y = row[col + 1];
    if (col + 2 < cols) v.z = row[col + 2];
    if (col + 3 < cols) v.w = row[col + 3];
  }
  return v;
}

// Stores four results at row[col .. col + 3], those inside the matrix.
template <bool kVec>
__device__ __forceinline__ void store4(float* row, bool row_ok, int col, int cols, float4 v) {
  if (!row_ok) return;
  if constexpr (kVec) {
    if (col < cols) *reinterpret_cast<float4*>(row + col) = v;
  } else {
    if (col + 0 < cols) row[col + 0] = v.x;
    if (col + 1 < cols) row[col + 1] = v.y;
    if (col + 2 < cols) row[col + 2] = v.z;
    if (col + 3 < cols) row[col + 3] = v.w;
  }
}

inline bool aligned16(const void* p) { return reinterpret_cast<unsigned long long>(p) % 16 == 0; }

// 128-bit paths need every row of A and B to start 16-byte aligned.
inline bool vector_ok(const float* a, const float* b, const float* c, int n, int k) {
  return n % 4 == 0 && k % 4 == 0 && aligned16(a) && aligned16(b) && aligned16(c);
}

}  // namespace locality::gpu

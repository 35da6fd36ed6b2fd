// The PTX instructions the GPU rungs use beyond CUDA C++ (the float
// ladder's cp.async pipeline, the tensor-core rungs' copies, fragment loads
// and multiplies), each behind one small function, so a rung reads as what
// it does (copy ahead, load a fragment, multiply) rather than as inline
// assembly. Semantics as the PTX ISA gives them; sm_80 and later.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace locality::gpu::ptx {

// A generic pointer into shared memory as the 32-bit shared-window address
// the instructions below take.
__device__ __forceinline__ std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// cp.async: 16 bytes (.cg: around L1) or 4 bytes (.ca) from global memory to
// shared memory without passing through registers; both addresses aligned
// to the size. With `bytes`, that many of them are read (the size, or 0 for
// a chunk outside the matrix) and the rest written as zeros.
__device__ __forceinline__ void cp_async_16(void* smem, const void* global) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_address(smem)),
               "l"(global));
}
__device__ __forceinline__ void cp_async_16(void* smem, const void* global, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)),
               "l"(global), "r"(bytes));
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* global) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_address(smem)), "l"(global));
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* global, int bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(smem)),
               "l"(global), "r"(bytes));
}

// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most `kPending` committed groups are still in flight (the
// clobber keeps the compiler from moving shared-memory reads above it).
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// ldmatrix.x4: four 8 x 8 matrices of 16-bit values from shared memory, one
// register each. Lane l gives the address of one row: lanes 8i..8i+7 the
// rows of matrix i. Lane l receives, in r[i], the two values of matrix i at
// row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 (the first in the low half).
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}

// The same, each matrix transposed on the way: lane l receives the values at
// rows 2 (l % 4) and 2 (l % 4) + 1, column l / 4.
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}

// d += a b for one 16 x 8 tile of float, a 16 x 16 of bf16 (row-major), b
// 16 x 8 of bf16 (column-major). With g = lane / 4 and t = lane % 4:
//   a[0]: A(g, 2t..2t+1)   a[1]: A(g+8, 2t..2t+1)   a[2]: A(g, 2t+8..)   a[3]: A(g+8, 2t+8..)
//   b[0]: B(2t..2t+1, g)   b[1]: B(2t+8..2t+9, g)
//   d[0], d[1]: D(g, 2t..2t+1)   d[2], d[3]: D(g+8, 2t..2t+1)
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const std::uint32_t (&a)[4],
                                               const std::uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two floats rounded to bf16 (to nearest, ties to even; NaN stays NaN) and
// packed into one register: `lo` in the low 16 bits, as the fragments above
// hold a pair of neighbouring columns.
__device__ __forceinline__ std::uint32_t pack_bf16x2(float lo, float hi) {
  std::uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

}  // namespace locality::gpu::ptx

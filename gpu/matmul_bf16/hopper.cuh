// The Hopper (sm_90a) instructions the wgmma rungs use, each behind one small
// function as ptx.cuh does for sm_80: mbarriers, the tensor memory
// accelerator's tiled copy, and warpgroup MMA with its shared-memory
// descriptors. Semantics as the PTX ISA gives them; the rung files say how
// they are combined.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only; no driver call here)
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../cuda_check.cuh"
#include "../ptx.cuh"

namespace locality::gpu::hopper {

using ptx::smem_address;

// ---- mbarrier: a shared-memory barrier that also counts bytes in flight.
// A phase completes when `count` threads have arrived and every byte a copy
// announced (expect_tx) has landed; waiters name the phase by its parity.

__device__ __forceinline__ void mbarrier_init(std::uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(count)
               : "memory");
}

// Makes initialised barriers visible to the copy engine (the async proxy).
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival that also announces `bytes` more to come from copies.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(std::uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_address(bar)),
               "r"(bytes)
               : "memory");
}

// A plain arrival (a consumer saying it is done with a stage).
__device__ __forceinline__ void mbarrier_arrive(std::uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_address(bar)) : "memory");
}

// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbarrier_wait(std::uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "wait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n"
      "}\n" ::"r"(smem_address(bar)),
      "r"(parity)
      : "memory");
}

// ---- Named barriers (bar.sync / bar.arrive with an id and a thread count):
// a barrier of some of the block's warps, id 0 being __syncthreads'. sync
// waits for `threads` arrivals in all, arrive adds the calling warp's
// without waiting.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- The tensor memory accelerator: one thread asks for a whole box of a
// 2-D tensor (described on the host by a CUtensorMap) to be copied into
// shared memory, laid out and swizzled as the map says; elements outside the
// tensor arrive as zeros. Completion is counted on `bar` in bytes (always
// the whole box). x is the inner (contiguous) coordinate.
__device__ __forceinline__ void tma_load_2d(void* smem, const CUtensorMap* map, std::uint64_t* bar,
                                            int x, int y) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4}], [%2];\n" ::"r"(smem_address(smem)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(smem_address(bar)), "r"(x), "r"(y)
      : "memory");
}

// The same for a 3-D tensor (x, y within plane z), as a head of attention's
// [batch x heads, seq, head_dim] tensors.
__device__ __forceinline__ void tma_load_3d(void* smem, const CUtensorMap* map, std::uint64_t* bar,
                                            int x, int y, int z) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(smem_address(smem)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(smem_address(bar)), "r"(x), "r"(y), "r"(z)
      : "memory");
}

// ---- Warpgroup MMA. A matrix operand in shared memory is named by a 64-bit
// descriptor: bits 0-13 the start address / 16, 16-29 the leading-dimension
// byte offset / 16, 32-45 the stride-dimension byte offset / 16, 62-63 the
// swizzle (1: 128-byte). With the 128-byte swizzle, rows of 128 bytes come
// in atoms of 8 (1024 bytes, which must start 1024-aligned), and 16-byte
// chunk c of row r of an atom sits at chunk c xor r: the pattern the copy
// engine writes with CU_TENSOR_MAP_SWIZZLE_128B.
__device__ __forceinline__ std::uint64_t smem_descriptor(const void* start, unsigned leading_bytes,
                                                         unsigned stride_bytes) {
  return (std::uint64_t{(smem_address(start) & 0x3FFFF) >> 4}) |
         (std::uint64_t{leading_bytes >> 4} << 16) | (std::uint64_t{stride_bytes >> 4} << 32) |
         (std::uint64_t{1} << 62);
}

// Orders this thread's register and shared-memory accesses before the
// warpgroup's next MMAs read them.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
// Closes the group of MMAs issued since the last commit.
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most `kPending` committed groups are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// d += A B for a 64 x N tile of float, the warpgroup's four warps together,
// over 16 steps of k. A (64 x 16 bf16) comes from shared memory, K-major
// (`a_desc`), or from registers (the _ra forms: each warp's 16 rows in the
// mma.sync m16n8k16 A-fragment layout, a[0]: row g, columns 2t, 2t+1;
// a[1]: row g+8; a[2], a[3]: the same eight columns on). B (16 x N) is in
// shared memory, N-major (rows of B along n, imm-trans-b = 1) or, in the
// _bk forms, K-major (B's columns contiguous, as the rows of K are for
// Q K^T). Thread t of the warpgroup holds, for each 8-column slice j, d[4j],
// d[4j+1] at row 16 (t / 32) + (t % 32) / 4, columns 8j + 2 (t % 4) and one
// more, and d[4j+2], d[4j+3] eight rows below: per warp, mma.sync's
// accumulator layout, which is also the _ra forms' A layout.
// The accumulator operands of a 64 x N wgmma (N / 2 floats a thread), and
// their places in the instruction's text: written out once, since inline
// assembly takes no arrays.
#define LOCALITY_WGMMA_D32                                                                \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define LOCALITY_WGMMA_D64                                                                \
  LOCALITY_WGMMA_D32                                                                      \
  ", "                                                                                    \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, " \
  "%49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define LOCALITY_WGMMA_D128                                                                  \
  LOCALITY_WGMMA_D64                                                                         \
  ", "                                                                                       \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, "    \
  "%81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, "    \
  "%98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, " \
  "%113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define LOCALITY_WGMMA_ACC32(d)                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define LOCALITY_WGMMA_ACC64(d)                                                                  \
  LOCALITY_WGMMA_ACC32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]),      \
      "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), \
      "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), \
      "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), \
      "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define LOCALITY_WGMMA_ACC128(d)                                                                 \
  LOCALITY_WGMMA_ACC64(d), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]),      \
      "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), \
      "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), \
      "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), \
      "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), \
      "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]),           \
      "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]),        \
      "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]),        \
      "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),        \
      "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]),        \
      "+f"(d[127])

__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], std::uint64_t a_desc,
                                                 std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D64
               "}, "
               "%64, %65, 1, 1, 1, 0, 1;\n"
               : LOCALITY_WGMMA_ACC64(d)
               : "l"(a_desc), "l"(b_desc));
}
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], std::uint64_t a_desc,
                                                 std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D128
               "}, "
               "%128, %129, 1, 1, 1, 0, 1;\n"
               : LOCALITY_WGMMA_ACC128(d)
               : "l"(a_desc), "l"(b_desc));
}
__device__ __forceinline__ void wgmma_m64n64k16_bk(float (&d)[32], std::uint64_t a_desc,
                                                   std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D32
               "}, "
               "%32, %33, 1, 1, 1, 0, 0;\n"
               : LOCALITY_WGMMA_ACC32(d)
               : "l"(a_desc), "l"(b_desc));
}
__device__ __forceinline__ void wgmma_m64n128k16_bk(float (&d)[64], std::uint64_t a_desc,
                                                    std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D64
               "}, "
               "%64, %65, 1, 1, 1, 0, 0;\n"
               : LOCALITY_WGMMA_ACC64(d)
               : "l"(a_desc), "l"(b_desc));
}
__device__ __forceinline__ void wgmma_m64n64k16_ra(float (&d)[32], const std::uint32_t (&a)[4],
                                                   std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D32
               "}, "
               "{%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
               : LOCALITY_WGMMA_ACC32(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
}
__device__ __forceinline__ void wgmma_m64n128k16_ra(float (&d)[64], const std::uint32_t (&a)[4],
                                                    std::uint64_t b_desc) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" LOCALITY_WGMMA_D64
               "}, "
               "{%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
               : LOCALITY_WGMMA_ACC64(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
}

// ---- Registers moved between warpgroups at run time (sm_90a): a warpgroup
// that only copies gives registers back, one that multiplies takes them.
// Takes effect only under a register cap at entry (__launch_bounds__ with a
// minimum of one block); each role one branch of an if.
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// ---- Host side: the tensor map of `planes` row-major rows x cols bf16
// matrices one after another, read in boxes of box_rows x box_cols of one
// plane (box_cols x 2 bytes at most 128, the swizzle's span), swizzled by
// 128 bytes, zeros outside (past a plane's rows too: a box never reaches
// into the next plane); `rank` 2 (one plane, 2-D copies) or 3. The driver's
// encoder is reached through the runtime, so nothing links libcuda itself.
inline CUtensorMap bf16_tensor_map_ranked(const void* base, long long planes, int rows, int cols,
                                          int box_rows, int box_cols, cuuint32_t rank) {
  using Encode =
      CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static Encode encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    LOCALITY_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                   cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr) {
      throw GpuError("the driver has no cuTensorMapEncodeTiled (CUDA 12 or later needed)");
    }
    return reinterpret_cast<Encode>(fn);
  }();
  CUtensorMap map{};
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(planes)};
  const cuuint64_t row_bytes = static_cast<cuuint64_t>(cols) * 2;
  const cuuint64_t strides[2] = {row_bytes, row_bytes * static_cast<cuuint64_t>(rows)};
  const cuuint32_t box[3] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows),
                             1};
  const cuuint32_t unit[3] = {1, 1, 1};
  const CUresult r =
      encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, const_cast<void*>(base), dims, strides,
             box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    throw GpuError("cuTensorMapEncodeTiled failed (" + std::to_string(static_cast<int>(r)) +
                   ") for " + std::to_string(planes) + " x " + std::to_string(rows) + " x " +
                   std::to_string(cols) + " bf16 values");
  }
  return map;
}
inline CUtensorMap bf16_tensor_map(const void* base, int rows, int cols, int box_rows,
                                   int box_cols) {
  return bf16_tensor_map_ranked(base, 1, rows, cols, box_rows, box_cols, 2);
}
inline CUtensorMap bf16_tensor_map_3d(const void* base, long long planes, int rows, int cols,
                                      int box_rows, int box_cols) {
  return bf16_tensor_map_ranked(base, planes, rows, cols, box_rows, box_cols, 3);
}

}  // namespace locality::gpu::hopper

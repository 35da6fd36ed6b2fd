// gpu/ptx.cuh for the emulation: each instruction computed from
// the semantics that file documents (the PTX ISA's fragment layouts), the
// warp-wide ones through locality::emu::exchange. cp.async copies at once,
// so the waits have nothing left to wait for. An address the GPU would
// fault on (outside shared memory, or not 16-byte aligned) stops the test
// with a message; ldmatrix's passes through the banks are counted
// (banks.hpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "banks.hpp"
#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace locality::gpu::ptx {

namespace detail {

inline std::uint32_t half(const void* row, int col) {
  std::uint16_t h;
  std::memcpy(&h, static_cast<const unsigned char*>(row) + 2 * col, 2);
  return h;
}

inline float bf16(std::uint32_t bits) { return from_bf16_bits(static_cast<std::uint16_t>(bits)); }

template <typename T>
const T* as(std::uint64_t address) {
  return reinterpret_cast<const T*>(static_cast<std::uintptr_t>(address));
}

// p's offset in the block's shared memory, where the `bytes` an
// instruction moves from p must lie, p aligned to them (16 for an ldmatrix
// row or a 16-byte cp.async, 4 for a 4-byte one).
inline std::uint64_t shared_offset(const void* p, std::size_t bytes, const char* instruction) {
  const std::ptrdiff_t at = static_cast<const unsigned char*>(p) - emu::shared.bytes;
  if (at < 0 || static_cast<std::size_t>(at) + bytes > emu::kSharedBytes ||
      static_cast<std::size_t>(at) % bytes != 0) {
    std::fprintf(stderr, "emulation: %s at shared offset %td, outside or not %zu-byte aligned\n",
                 instruction, at, bytes);
    std::abort();
  }
  return static_cast<std::uint64_t>(at);
}

// ldmatrix's 32 row addresses (lane l's is row l % 8 of matrix l / 8):
// checked, and each matrix's passes counted, once per warp.
inline void count_ldmatrix(const std::vector<std::uint64_t>& rows) {
  if (emu::lane() != 0) return;
  for (int i = 0; i < 4; ++i) {
    std::uint64_t matrix[8];
    for (int r = 0; r < 8; ++r) {
      matrix[r] = shared_offset(as<void>(rows[8 * i + r]), 16, "ldmatrix");
    }
    emu::ldmatrix_count.matrices += 1;
    emu::ldmatrix_count.wavefronts += static_cast<std::uint64_t>(emu::ldmatrix_wavefronts(matrix));
  }
}

// cp.async of `size` bytes, `bytes` of them read (the rest zeros): both
// addresses aligned to the size.
inline void cp_async(void* smem, const void* global, int size, int bytes) {
  detail::shared_offset(smem, static_cast<std::size_t>(size), "cp.async");
  if (bytes > 0 &&
      reinterpret_cast<std::uintptr_t>(global) % static_cast<std::uintptr_t>(size) != 0) {
    std::fprintf(stderr, "emulation: cp.async from a global address not %d-byte aligned\n", size);
    std::abort();
  }
  unsigned char chunk[16] = {};
  if (bytes > 0) std::memcpy(chunk, global, static_cast<std::size_t>(bytes));
  std::memcpy(smem, chunk, static_cast<std::size_t>(size));
}

}  // namespace detail

inline void cp_async_16(void* smem, const void* global, int bytes) {
  detail::cp_async(smem, global, 16, bytes);
}
inline void cp_async_16(void* smem, const void* global) { detail::cp_async(smem, global, 16, 16); }
inline void cp_async_4(void* smem, const void* global, int bytes) {
  detail::cp_async(smem, global, 4, bytes);
}
inline void cp_async_4(void* smem, const void* global) { detail::cp_async(smem, global, 4, 4); }
inline void cp_async_commit() {}
template <int kPending>
void cp_async_wait() {}

inline void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) {
  const auto rows = emu::exchange(reinterpret_cast<std::uintptr_t>(row));
  detail::count_ldmatrix(rows);
  const int l = emu::lane();
  for (int i = 0; i < 4; ++i) {
    const void* src = detail::as<void>(rows[8 * i + l / 4]);
    r[i] = detail::half(src, 2 * (l % 4)) | (detail::half(src, 2 * (l % 4) + 1) << 16);
  }
}

inline void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* row) {
  const auto rows = emu::exchange(reinterpret_cast<std::uintptr_t>(row));
  detail::count_ldmatrix(rows);
  const int l = emu::lane();
  for (int i = 0; i < 4; ++i) {
    const void* first = detail::as<void>(rows[8 * i + 2 * (l % 4)]);
    const void* second = detail::as<void>(rows[8 * i + 2 * (l % 4) + 1]);
    r[i] = detail::half(first, l / 4) | (detail::half(second, l / 4) << 16);
  }
}

// The warp's 16 x 16 A operand from each lane's four registers in the
// m16n8k16 A-fragment layout (all 32 lanes must call it).
inline void gather_a_16x16(const std::uint32_t (&a)[4], float (&am)[16][16]) {
  const auto a01 = emu::exchange((std::uint64_t{a[1]} << 32) | a[0]);
  const auto a23 = emu::exchange((std::uint64_t{a[3]} << 32) | a[2]);
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    const std::uint32_t r[4] = {
        static_cast<std::uint32_t>(a01[l]), static_cast<std::uint32_t>(a01[l] >> 32),
        static_cast<std::uint32_t>(a23[l]), static_cast<std::uint32_t>(a23[l] >> 32)};
    for (int i = 0; i < 4; ++i) {  // a[i]: row g (+8 for odd i), columns 2t, 2t+1 (+8 for i >= 2)
      const int row = g + 8 * (i % 2), col = 2 * t + 8 * (i / 2);
      am[row][col] = detail::bf16(r[i] & 0xffff);
      am[row][col + 1] = detail::bf16(r[i] >> 16);
    }
  }
}

inline void mma_bf16_16816(float (&d)[4], const std::uint32_t (&a)[4],
                           const std::uint32_t (&b)[2]) {
  float am[16][16], bm[16][8];
  gather_a_16x16(a, am);
  const auto b01 = emu::exchange((std::uint64_t{b[1]} << 32) | b[0]);
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 2; ++i) {  // b[i]: rows 2t, 2t+1 (+8 for i = 1), column g
      const auto bits = static_cast<std::uint32_t>(b01[l] >> (32 * i));
      bm[2 * t + 8 * i][g] = detail::bf16(bits & 0xffff);
      bm[2 * t + 8 * i + 1][g] = detail::bf16(bits >> 16);
    }
  }
  const int l = emu::lane(), g = l / 4, t = l % 4;
  for (int h = 0; h < 2; ++h) {
    for (int c = 0; c < 2; ++c) {
      float s = d[2 * h + c];
      for (int q = 0; q < 16; ++q) s += am[g + 8 * h][q] * bm[q][2 * t + c];
      d[2 * h + c] = s;
    }
  }
}

inline std::uint32_t pack_bf16x2(float lo, float hi) {
  return std::uint32_t{to_bf16_bits(lo)} | (std::uint32_t{to_bf16_bits(hi)} << 16);
}

}  // namespace locality::gpu::ptx

// bf16 for the emulation: the bits, and CUDA's round-to-nearest-even conversion.
#pragma once

#include <cstdint>

#include "locality/bf16.hpp"

struct __nv_bfloat16 {
  std::uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16(float x) { return {locality::to_bf16_bits(x)}; }
inline float __bfloat162float(__nv_bfloat16 h) { return locality::from_bf16_bits(h.bits); }

// bfloat16 on the host: the tensor-core ladder's inputs are bf16, passed to
// the device as their 16 bits. bf16 is float's top half: the same 8-bit
// exponent, 8 bits of significand (7 stored).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "locality/matrix.hpp"

namespace locality {

// x rounded to the nearest bf16, ties to even (the rounding of CUDA's
// __float2bfloat16); a NaN stays a NaN, quiet, with its sign.
inline std::uint16_t to_bf16_bits(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

inline float from_bf16_bits(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

// The float holding x's nearest bf16: what the device computes with.
inline float round_to_bf16(float x) { return from_bf16_bits(to_bf16_bits(x)); }

// Every element of `m` rounded to bf16, in place.
inline void round_to_bf16(View<float> m) {
  for (std::ptrdiff_t i = 0; i < m.rows(); ++i)
    for (std::ptrdiff_t j = 0; j < m.cols(); ++j) m(i, j) = round_to_bf16(m(i, j));
}

// The bits of `m`'s elements rounded to bf16, row after row (contiguous, as
// the device wants them whatever m's leading dimension).
inline std::vector<std::uint16_t> bf16_bits(ConstView<float> m) {
  std::vector<std::uint16_t> bits;
  bits.reserve(static_cast<std::size_t>(m.rows() * m.cols()));
  for (std::ptrdiff_t i = 0; i < m.rows(); ++i)
    for (std::ptrdiff_t j = 0; j < m.cols(); ++j) bits.push_back(to_bf16_bits(m(i, j)));
  return bits;
}

// The same for a flat buffer (attention tensors).
inline void round_to_bf16(std::span<float> x) {
  for (float& e : x) e = round_to_bf16(e);
}
inline std::vector<std::uint16_t> bf16_bits(std::span<const float> x) {
  std::vector<std::uint16_t> bits(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) bits[i] = to_bf16_bits(x[i]);
  return bits;
}

}  // namespace locality

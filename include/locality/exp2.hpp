// The exponential of every attention rung, CPU and GPU: softmax weights are
// 2^((s - max) log2 e), and the exponent is never positive. One definition,
// so that the verifier's bound on its error (kExp2MaxRelError in verify.hpp,
// which the tests measure) holds for every rung that uses it. Internal to the
// ladders; compiled for the device as well where CUDA compiles it.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LOCALITY_HOST_DEVICE __host__ __device__
#else
#define LOCALITY_HOST_DEVICE
#endif

namespace locality {

inline constexpr float kLog2e = 1.44269504088896340736f;

// The bits of `from` read as a To of the same size.
template <typename To, typename From>
LOCALITY_HOST_DEVICE inline To reinterpret_bits(From from) {
  static_assert(sizeof(To) == sizeof(From));
#if defined(__CUDA_ARCH__)
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
#else
  return std::bit_cast<To>(from);
#endif
}

// 2^f for f in [-1/2, 1/2], on a float or on a vector of them: the degree-7
// Taylor polynomial of e^(f ln 2) (truncation error below 6e-9, a tenth of
// float's unit roundoff), by Horner's rule.
template <typename F>
LOCALITY_HOST_DEVICE inline F exp2_reduced(F f) {
  F p = F{} + 1.5252733804059840e-5f;  // (ln 2)^7 / 7!
  p = p * f + 1.5403530393381608e-4f;  // (ln 2)^6 / 6!
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  return p * f + 1.0f;
}

// 2^x for x <= 0 (or -inf), on a float or on a vector of them (F, with U the
// unsigned integers of the same shape): round x to the nearest integer n,
// evaluate 2^f for f = x - n in [-1/2, 1/2] (exp2_reduced), and scale by 2^n
// built in the exponent bits. Results below 2^-126 are flushed to zero; NaN
// stays NaN. The tests bound its relative error by kExp2MaxRelError over
// [-126, 0].
template <typename F, typename U>
LOCALITY_HOST_DEVICE inline F exp2_nonpositive_impl(F x) {
  const F zero{};
  x = x < -127.0f ? zero - 127.0f : x;   // -inf and deep underflow give 0 below
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: x + kRound keeps round(x) in its low bits
  const F shifted = x + kRound;
  const F p = exp2_reduced(x - (shifted - kRound));
  // round(x) + 127 in the exponent field: 2^round(x), or +0 for round(x) = -127.
  const U n_plus_bias =
      reinterpret_bits<U>(shifted) - reinterpret_bits<std::uint32_t>(kRound) + 127u;
  return p * reinterpret_bits<F>(n_plus_bias << 23);
}

}  // namespace locality

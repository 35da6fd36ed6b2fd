// The per-element rule both verifiers share (verify.cpp, verify_attention.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "locality/verify.hpp"

namespace locality {

// One computed element against its reference: where the reference is not
// finite, it must be the same (NaN for NaN, the same infinity); elsewhere
// within `bound` (a NaN is never within). Passing elements raise the
// result's largest error and error / bound; the first failing one sets ok to
// false, both maxima to infinity, and the message to describe()'s text.
template <typename Describe>
void check_element(VerifyResult& result, double got, double want, double bound,
                   const Describe& describe) {
  const double error = std::abs(got - want);
  bool good;
  if (!std::isfinite(want)) {
    good = std::isnan(want) ? std::isnan(got) : got == want;
  } else {
    good = error <= bound;  // false when got is NaN
    if (good && bound > 0.0) {
      result.max_error = std::max(result.max_error, error);
      result.max_bound_ratio = std::max(result.max_bound_ratio, error / bound);
    }
  }
  if (!good && result.ok) {
    result.ok = false;
    result.max_error = result.max_bound_ratio = std::numeric_limits<double>::infinity();
    result.message = describe(error);
  }
}

}  // namespace locality

// The one verifier: every rung's output against Eigen computed in double.
//
// Error bound. Each c(i, j) is a sum of k products formed in float. Whatever
// order a kernel sums in (blocked, vectorized, fused multiply-add or not),
// the classic forward-error bound for a dot product holds (Higham, Accuracy
// and Stability of Numerical Algorithms, 2nd ed., eq. 3.5):
//
//   |c(i,j) - exact(i,j)| <= gamma_k * (|A| |B|)(i,j),  gamma_k = k u / (1 - k u)
//
// with u = 2^-24 the unit roundoff of float. The reference itself is computed
// in double, so we add the same bound with u = 2^-53, and k * denorm_min / 2
// for products that underflow into the subnormal range. No constant in the
// bound was tuned. How sharp it is: with our inputs (|x| in [1/64, 1]) and
// k = 300 the bound is about 1.4e-3 while a typical product is about 0.25, so
// a kernel that drops or repeats one ordinary product fails by two orders of
// magnitude; a whole dropped block of k fails at any k.
//
// Non-finite reference entries (from NaN or Inf inputs) must be matched
// exactly: NaN where the reference has NaN, the same infinity where it has one.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "locality/matrix.hpp"

namespace locality {

struct VerifyResult {
  bool ok = true;
  double max_error = 0.0;        // largest |c - reference|
  double max_bound_ratio = 0.0;  // largest |c - reference| / bound (ok means <= 1)
  std::string message;           // first failing element, empty when ok
};

// Checks C == A * B within the bound above, every element.
VerifyResult verify_matmul(ConstView<float> a, ConstView<float> b, ConstView<float> c);

// Checks only the listed rows of C (each in [0, m)): O(rows * n * k) instead of
// O(m * n * k), for a quick guard on products too large to check in full.
VerifyResult verify_matmul_rows(ConstView<float> a, ConstView<float> b, ConstView<float> c,
                                std::span<const std::ptrdiff_t> rows);

// The bound's factor gamma_k(float) + gamma_k(double) (see above).
double matmul_error_factor(std::ptrdiff_t k);

// Fills `m` with values drawn uniformly from [-1, -1/64] U [1/64, 1]: random,
// reproducible from `seed`, and never zero (so a skipped product shows).
void fill_random(View<float> m, std::uint64_t seed);

// Sets every element of the view to NaN, so an element a kernel forgets to
// write fails verification.
void poison(View<float> m);

}  // namespace locality

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
#include <vector>

#include "locality/attention.hpp"
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

// bf16 inputs, float accumulation (the tensor-core ladder). A and B hold
// bf16 values (round_to_bf16), so each product of two is exact in float
// (8-bit significands: a 16-bit product), and only the additions err. Tensor
// cores add a group of products to the accumulator by aligning them all to
// the largest exponent and truncating, then normalizing the sum with
// truncation: each of a group's b products, the accumulator and the
// normalization loses less than 2^-23 (one unit in float's last place,
// truncation's worst case) of the group's magnitude sum, itself at most
// sum_j |a_ij b_jk|. With groups of b >= 4 products (the smallest any tensor
// core uses for 16-bit inputs) that is (b + 2) / b <= 3/2 units per product:
//
//   |c(i,j) - exact(i,j)| <= gamma_{3k/2}(2^-23) (|A| |B|)(i,j)
//
// plus the reference's gamma_k(2^-53) and k denorm_min / 2 as above. Derived
// for the hardware's rounding, not fitted to any output; with inputs in
// [1/64, 1] and k = 72 it is about 2.4e-4 against products of about 0.26.
double bf16_matmul_error_factor(std::ptrdiff_t k);

// Checks the listed rows of C == A * B for A and B holding bf16 values (the
// check fails, naming the element, if one does not) within the bound above.
VerifyResult verify_matmul_bf16_rows(ConstView<float> a, ConstView<float> b, ConstView<float> c,
                                     std::span<const std::ptrdiff_t> rows);

// Attention. For query row i with n visible keys, the exact scores are
// s_j = scale * q_i . k_j, the weights p_j = softmax_j(s_j), the output
// o_c = sum_j p_j v_jc. Every rung computes, in float, some arrangement of:
// the dot products (Higham's bound again: |error| <= gamma_{d+2} a_j, with
// a_j = |scale| |q_i| . |k_j|, two extra roundings for folding the scale and
// log2(e) in, and d denorm_min for products that underflow), the exponent s_j - max (error <= 2u
// |s_j - max| <= 4u M, where M = max_j |s_j|), at most one rescaling of the running sums per key
// (each an exponential of relative error E = kExp2MaxRelError plus a product, and arguments whose
// errors sum to at most 2u M), and the sums over n keys (gamma_{n+2}, with the final division). So
// each weight's exponent is off by at most
//   rho_j = gamma_{d+2} a_j + d denorm_min + 6u M + (n + 2)(E + 2u)
// (natural-log units), its value by a factor within exp(+-rho_j), and
//   |o_c - exact| <= sum_j p_j |v_jc| (phi_j + g) + |o_c| (phibar + g) / (1 - phibar - g)
//                    + 2u |o_c| + n 2^-125 max_j |v_jc| + (2n + 1) denorm_min / 2
// with phi_j = exp(rho_j) - 1, phibar = sum_j p_j phi_j, g = gamma_{n+2}: the
// first term is the numerator's error, the second the normalizer's, then
// the final scaling, then weights below 2^-126 flushed to zero, then the n
// products, at most n rescalings and the final scaling rounding among the
// subnormals (absolutely, as in the matmul bound). The
// reference, in double, adds the same with u = 2^-53. Nothing is tuned: how
// sharp it is at seq_kv = 300, head_dim 64 (inputs in [1/64, 1]): about 1e-4
// of |o|, while dropping one key moves o by about 1/300 of it.
// Non-finite reference outputs must be matched as in verify_matmul.
inline constexpr double kExp2MaxRelError = 0x1p-23;  // 2u; tests measure 1.2u

// Checks every row of O (or the listed rows: index (b * heads + h) * seq_q + i).
VerifyResult verify_attention(const AttentionShape& shape, std::span<const float> q,
                              std::span<const float> k, std::span<const float> v,
                              std::span<const float> o, const AttentionOptions& options);
VerifyResult verify_attention_rows(const AttentionShape& shape, std::span<const float> q,
                                   std::span<const float> k, std::span<const float> v,
                                   std::span<const float> o, const AttentionOptions& options,
                                   std::span<const std::ptrdiff_t> rows);

// bf16 attention (the bf16 ladder): Q, K and V hold bf16 values, the weights
// are rounded to bf16 on their way to P V, and O is rounded to bf16. The same
// argument, with what changes:
//   - a score is a tensor-core sum of d exact products, then scaled in float
//     by scale log2(e) (itself rounded): gamma_{3d/2+3}(2^-23) a_j, as
//     bf16_matmul_error_factor plus the two roundings, and d 2^-126 for
//     products the tensor cores flush to zero;
//   - a weight enters the numerator rounded to bf16 (8 significant bits:
//     relative error at most 2^-8) but the row sum unrounded (it is summed in float before the
//     rounding): phi_j becomes (1 + phi_j)(1 + 2^-8) - 1 in the numerator;
//   - the numerator's sums are tensor-core sums over n keys with at most one
//     rescaling of the accumulator per key and the final division:
//     gamma_{2n+2}(2^-23) there (3n/2 + 1 units for the sums, n/2 for the
//     rescalings, 1/2 for the division), while the row sum keeps
//     gamma_{n+2}(2^-24); products below 2^-126 flushed add n 2^-126;
//   - O rounded to bf16: the bound b grows to b + 2^-8 (|o_c| + b) + 2^-134.
// The roundings of P and of O dominate: about 2^-8 (0.4%) of sum_j p_j |v_jc|
// plus 2^-8 |o_c|. That still refuses a dropped key at 40
// keys (its weight is 1/40) but not at 4096 (1/4096): the tests that guard
// the rungs' logic use short rows, and a dropped tile of keys shows at any
// length.
VerifyResult verify_attention_bf16_rows(const AttentionShape& shape, std::span<const float> q,
                                        std::span<const float> k, std::span<const float> v,
                                        std::span<const float> o, const AttentionOptions& options,
                                        std::span<const std::ptrdiff_t> rows);

// `count` of `total` rows spread evenly, the first and the last included
// (all of them when count >= total): the rows a check of a large result
// looks at where checking all would take longer than the call itself.
std::vector<std::ptrdiff_t> spread_rows(std::ptrdiff_t total, std::ptrdiff_t count);

// Fills `m` with values drawn uniformly from [-1, -1/64] U [1/64, 1]: random,
// reproducible from `seed`, and never zero (so a skipped product shows).
void fill_random(View<float> m, std::uint64_t seed);

// Sets every element of the view to NaN, so an element a kernel forgets to
// write fails verification.
void poison(View<float> m);

// The same for a flat buffer (attention tensors).
void fill_random(std::span<float> x, std::uint64_t seed);
void poison(std::span<float> x);

}  // namespace locality

// The attention verifiers, float and bf16: Eigen in double, row by row, with
// the error bounds written down in verify.hpp.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "check_element.hpp"
#include "locality/bf16.hpp"
#include "locality/verify.hpp"

namespace locality {
namespace {

using MatrixXfRow = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapF = Eigen::Map<const MatrixXfRow>;

double gamma(double n, double u) {
  const double nu = n * u;
  return nu < 1.0 ? nu / (1.0 - nu) : std::numeric_limits<double>::infinity();
}

// What differs between the float and the bf16 bounds (verify.hpp).
struct Numerics {
  bool bf16 = false;
};

VerifyResult check_rows(const AttentionShape& shape, std::span<const float> q,
                        std::span<const float> k, std::span<const float> v,
                        std::span<const float> o, const AttentionOptions& options,
                        std::span<const std::ptrdiff_t> rows, Numerics numerics) {
  VerifyResult result;
  const std::ptrdiff_t d = shape.head_dim, nq = shape.seq_q, nkv = shape.seq_kv;
  if (shape.batch < 0 || shape.heads < 0 || nq < 0 || nkv < 1 || d < 1 ||
      q.size() != static_cast<std::size_t>(shape.batch * shape.heads * nq * d) ||
      o.size() != q.size() ||
      k.size() != static_cast<std::size_t>(shape.batch * shape.heads * nkv * d) ||
      v.size() != k.size()) {
    result.ok = false;
    result.message = "verify_attention: tensor sizes do not match the shape";
    return result;
  }
  const bool bf16 = numerics.bf16;
  const double scale = attention_scale(shape, options);
  const double uf = std::ldexp(1.0, -24), ud = std::ldexp(1.0, -53), ub = std::ldexp(1.0, -8);
  const double flushed = std::ldexp(1.0, -126);  // a product the tensor cores flush
  const double dd = static_cast<double>(d);
  const double score_gamma =
      (bf16 ? gamma(1.5 * dd + 3, 2 * uf) : gamma(dd + 2, uf)) + gamma(dd + 2, ud);
  const double score_floor = dd * (bf16 ? flushed : std::numeric_limits<float>::denorm_min());
  const std::ptrdiff_t total_rows = shape.batch * shape.heads * nq;
  Eigen::MatrixXd kd, vd, k_abs, v_abs;  // the current head's K and V in double
  std::ptrdiff_t cached_head = -1;

  for (const std::ptrdiff_t row : rows) {
    if (row < 0 || row >= total_rows) {
      result.ok = false;
      result.message = "verify_attention_rows: row " + std::to_string(row) + " is outside O";
      return result;
    }
    const std::ptrdiff_t head = row / nq, i = row % nq;
    if (head != cached_head) {
      kd = ConstMapF(k.data() + head * nkv * d, nkv, d).cast<double>();
      vd = ConstMapF(v.data() + head * nkv * d, nkv, d).cast<double>();
      k_abs = kd.cwiseAbs();
      v_abs = vd.cwiseAbs();
      cached_head = head;
    }
    const std::ptrdiff_t n = visible_keys(i, nkv, options.causal);
    const Eigen::VectorXd qd = ConstMapF(q.data() + row * d, 1, d).cast<double>().transpose();
    const float* oi = o.data() + row * d;

    // Scores and their magnitudes; the largest score (NaN wins, so it propagates).
    const Eigen::VectorXd s = scale * (kd.topRows(n) * qd);
    const Eigen::VectorXd a = std::abs(scale) * (k_abs.topRows(n) * qd.cwiseAbs());
    double smax = -std::numeric_limits<double>::infinity();
    for (std::ptrdiff_t j = 0; j < n; ++j) smax = (std::isnan(s[j]) || s[j] > smax) ? s[j] : smax;
    const double big = s.cwiseAbs().maxCoeff();
    Eigen::VectorXd p = (s.array() - smax).exp().matrix();
    p /= p.sum();

    const double keys = static_cast<double>(n) + 2.0;
    const Eigen::ArrayXd rho = score_gamma * a.array() + score_floor +
                               keys * (kExp2MaxRelError + 2 * uf) + 6 * (uf + ud) * big;
    const Eigen::ArrayXd phi = rho.unaryExpr([](double x) { return std::expm1(x); });
    // The numerator's: P rounded to bf16 on its way there, tensor-core sums.
    const Eigen::ArrayXd phi_num = bf16 ? ((1.0 + phi) * (1.0 + ub) - 1.0).eval() : phi;
    const double g = gamma(keys, uf) + gamma(keys + dd, ud);
    const double g_num =
        bf16 ? gamma(2.0 * static_cast<double>(n) + 2, 2 * uf) + gamma(keys + dd, ud) : g;
    const double phibar = (p.array() * phi).sum();
    const Eigen::VectorXd out = vd.topRows(n).transpose() * p;
    const Eigen::VectorXd numer =
        v_abs.topRows(n).transpose() * (p.array() * (phi_num + g_num)).matrix();
    const Eigen::VectorXd vmax = v_abs.topRows(n).colwise().maxCoeff().transpose();
    const double denom = 1.0 - phibar - g;
    // Products, rescalings and the final scaling that land among the float
    // subnormals round by up to denorm_min / 2 each, absolutely, not relatively
    // (and the tensor cores may flush a product to zero).
    const double subnormal_floor =
        (2.0 * static_cast<double>(n) + 1.0) * 0.5 * std::numeric_limits<float>::denorm_min() +
        (bf16 ? static_cast<double>(n) * flushed : 0.0);
    for (std::ptrdiff_t c = 0; c < d; ++c) {
      const double got = oi[c], want = out[c];
      double bound =
          denom > 0.0
              ? numer[c] + std::abs(want) * (phibar + g) / denom + 2 * uf * std::abs(want) +
                    static_cast<double>(n) * std::ldexp(1.0, -125) * vmax[c] + subnormal_floor
              : std::numeric_limits<double>::infinity();
      if (bf16) bound += ub * (std::abs(want) + bound) + std::ldexp(1.0, -134);  // O in bf16
      check_element(result, got, want, bound, [&](double error) {
        std::ostringstream msg;
        msg.precision(9);
        msg << "O[head " << head << ", row " << i << ", dim " << c << "] = " << got
            << ", reference " << want << " (error " << error << ", bound " << bound << ", keys "
            << n << ")";
        return msg.str();
      });
    }
  }
  return result;
}

// "" when every element of x holds a bf16 value (NaN and infinity included).
std::string not_bf16(std::span<const float> x, const char* name) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float e = x[i];
    if (!std::isnan(e) && round_to_bf16(e) != e) {
      return std::string("verify_attention_bf16_rows: ") + name + "[" + std::to_string(i) +
             "] is not a bf16 value";
    }
  }
  return "";
}

}  // namespace

VerifyResult verify_attention_rows(const AttentionShape& shape, std::span<const float> q,
                                   std::span<const float> k, std::span<const float> v,
                                   std::span<const float> o, const AttentionOptions& options,
                                   std::span<const std::ptrdiff_t> rows) {
  return check_rows(shape, q, k, v, o, options, rows, Numerics{});
}

VerifyResult verify_attention_bf16_rows(const AttentionShape& shape, std::span<const float> q,
                                        std::span<const float> k, std::span<const float> v,
                                        std::span<const float> o, const AttentionOptions& options,
                                        std::span<const std::ptrdiff_t> rows) {
  for (const auto& [x, name] : {std::pair{q, "Q"}, std::pair{k, "K"}, std::pair{v, "V"}}) {
    if (std::string why = not_bf16(x, name); !why.empty()) {
      VerifyResult result;
      result.ok = false;
      result.message = std::move(why);
      return result;
    }
  }
  return check_rows(shape, q, k, v, o, options, rows, Numerics{true});
}

VerifyResult verify_attention(const AttentionShape& shape, std::span<const float> q,
                              std::span<const float> k, std::span<const float> v,
                              std::span<const float> o, const AttentionOptions& options) {
  const std::ptrdiff_t total = std::max<std::ptrdiff_t>(0, shape.batch * shape.heads * shape.seq_q);
  std::vector<std::ptrdiff_t> rows(static_cast<std::size_t>(total));
  std::iota(rows.begin(), rows.end(), std::ptrdiff_t{0});
  return verify_attention_rows(shape, q, k, v, o, options, rows);
}

}  // namespace locality

#include "locality/verify.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "check_element.hpp"
#include "locality/bf16.hpp"

namespace locality {
namespace {

using MatrixXdRow = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixXfRow = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapF =
    Eigen::Map<const MatrixXfRow, Eigen::Unaligned, Eigen::OuterStride<Eigen::Dynamic>>;

ConstMapF map(ConstView<float> v) {
  return ConstMapF(v.data(), v.rows(), v.cols(), Eigen::OuterStride<Eigen::Dynamic>(v.ld()));
}

double gamma(std::ptrdiff_t k, double u) {
  const double ku = static_cast<double>(k) * u;
  return ku < 1.0 ? ku / (1.0 - ku) : std::numeric_limits<double>::infinity();
}

}  // namespace

double matmul_error_factor(std::ptrdiff_t k) {
  return gamma(k, std::ldexp(1.0, -24)) + gamma(k, std::ldexp(1.0, -53));
}

double bf16_matmul_error_factor(std::ptrdiff_t k) {
  return gamma(k + k / 2 + 1, std::ldexp(1.0, -23)) + gamma(k, std::ldexp(1.0, -53));
}

namespace {

// The first element of `m` that is not a bf16 value, as a message; "" if none.
std::string not_bf16(ConstView<float> m, const char* name) {
  for (std::ptrdiff_t i = 0; i < m.rows(); ++i) {
    for (std::ptrdiff_t j = 0; j < m.cols(); ++j) {
      const float x = m(i, j);
      if (x == x && round_to_bf16(x) != x) {
        return std::string("verify_matmul_bf16_rows: ") + name + "(" + std::to_string(i) + "," +
               std::to_string(j) + ") is not a bf16 value";
      }
    }
  }
  return "";
}

// C == A B on the listed rows within factor (|A| |B|) + the underflow term.
VerifyResult verify_rows(ConstView<float> a, ConstView<float> b, ConstView<float> c,
                         std::span<const std::ptrdiff_t> rows, double factor) {
  VerifyResult result;
  if (a.cols() != b.rows() || c.rows() != a.rows() || c.cols() != b.cols()) {
    result.ok = false;
    result.message = "verify_matmul: shapes do not match";
    return result;
  }
  const std::ptrdiff_t k = a.cols();
  const MatrixXdRow bd = map(b).cast<double>();
  const MatrixXdRow b_abs = bd.cwiseAbs();
  const double underflow = static_cast<double>(k) * std::numeric_limits<float>::denorm_min() / 2;

  for (const std::ptrdiff_t i : rows) {
    if (i < 0 || i >= c.rows()) {
      result.ok = false;
      result.message = "verify_matmul_rows: row " + std::to_string(i) + " is outside C";
      return result;
    }
    const Eigen::RowVectorXd a_row = map(a).row(i).cast<double>();
    const Eigen::RowVectorXd reference = a_row * bd;
    const Eigen::RowVectorXd magnitude = a_row.cwiseAbs() * b_abs;
    for (std::ptrdiff_t j = 0; j < c.cols(); ++j) {
      const double got = c(i, j), want = reference(j);
      const double bound = factor * magnitude(j) + underflow;
      check_element(result, got, want, bound, [&](double error) {
        std::ostringstream out;
        out.precision(9);
        out << "C(" << i << "," << j << ") = " << got << ", reference " << want << " (error "
            << error << ", bound " << bound << ", k = " << k << ")";
        return out.str();
      });
    }
  }
  return result;
}

}  // namespace

VerifyResult verify_matmul_rows(ConstView<float> a, ConstView<float> b, ConstView<float> c,
                                std::span<const std::ptrdiff_t> rows) {
  return verify_rows(a, b, c, rows, matmul_error_factor(a.cols()));
}

VerifyResult verify_matmul_bf16_rows(ConstView<float> a, ConstView<float> b, ConstView<float> c,
                                     std::span<const std::ptrdiff_t> rows) {
  for (const auto& [m, name] : {std::pair{a, "A"}, std::pair{b, "B"}}) {
    if (std::string why = not_bf16(m, name); !why.empty()) {
      VerifyResult result;
      result.ok = false;
      result.message = std::move(why);
      return result;
    }
  }
  return verify_rows(a, b, c, rows, bf16_matmul_error_factor(a.cols()));
}

VerifyResult verify_matmul(ConstView<float> a, ConstView<float> b, ConstView<float> c) {
  std::vector<std::ptrdiff_t> rows(static_cast<std::size_t>(std::max<std::ptrdiff_t>(c.rows(), 0)));
  std::iota(rows.begin(), rows.end(), std::ptrdiff_t{0});
  return verify_matmul_rows(a, b, c, rows);
}

void fill_random(View<float> m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> magnitude(1.0f / 64, 1.0f);
  std::bernoulli_distribution negative(0.5);
  for (std::ptrdiff_t i = 0; i < m.rows(); ++i) {
    for (std::ptrdiff_t j = 0; j < m.cols(); ++j) {
      const float v = magnitude(rng);
      m(i, j) = negative(rng) ? -v : v;
    }
  }
}

void fill_random(std::span<float> x, std::uint64_t seed) {
  fill_random(View<float>(x.data(), 1, static_cast<std::ptrdiff_t>(x.size())), seed);
}

void poison(std::span<float> x) {
  std::fill(x.begin(), x.end(), std::numeric_limits<float>::quiet_NaN());
}

void poison(View<float> m) {
  for (std::ptrdiff_t i = 0; i < m.rows(); ++i) {
    for (std::ptrdiff_t j = 0; j < m.cols(); ++j) m(i, j) = std::numeric_limits<float>::quiet_NaN();
  }
}

std::vector<std::ptrdiff_t> spread_rows(std::ptrdiff_t total, std::ptrdiff_t count) {
  count = std::min(total, count);
  std::vector<std::ptrdiff_t> rows;
  for (std::ptrdiff_t r = 0; r < count; ++r) {
    rows.push_back(count == 1 ? 0 : r * (total - 1) / (count - 1));
  }
  return rows;
}

}  // namespace locality

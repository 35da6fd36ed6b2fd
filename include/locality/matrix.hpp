// Row-major matrix views with a leading dimension, and an owning, 64-byte
// aligned matrix. Kernels take views; callers own Matrix objects.
//
// Element (i, j) of a view lives at data[i * ld + j]. The leading dimension
// `ld` may exceed `cols`, so a view can describe a block of a larger matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace locality {

// One cache line on every x86-64 and AArch64 part we target; also the
// alignment AVX-512 loads like best.
inline constexpr std::size_t kCacheLineBytes = 64;

// Thrown for any malformed shape or view: the message names the problem.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
inline void check_view(std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t ld,
                       const void* data) {
  if (rows < 0 || cols < 0) {
    throw ShapeError("view has a negative size (" + std::to_string(rows) + "x" +
                     std::to_string(cols) + ")");
  }
  if (ld < cols) {
    throw ShapeError("leading dimension " + std::to_string(ld) + " is smaller than the " +
                     std::to_string(cols) + " columns of the view");
  }
  if (data == nullptr && rows > 0 && cols > 0) {
    throw ShapeError("view of " + std::to_string(rows) + "x" + std::to_string(cols) +
                     " elements has null data");
  }
}
inline void check_block(std::ptrdiff_t i, std::ptrdiff_t j, std::ptrdiff_t rows,
                        std::ptrdiff_t cols, std::ptrdiff_t outer_rows, std::ptrdiff_t outer_cols) {
  if (i < 0 || j < 0 || rows < 0 || cols < 0 || i + rows > outer_rows || j + cols > outer_cols) {
    throw ShapeError("block (" + std::to_string(i) + "," + std::to_string(j) + ") of " +
                     std::to_string(rows) + "x" + std::to_string(cols) + " is outside a " +
                     std::to_string(outer_rows) + "x" + std::to_string(outer_cols) + " view");
  }
}
}  // namespace detail

// Mutable, non-owning row-major view.
template <typename T>
class View {
 public:
  View() = default;
  View(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {
    detail::check_view(rows, cols, ld, data);
  }
  View(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols) : View(data, rows, cols, cols) {}

  T* data() const { return data_; }
  std::ptrdiff_t rows() const { return rows_; }
  std::ptrdiff_t cols() const { return cols_; }
  std::ptrdiff_t ld() const { return ld_; }
  T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return data_[i * ld_ + j]; }
  T* row(std::ptrdiff_t i) const { return data_ + i * ld_; }

  // The rows x cols block whose top-left element is (i, j).
  View block(std::ptrdiff_t i, std::ptrdiff_t j, std::ptrdiff_t rows, std::ptrdiff_t cols) const {
    detail::check_block(i, j, rows, cols, rows_, cols_);
    return View(data_ + i * ld_ + j, rows, cols, ld_);
  }

 private:
  T* data_ = nullptr;
  std::ptrdiff_t rows_ = 0, cols_ = 0, ld_ = 0;
};

// Read-only, non-owning row-major view; every View converts to one.
template <typename T>
class ConstView {
 public:
  ConstView() = default;
  ConstView(const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {
    detail::check_view(rows, cols, ld, data);
  }
  ConstView(const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols)
      : ConstView(data, rows, cols, cols) {}
  ConstView(View<T> v)  // NOLINT(google-explicit-constructor): views narrow implicitly
      : data_(v.data()), rows_(v.rows()), cols_(v.cols()), ld_(v.ld()) {}

  const T* data() const { return data_; }
  std::ptrdiff_t rows() const { return rows_; }
  std::ptrdiff_t cols() const { return cols_; }
  std::ptrdiff_t ld() const { return ld_; }
  const T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return data_[i * ld_ + j]; }
  const T* row(std::ptrdiff_t i) const { return data_ + i * ld_; }

  ConstView block(std::ptrdiff_t i, std::ptrdiff_t j, std::ptrdiff_t rows,
                  std::ptrdiff_t cols) const {
    detail::check_block(i, j, rows, cols, rows_, cols_);
    return ConstView(data_ + i * ld_ + j, rows, cols, ld_);
  }

 private:
  const T* data_ = nullptr;
  std::ptrdiff_t rows_ = 0, cols_ = 0, ld_ = 0;
};

// a * b and a + b for sizes computed from a caller's shape, or ShapeError
// saying that `what` is too large: a size never wraps to a small number that a
// kernel would then write past.
inline std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  std::size_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) {
    throw ShapeError(std::string(what) + ": too large for the address space");
  }
  return out;
}
inline std::size_t checked_add(std::size_t a, std::size_t b, const char* what) {
  std::size_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    throw ShapeError(std::string(what) + ": too large for the address space");
  }
  return out;
}

// Number of elements rows x ld, or an exception if it overflows or is negative.
inline std::size_t checked_elements(std::ptrdiff_t rows, std::ptrdiff_t ld,
                                    std::size_t elem_bytes) {
  if (rows < 0 || ld < 0) throw ShapeError("negative matrix size");
  const auto r = static_cast<std::size_t>(rows);
  const auto c = static_cast<std::size_t>(ld);
  // Room for the bytes rounded up to a whole cache line (Matrix allocates so).
  const std::size_t max_elems =
      (std::numeric_limits<std::size_t>::max() - kCacheLineBytes) / elem_bytes;
  if (c != 0 && r > max_elems / c) {
    throw ShapeError("matrix of " + std::to_string(rows) + "x" + std::to_string(ld) +
                     " elements overflows the address space");
  }
  return r * c;
}

// Owning row-major matrix, 64-byte aligned, each row padded to `ld` elements.
template <typename T>
class Matrix {
 public:
  Matrix() = default;
  Matrix(std::ptrdiff_t rows, std::ptrdiff_t cols) : Matrix(rows, cols, cols) {}
  Matrix(std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t ld)
      : rows_(rows), cols_(cols), ld_(ld) {
    detail::check_view(rows, cols, ld, this);
    const std::size_t n = checked_elements(rows, ld, sizeof(T));
    if (n > 0) {
      // Round the byte count up to whole cache lines, as aligned new expects.
      const std::size_t bytes =
          (n * sizeof(T) + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes;
      data_.reset(static_cast<T*>(::operator new (bytes, std::align_val_t{kCacheLineBytes})));
      for (std::size_t e = 0; e < n; ++e) new (data_.get() + e) T{};
    }
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::ptrdiff_t rows() const { return rows_; }
  std::ptrdiff_t cols() const { return cols_; }
  std::ptrdiff_t ld() const { return ld_; }
  T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) { return data_[i * ld_ + j]; }
  const T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return data_[i * ld_ + j]; }

  View<T> view() { return View<T>(data(), rows_, cols_, ld_); }
  ConstView<T> view() const { return ConstView<T>(data(), rows_, cols_, ld_); }
  ConstView<T> cview() const { return view(); }

  // Sets every element, padding included, to `value` (e.g. NaN to poison).
  void fill(T value) {
    const std::size_t n = static_cast<std::size_t>(rows_) * static_cast<std::size_t>(ld_);
    for (std::size_t e = 0; e < n; ++e) data_[e] = value;
  }

 private:
  struct AlignedDelete {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{kCacheLineBytes}); }
  };
  std::unique_ptr<T[], AlignedDelete> data_;
  std::ptrdiff_t rows_ = 0, cols_ = 0, ld_ = 0;
};

}  // namespace locality

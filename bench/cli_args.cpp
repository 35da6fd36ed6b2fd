#include "cli_args.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "locality/matrix.hpp"

namespace locality::cli {

std::int64_t parse_int(std::string_view text, std::int64_t lo, std::int64_t hi,
                       std::string_view what) {
  std::int64_t value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  std::ostringstream err;
  if (text.empty() || ec == std::errc::invalid_argument || ptr != last) {
    err << what << " must be a whole number, got '" << text << "'";
    throw UsageError{err.str()};
  }
  if (ec == std::errc::result_out_of_range || value < lo || value > hi) {
    err << what << " must be between " << lo << " and " << hi << ", got " << text;
    throw UsageError{err.str()};
  }
  return value;
}

float parse_float(std::string_view text, std::string_view what) {
  float value = 0.0f;
  const char* last = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), last, value);
  if (text.empty() || ec != std::errc() || ptr != last || !std::isfinite(value)) {
    std::ostringstream err;
    err << what << " must be a finite number, got '" << text << "'";
    throw UsageError{err.str()};
  }
  return value;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// The library's checked arithmetic, its ShapeError turned into a usage error (exit 2).
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  try {
    return locality::checked_mul(a, b, std::string(what).c_str());
  } catch (const locality::ShapeError& e) {
    throw UsageError{e.what()};
  }
}

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  try {
    return locality::checked_add(a, b, std::string(what).c_str());
  } catch (const locality::ShapeError& e) {
    throw UsageError{e.what()};
  }
}

std::vector<std::int64_t> parse_list(std::string_view text, std::int64_t lo, std::int64_t hi,
                                     std::string_view what) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(parse_int(text.substr(start, comma - start), lo, hi, what));
    start = comma + 1;
  }
  return out;
}

std::uint64_t matmul_bytes(std::int64_t m, std::int64_t n, std::int64_t k, bool with_reference) {
  const auto um = static_cast<std::uint64_t>(m), un = static_cast<std::uint64_t>(n),
             uk = static_cast<std::uint64_t>(k);
  const char* what = "the buffer size of this product";
  const std::uint64_t mk = checked_mul(um, uk, what), kn = checked_mul(uk, un, what),
                      mn = checked_mul(um, un, what);
  std::uint64_t elems = checked_add(checked_add(mk, kn, what), mn, what);
  std::uint64_t bytes = checked_mul(elems, sizeof(float), what);
  if (with_reference) {
    // B and |B| in double, plus a few rows: 2 kn doubles dominate.
    const std::uint64_t ref = checked_mul(
        checked_add(checked_mul(kn, 2, what), 3 * (uk + un), what), sizeof(double), what);
    bytes = checked_add(bytes, ref, what);
  }
  return bytes;
}

void require_memory(std::uint64_t bytes, std::string_view what) {
  const std::optional<std::uint64_t> available = available_memory_bytes();
  if (available && bytes > *available) {
    std::ostringstream err;
    err << what << " needs " << bytes << " bytes (" << bytes / (1u << 20) << " MiB) but only "
        << *available << " bytes (" << *available / (1u << 20) << " MiB) are available";
    throw UsageError{err.str()};
  }
}

}  // namespace locality::cli

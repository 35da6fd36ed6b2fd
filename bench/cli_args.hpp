// Argument checking shared by `locality` and `locality_bench`: one way to
// turn user text into sizes and thread counts, and one memory guard.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace locality::cli {

// `text` with every control character escaped (a newline as \n, others as
// \xNN): what a message quotes from the user never breaks it across lines.
std::string one_line(std::string_view text);

// Thrown for any bad user input; main() prints the message, always one line
// (it quotes user text through one_line), and exits 2.
struct UsageError {
  explicit UsageError(std::string_view text) : message(one_line(text)) {}
  std::string message;
};

// A whole-string decimal integer in [lo, hi]; `what` names it in the error.
std::int64_t parse_int(std::string_view text, std::int64_t lo, std::int64_t hi,
                       std::string_view what);

// A whole-string finite decimal number; `what` names it in the error.
float parse_float(std::string_view text, std::string_view what);

// Bytes of memory this process may still allocate (MemAvailable), if known.
std::optional<std::uint64_t> available_memory_bytes();

// a * b, or UsageError naming `what` when it overflows 64 bits.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what);

// a + b, or UsageError naming `what` when it overflows 64 bits.
std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what);

// A comma-separated list of whole numbers, each in [lo, hi] ("64,256").
std::vector<std::int64_t> parse_list(std::string_view text, std::int64_t lo, std::int64_t hi,
                                     std::string_view what);

// Bytes a matmul of m x n x k needs: float A, B, C, plus the double copies the
// Eigen verifier makes when `with_reference` (A row, B, |B|, reference row).
std::uint64_t matmul_bytes(std::int64_t m, std::int64_t n, std::int64_t k, bool with_reference);

// UsageError when `bytes` exceed the available memory, naming both numbers.
void require_memory(std::uint64_t bytes, std::string_view what);

// Largest matrix dimension the tools accept: beyond it a square product does
// not fit in memory on any machine we run on, and the check above says so.
inline constexpr std::int64_t kMaxDimension = 1 << 20;

}  // namespace locality::cli

// locality: list the rungs, or run one once (or a few times) and check it.
//
//   locality list
//   locality run matmul <variant> [--size N | --m M --n N --k K] [--threads T]
//                                 [--repeat R] [--no-verify]
//
// `run` with --repeat 1 calls the kernel exactly once, so it can run under
// valgrind; --no-verify also skips the Eigen reference, leaving only the
// kernel's own memory traffic to count. Exit codes: 0 ok, 1 wrong result,
// 2 bad input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"

namespace locality::cli {
namespace {

constexpr const char* kUsage =
    "usage: locality list\n"
    "       locality run matmul <variant> [--size N | --m M --n N --k K] [--threads T]\n"
    "                                     [--repeat R] [--no-verify] [--device cpu]\n";

int list() {
  std::printf("%-8s %-5s %-12s %s\n", "family", "rung", "variant", "lesson");
  for (const MatmulVariant& v : cpu::matmul_variants()) {
    std::printf("%-8s %-5d %-12.*s %.*s\n", "matmul", v.rung, static_cast<int>(v.name.size()),
                v.name.data(), static_cast<int>(v.lesson.size()), v.lesson.data());
  }
  return 0;
}

struct RunOptions {
  const MatmulVariant* variant = nullptr;
  std::int64_t m = 512, n = 512, k = 512;
  int threads = 1;
  std::int64_t repeat = 1;
  bool verify = true;
};

RunOptions parse_run(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError{"run: missing family (try: locality run matmul packed)"};
  if (args[0] != "matmul")
    throw UsageError{"run: unknown family '" + args[0] + "' (known: matmul)"};
  if (args.size() < 2) throw UsageError{"run matmul: missing variant (see: locality list)"};
  RunOptions opts;
  opts.variant = cpu::find_matmul_variant(args[1]);
  if (!opts.variant) {
    throw UsageError{"run matmul: unknown variant '" + args[1] + "' (see: locality list)"};
  }
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--no-verify") {
      opts.verify = false;
      continue;
    }
    static const char* const kValued[] = {"--size",    "--m",      "--n",     "--k",
                                          "--threads", "--repeat", "--device"};
    if (std::find(std::begin(kValued), std::end(kValued), flag) == std::end(kValued)) {
      throw UsageError{"run: unknown flag '" + flag + "'"};
    }
    if (i + 1 >= args.size()) throw UsageError{"run: " + flag + " needs a value"};
    const std::string& value = args[++i];
    if (flag == "--size") {
      opts.m = opts.n = opts.k = parse_int(value, 1, kMaxDimension, "--size");
    } else if (flag == "--m") {
      opts.m = parse_int(value, 1, kMaxDimension, "--m");
    } else if (flag == "--n") {
      opts.n = parse_int(value, 1, kMaxDimension, "--n");
    } else if (flag == "--k") {
      opts.k = parse_int(value, 1, kMaxDimension, "--k");
    } else if (flag == "--threads") {
      opts.threads = static_cast<int>(parse_int(value, 1, kMaxThreads, "--threads"));
    } else if (flag == "--repeat") {
      opts.repeat = parse_int(value, 1, 1'000'000, "--repeat");
    } else {  // --device
      if (value != "cpu") {
        throw UsageError{"run: device '" + value + "' has no matmul ladder yet (known: cpu)"};
      }
    }
  }
  require_memory(matmul_bytes(opts.m, opts.n, opts.k, opts.verify), "this product");
  return opts;
}

int run(const RunOptions& opts) {
  Matrix<float> a(opts.m, opts.k), b(opts.k, opts.n), c(opts.m, opts.n);
  fill_random(a.view(), 1);
  fill_random(b.view(), 2);
  poison(c.view());

  std::vector<double> seconds;
  for (std::int64_t r = 0; r < opts.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    matmul(*opts.variant, a.cview(), b.cview(), c.view(), opts.threads);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  const double flops =
      2.0 * static_cast<double>(opts.m) * static_cast<double>(opts.n) * static_cast<double>(opts.k);

  std::printf("matmul/%.*s  m=%lld n=%lld k=%lld  threads=%d  runs=%lld\n",
              static_cast<int>(opts.variant->name.size()), opts.variant->name.data(),
              static_cast<long long>(opts.m), static_cast<long long>(opts.n),
              static_cast<long long>(opts.k), opts.threads, static_cast<long long>(opts.repeat));
  std::printf("time: median %.6f s, best %.6f s\n", median, seconds.front());
  std::printf("rate: %.2f GFLOP/s (median), %.2f GFLOP/s (best)\n", flops / median * 1e-9,
              flops / seconds.front() * 1e-9);
  if (!opts.verify) {
    std::printf("verify: skipped (--no-verify)\n");
    return 0;
  }
  const VerifyResult check = verify_matmul(a.cview(), b.cview(), c.cview());
  std::printf("error vs Eigen (double): max %.3g, %.3g of the bound\n", check.max_error,
              check.max_bound_ratio);
  if (!check.ok) {
    std::printf("verify: FAILED: %s\n", check.message.c_str());
    return 1;
  }
  std::printf("verify: ok\n");
  return 0;
}

}  // namespace
}  // namespace locality::cli

int main(int argc, char** argv) {
  using namespace locality::cli;
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::fputs(kUsage, args.empty() ? stderr : stdout);
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "list") {
      if (args.size() > 1) throw UsageError{"list: unexpected argument '" + args[1] + "'"};
      return list();
    }
    if (args[0] == "run") return run(parse_run({args.begin() + 1, args.end()}));
    throw UsageError{"unknown command '" + args[0] + "' (known: list, run)"};
  } catch (const UsageError& e) {
    std::fprintf(stderr, "locality: %s\n", e.message.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "locality: out of memory\n");
    return 2;
  }
}

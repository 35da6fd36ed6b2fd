// locality: list the rungs, or run one once (or a few times) and check it.
//
//   locality list
//   locality run matmul <variant> [--size N | --m M --n N --k K] [--threads T]
//                                 [--repeat R] [--no-verify] [--device cpu]
//   locality run attention <variant> [--batch B] [--heads H] [--seq N | --seq-q N --seq-kv N]
//                                    [--head-dim D] [--causal] [--scale S] [--threads T]
//                                    [--repeat R] [--no-verify] [--device cpu]
//
// `run` with --repeat 1 calls the kernel exactly once, so it can run under
// valgrind; --no-verify also skips the Eigen reference, leaving only the
// kernel's own memory traffic to count. Exit codes: 0 ok, 1 wrong result,
// 2 bad input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "locality/attention.hpp"
#include "locality/matmul.hpp"
#include "locality/verify.hpp"

namespace locality::cli {
namespace {

constexpr const char* kUsage =
    "usage: locality list\n"
    "       locality run matmul <variant> [--size N | --m M --n N --k K] [--threads T]\n"
    "                                     [--repeat R] [--no-verify] [--device cpu]\n"
    "       locality run attention <variant> [--batch B] [--heads H]\n"
    "                                        [--seq N | --seq-q N --seq-kv N] [--head-dim D]\n"
    "                                        [--causal] [--scale S] [--threads T] [--repeat R]\n"
    "                                        [--no-verify] [--device cpu]\n";

int list() {
  std::printf("%-10s %-5s %-16s %s\n", "family", "rung", "variant", "lesson");
  const auto row = [](const char* family, int rung, std::string_view name,
                      std::string_view lesson) {
    std::printf("%-10s %-5d %-16.*s %.*s\n", family, rung, static_cast<int>(name.size()),
                name.data(), static_cast<int>(lesson.size()), lesson.data());
  };
  for (const MatmulVariant& v : cpu::matmul_variants()) row("matmul", v.rung, v.name, v.lesson);
  for (const AttentionVariant& v : cpu::attention_variants()) {
    row("attention", v.rung, v.name, v.lesson);
  }
  return 0;
}

// What `run` does once parsed: a label, the FLOPs of one call, the call, and
// the check against Eigen.
struct Job {
  std::string label;
  double flops = 0.0;
  std::function<void()> call;
  std::function<VerifyResult()> verify;
};

struct Common {
  int threads = 1;
  std::int64_t repeat = 1;
  bool verify = true;
};

// Parses the flags both families share; returns false for a flag it does not know.
bool parse_common(const std::string& flag, const std::vector<std::string>& args, std::size_t& i,
                  Common& common) {
  const auto value = [&]() -> const std::string& {
    if (i + 1 >= args.size()) throw UsageError{"run: " + flag + " needs a value"};
    return args[++i];
  };
  if (flag == "--no-verify") {
    common.verify = false;
  } else if (flag == "--threads") {
    common.threads = static_cast<int>(parse_int(value(), 1, kMaxThreads, "--threads"));
  } else if (flag == "--repeat") {
    common.repeat = parse_int(value(), 1, 1'000'000, "--repeat");
  } else if (flag == "--device") {
    const std::string& device = value();
    if (device != "cpu") {
      throw UsageError{"run: device '" + device + "' has no " + args[0] +
                       " ladder yet (known: cpu)"};
    }
  } else {
    return false;
  }
  return true;
}

std::string value_of(const std::string& flag, const std::vector<std::string>& args,
                     std::size_t& i) {
  if (i + 1 >= args.size()) throw UsageError{"run: " + flag + " needs a value"};
  return args[++i];
}

// Matrices live in `keep` so that the job's lambdas can reach them.
struct MatmulData {
  Matrix<float> a, b, c;
};

Job matmul_job(const std::vector<std::string>& args, Common& common,
               std::shared_ptr<void>& keep) {
  if (args.size() < 2) throw UsageError{"run matmul: missing variant (see: locality list)"};
  const MatmulVariant* variant = cpu::find_matmul_variant(args[1]);
  if (!variant) {
    throw UsageError{"run matmul: unknown variant '" + args[1] + "' (see: locality list)"};
  }
  std::int64_t m = 512, n = 512, k = 512;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (parse_common(flag, args, i, common)) continue;
    if (flag == "--size") {
      m = n = k = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--size");
    } else if (flag == "--m") {
      m = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--m");
    } else if (flag == "--n") {
      n = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--n");
    } else if (flag == "--k") {
      k = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--k");
    } else {
      throw UsageError{"run: unknown flag '" + flag + "'"};
    }
  }
  require_memory(matmul_bytes(m, n, k, common.verify), "this product");

  auto data = std::make_shared<MatmulData>(MatmulData{{m, k}, {k, n}, {m, n}});
  keep = data;
  fill_random(data->a.view(), 1);
  fill_random(data->b.view(), 2);
  poison(data->c.view());
  Job job;
  job.label = "matmul/" + std::string(variant->name) + "  m=" + std::to_string(m) +
              " n=" + std::to_string(n) + " k=" + std::to_string(k);
  job.flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = common.threads;
  job.call = [variant, data, threads] {
    matmul(*variant, data->a.cview(), data->b.cview(), data->c.view(), threads);
  };
  job.verify = [data] { return verify_matmul(data->a.cview(), data->b.cview(), data->c.cview()); };
  return job;
}

struct AttentionData {
  std::vector<float> q, k, v, o, workspace;
};

Job attention_job(const std::vector<std::string>& args, Common& common,
                  std::shared_ptr<void>& keep) {
  if (args.size() < 2) throw UsageError{"run attention: missing variant (see: locality list)"};
  const AttentionVariant* variant = cpu::find_attention_variant(args[1]);
  if (!variant) {
    throw UsageError{"run attention: unknown variant '" + args[1] + "' (see: locality list)"};
  }
  AttentionShape shape{1, 1, 1024, 1024, 64};
  AttentionOptions options;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (parse_common(flag, args, i, common)) continue;
    if (flag == "--causal") {
      options.causal = true;
    } else if (flag == "--batch") {
      shape.batch = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--batch");
    } else if (flag == "--heads") {
      shape.heads = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--heads");
    } else if (flag == "--seq") {
      shape.seq_q = shape.seq_kv = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--seq");
    } else if (flag == "--seq-q") {
      shape.seq_q = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--seq-q");
    } else if (flag == "--seq-kv") {
      shape.seq_kv = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--seq-kv");
    } else if (flag == "--head-dim") {
      shape.head_dim = parse_int(value_of(flag, args, i), 1, kMaxHeadDim, "--head-dim");
    } else if (flag == "--scale") {
      options.scale = parse_float(value_of(flag, args, i), "--scale");
    } else {
      throw UsageError{"run: unknown flag '" + flag + "'"};
    }
  }
  const char* what = "the buffers of this attention problem";
  const auto u = [](std::int64_t x) { return static_cast<std::uint64_t>(x); };
  const std::uint64_t heads = checked_mul(u(shape.batch), u(shape.heads), what);
  const std::uint64_t q_bytes =
      checked_mul(checked_mul(heads, u(shape.seq_q), what), u(shape.head_dim) * 4, what);
  const std::uint64_t kv_bytes =
      checked_mul(checked_mul(heads, u(shape.seq_kv), what), u(shape.head_dim) * 4, what);
  std::uint64_t workspace_bytes = 0;
  try {
    workspace_bytes = attention_workspace_bytes(*variant, shape, common.threads);
  } catch (const ShapeError& e) {
    throw UsageError{std::string("run attention: ") + e.what()};
  }
  // The verifier keeps one head's K, V, |K| and |V| in double.
  const std::uint64_t reference = common.verify ? 4 * (kv_bytes / heads) * 2 : 0;
  require_memory(2 * q_bytes + 2 * kv_bytes + workspace_bytes + reference, "this attention");

  auto data = std::make_shared<AttentionData>();
  keep = data;
  data->q.resize(shape.q_elements());
  data->o.resize(shape.q_elements());
  data->k.resize(shape.kv_elements());
  data->v.resize(shape.kv_elements());
  data->workspace.resize(workspace_bytes / sizeof(float));
  fill_random(std::span<float>(data->q), 1);
  fill_random(std::span<float>(data->k), 2);
  fill_random(std::span<float>(data->v), 3);
  poison(std::span<float>(data->o));
  Job job;
  job.label = "attention/" + std::string(variant->name) + "  batch=" +
              std::to_string(shape.batch) + " heads=" + std::to_string(shape.heads) +
              " seq_q=" + std::to_string(shape.seq_q) + " seq_kv=" +
              std::to_string(shape.seq_kv) + " head_dim=" + std::to_string(shape.head_dim) +
              (options.causal ? " causal" : "") + "  workspace=" +
              std::to_string(workspace_bytes) + " B";
  job.flops = 4.0 * static_cast<double>(heads) * static_cast<double>(shape.seq_q) *
              static_cast<double>(shape.seq_kv) * static_cast<double>(shape.head_dim) *
              (options.causal ? 0.5 : 1.0);
  const int threads = common.threads;
  job.call = [variant, data, shape, options, threads] {
    attention(*variant, shape, data->q, data->k, data->v, data->o, options, threads,
              data->workspace);
  };
  job.verify = [data, shape, options] {
    return verify_attention(shape, data->q, data->k, data->v, data->o, options);
  };
  return job;
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError{"run: missing family (try: locality run matmul packed)"};
  Common common;
  std::shared_ptr<void> keep;
  Job job;
  if (args[0] == "matmul") {
    job = matmul_job(args, common, keep);
  } else if (args[0] == "attention") {
    job = attention_job(args, common, keep);
  } else {
    throw UsageError{"run: unknown family '" + args[0] + "' (known: matmul, attention)"};
  }

  std::vector<double> seconds;
  for (std::int64_t r = 0; r < common.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    job.call();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("%s  threads=%d  runs=%lld\n", job.label.c_str(), common.threads,
              static_cast<long long>(common.repeat));
  std::printf("time: median %.6f s, best %.6f s\n", median, seconds.front());
  std::printf("rate: %.2f GFLOP/s (median), %.2f GFLOP/s (best)\n", job.flops / median * 1e-9,
              job.flops / seconds.front() * 1e-9);
  if (!common.verify) {
    std::printf("verify: skipped (--no-verify)\n");
    return 0;
  }
  const VerifyResult check = job.verify();
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
    if (args[0] == "run") return run({args.begin() + 1, args.end()});
    throw UsageError{"unknown command '" + args[0] + "' (known: list, run)"};
  } catch (const UsageError& e) {
    std::fprintf(stderr, "locality: %s\n", e.message.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "locality: out of memory\n");
    return 2;
  }
}

#include "run_request.hpp"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "cli_args.hpp"
#include "locality/gpu.hpp"

namespace locality::cli {
namespace {

// A CLI11 check from one of the tools' own parsers (cli_args.hpp): the text
// passes when `parse` accepts it, and is refused with the parser's words.
template <typename Parse>
CLI::Validator checked_by(Parse parse, std::string description) {
  return CLI::Validator(
      [parse](std::string& text) {
        try {
          parse(text);
          return std::string();
        } catch (const UsageError& e) {
          return e.message;
        }
      },
      std::move(description));
}

// A whole number in [lo, hi].
CLI::Validator whole(std::int64_t lo, std::int64_t hi) {
  return checked_by([lo, hi](const std::string& text) { parse_int(text, lo, hi, "the value"); },
                    "INT in " + std::to_string(lo) + ".." + std::to_string(hi));
}

// A finite decimal number.
CLI::Validator finite() {
  return checked_by([](const std::string& text) { parse_float(text, "the value"); }, "NUMBER");
}

// Every flag may be given once: a second --causal is refused like a second --size.
CLI::Option* once(CLI::Option* option) {
  return option->multi_option_policy(CLI::MultiOptionPolicy::Throw);
}

// The options both families share.
struct Common {
  int threads = 1;
  std::int64_t repeat = 1;
  bool no_verify = false;
  bool verbose = false;
  std::string device = "cpu";
};

void add_common(CLI::App& family, Common& c, std::vector<std::string> devices) {
  once(family.add_option("--threads", c.threads, "OpenMP threads")->check(whole(1, kMaxThreads)));
  once(family.add_option("--repeat", c.repeat, "calls to time (0: build the inputs only)")
           ->check(whole(0, 1'000'000)));
  once(family.add_flag("--no-verify", c.no_verify, "skip the check against Eigen"));
  once(family.add_flag("--verbose", c.verbose,
                       "also print the caches read and the blocks cut for them"));
  once(family.add_option("--device", c.device, "where the ladder runs")
           ->check(CLI::IsMember(std::move(devices))));
}

// Fills what both families share into the request.
void apply_common(const Common& c, RunRequest& req) {
  req.threads = c.threads;
  req.repeat = c.repeat;
  req.verify = !c.no_verify;
  req.verbose = c.verbose;
  req.gpu = c.device == "gpu";
}

struct MatmulArgs {
  std::string variant;
  std::int64_t size = 0, m = 512, n = 512, k = 512;
  Common common;
};

struct AttentionArgs {
  std::string variant;
  std::int64_t batch = 1, heads = 1, seq = 0, seq_q = 1024, seq_kv = 1024, head_dim = 64;
  bool causal = false;
  double scale = 0.0;
  Common common;
};

void finish_matmul(MatmulArgs& a, CLI::App& app, RunRequest& req) {
  apply_common(a.common, req);
  if (app.count("--size")) a.m = a.n = a.k = a.size;
  req.m = a.m;
  req.n = a.n;
  req.k = a.k;
  // A build without CUDA has no GPU ladder, and says so rather than "unknown variant".
  if (req.gpu && gpu::matmul_variants().empty()) {
    throw UsageError{"run matmul --device gpu: " + gpu::query_device().reason};
  }
  if (req.gpu) {
    req.gpu_matmul = gpu::find_matmul_variant(a.variant);
  } else {
    req.matmul = cpu::find_matmul_variant(a.variant);
  }
  if (!req.matmul && !req.gpu_matmul) {
    throw UsageError{"run matmul: unknown " + std::string(req.gpu ? "GPU " : "") + "variant '" +
                     a.variant + "' (see: locality list)"};
  }
  if (req.gpu && !gpu::fits_32bit_indexing(req.m, req.n, req.k)) {
    throw UsageError{"run matmul --device gpu: a matrix has more than 2^31 - 1 elements"};
  }
  req.bytes = matmul_bytes(req.m, req.n, req.k, req.verify);
}

void finish_bf16_matmul(MatmulArgs& a, CLI::App& app, RunRequest& req) {
  apply_common(a.common, req);
  if (app.count("--size")) a.m = a.n = a.k = a.size;
  req.m = a.m;
  req.n = a.n;
  req.k = a.k;
  if (gpu::bf16_matmul_variants().empty()) {
    throw UsageError{"run matmul_bf16: " + gpu::query_device().reason};
  }
  req.gpu_bf16 = gpu::find_bf16_matmul_variant(a.variant);
  if (!req.gpu_bf16) {
    throw UsageError{"run matmul_bf16: unknown variant '" + a.variant + "' (see: locality list)"};
  }
  if (!gpu::fits_32bit_indexing(req.m, req.n, req.k)) {
    throw UsageError{"run matmul_bf16: a matrix has more than 2^31 - 1 elements"};
  }
  if (req.k % req.gpu_bf16->multiple != 0 || req.n % req.gpu_bf16->multiple != 0) {
    throw UsageError{"run matmul_bf16: " + a.variant + " needs k and n multiples of " +
                     std::to_string(req.gpu_bf16->multiple)};
  }
  req.bytes = matmul_bytes(req.m, req.n, req.k, req.verify);
}

// The shape, options and memory of an attention run, once its rung is found.
void finish_attention_shape(AttentionArgs& a, CLI::App& app, RunRequest& req) {
  if (req.gpu && app.count("--scale")) {
    throw UsageError{std::string("run ") + app.get_name() +
                     " --device gpu: --scale is not offered there (the GPU runs use "
                     "1/sqrt(head_dim))"};
  }
  if (app.count("--seq")) a.seq_q = a.seq_kv = a.seq;
  AttentionShape& shape = req.shape;
  shape = {a.batch, a.heads, a.seq_q, a.seq_kv, a.head_dim};
  req.options.causal = a.causal;
  if (app.count("--scale")) req.options.scale = static_cast<float>(a.scale);
  const char* what = "the buffers of this attention problem";
  const auto u = [](std::int64_t x) { return static_cast<std::uint64_t>(x); };
  const std::uint64_t heads = checked_mul(u(shape.batch), u(shape.heads), what);
  const std::uint64_t q_bytes =
      checked_mul(checked_mul(heads, u(shape.seq_q), what), u(shape.head_dim) * 4, what);
  const std::uint64_t kv_bytes =
      checked_mul(checked_mul(heads, u(shape.seq_kv), what), u(shape.head_dim) * 4, what);
  try {
    // On the GPU the workspace is device memory: the host holds only the tensors.
    req.workspace_bytes =
        req.gpu_attention ? checked_mul(req.gpu_attention->workspace_floats(shape), 4, what)
        : req.attention   ? attention_workspace_bytes(*req.attention, shape, req.threads)
                          : 0;
  } catch (const ShapeError& e) {
    throw UsageError{std::string("run ") + app.get_name() + ": " + e.what()};
  }
  // Q and O, K and V, the workspace, and the verifier's double copies of one
  // head's K, V, |K| and |V|.
  const std::uint64_t reference = req.verify ? checked_mul(kv_bytes / heads, 8, what) : 0;
  // The bf16 harness keeps rounded copies of Q, K and V beside them.
  const bool bf16 = req.gpu_bf16_attention != nullptr;
  const std::uint64_t q_tensors = bf16 ? 3 : 2, kv_tensors = bf16 ? 4 : 2;
  req.bytes = checked_add(checked_add(checked_mul(q_bytes, q_tensors, what),
                                      checked_mul(kv_bytes, kv_tensors, what), what),
                          checked_add(req.gpu ? 0 : req.workspace_bytes, reference, what), what);
}

void finish_attention(AttentionArgs& a, CLI::App& app, RunRequest& req) {
  apply_common(a.common, req);
  if (req.gpu && gpu::attention_variants().empty()) {
    throw UsageError{"run attention --device gpu: " + gpu::query_device().reason};
  }
  if (req.gpu) {
    req.gpu_attention = gpu::find_attention_variant(a.variant);
  } else {
    req.attention = cpu::find_attention_variant(a.variant);
  }
  if (!req.attention && !req.gpu_attention) {
    throw UsageError{"run attention: unknown " + std::string(req.gpu ? "GPU " : "") + "variant '" +
                     a.variant + "' (see: locality list)"};
  }
  finish_attention_shape(a, app, req);
}

void finish_bf16_attention(AttentionArgs& a, CLI::App& app, RunRequest& req) {
  apply_common(a.common, req);
  if (gpu::bf16_attention_variants().empty()) {
    throw UsageError{"run attention_bf16: " + gpu::query_device().reason};
  }
  req.gpu_bf16_attention = gpu::find_bf16_attention_variant(a.variant);
  if (!req.gpu_bf16_attention) {
    throw UsageError{"run attention_bf16: unknown variant '" + a.variant +
                     "' (see: locality list)"};
  }
  if (a.head_dim != 64 && a.head_dim != 128) {
    throw UsageError{"run attention_bf16: " + a.variant + " takes --head-dim 64 or 128"};
  }
  finish_attention_shape(a, app, req);
}

}  // namespace

Command parse_command(const std::vector<std::string>& args) {
  CLI::App app{
      "Cache-aware kernels, rung by rung: list the ladders, or run one rung once "
      "(or a few times), time it and check it against Eigen.",
      "locality"};
  app.set_help_flag("-h,--help", "this help, at every level");
  CLI::App* list = app.add_subcommand("list", "every rung of every ladder, with its lesson");
  CLI::App* caches = app.add_subcommand(
      "caches", "the caches this machine reports, and the blocks the CPU rungs cut for them");
  bool caches_json = false;
  once(caches->add_flag("--json", caches_json, "as JSON (what bench/cachegrind.py reads)"));
  CLI::App* run = app.add_subcommand(
      "run", "run one rung on one shape: exit 0 ok, 1 wrong result, 2 bad input");

  // The sizes and shared options of a matmul family.
  const auto matmul_family = [&](const char* name, const char* what, const char* ladder,
                                 MatmulArgs& family_args, std::vector<std::string> devices) {
    CLI::App* family = run->add_subcommand(name, what);
    family->add_option("variant", family_args.variant, ladder)->required();
    CLI::Option* size = once(family->add_option("--size", family_args.size, "m = n = k")
                                 ->check(whole(1, kMaxDimension)));
    for (auto [flag, value] :
         {std::pair{"--m", &family_args.m}, {"--n", &family_args.n}, {"--k", &family_args.k}}) {
      once(family->add_option(flag, *value, "this dimension alone")->check(whole(1, kMaxDimension)))
          ->excludes(size);
    }
    add_common(*family, family_args.common, std::move(devices));
    return family;
  };
  MatmulArgs mm;
  CLI::App* matmul = matmul_family("matmul", "C = A B, float32, row-major",
                                   "a rung of the matmul ladder", mm, {"cpu", "gpu"});
  MatmulArgs bf;
  bf.common.device = "gpu";  // the tensor-core ladder has no CPU side
  CLI::App* bf16 =
      matmul_family("matmul_bf16", "C = A B, A and B in bf16, C in float32, row-major (GPU)",
                    "a rung of the tensor-core ladder", bf, {"gpu"});

  // The shape and shared options of an attention family.
  const auto attention_family = [&](const char* name, const char* what, const char* ladder,
                                    AttentionArgs& a, std::vector<std::string> devices) {
    CLI::App* family = run->add_subcommand(name, what);
    family->add_option("variant", a.variant, ladder)->required();
    once(family->add_option("--batch", a.batch)->check(whole(1, kMaxDimension)));
    once(family->add_option("--heads", a.heads)->check(whole(1, kMaxDimension)));
    CLI::Option* seq =
        once(family->add_option("--seq", a.seq, "seq_q = seq_kv")->check(whole(1, kMaxDimension)));
    once(family->add_option("--seq-q", a.seq_q)->check(whole(1, kMaxDimension)))->excludes(seq);
    once(family->add_option("--seq-kv", a.seq_kv)->check(whole(1, kMaxDimension)))->excludes(seq);
    once(family->add_option("--head-dim", a.head_dim)->check(whole(1, kMaxHeadDim)));
    once(family->add_flag("--causal", a.causal, "query i sees keys 0..i (top-left)"));
    once(family->add_option("--scale", a.scale, "default 1/sqrt(head_dim)")->check(finite()));
    add_common(*family, a.common, std::move(devices));
    return family;
  };
  AttentionArgs at;
  CLI::App* attention = attention_family(
      "attention", "O = softmax(Q K^T * scale) V over [batch, heads, seq, head_dim], float32",
      "a rung of the attention ladder", at, {"cpu", "gpu"});
  AttentionArgs ab;
  ab.common.device = "gpu";  // the tensor-core ladder has no CPU side
  CLI::App* attention_bf16 = attention_family(
      "attention_bf16", "the same with Q, K, V and O in bf16, the softmax in float (GPU)",
      "a rung of the bf16 attention ladder", ab, {"gpu"});

  // A mistyped command or family is named as such (CLI11 would only say that
  // an argument was not expected).
  const auto unknown = [&](std::size_t i, std::initializer_list<const char*> known,
                           const char* what) {
    if (args.size() <= i || args[i].empty() || args[i][0] == '-') return;
    for (const char* k : known) {
      if (args[i] == k) return;
    }
    std::string names;
    for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
    throw UsageError{std::string(i ? "run: " : "") + "unknown " + what + " '" + args[i] +
                     "' (known: " + names + ")"};
  };
  unknown(0, {"list", "run", "caches"}, "command");
  if (!args.empty() && args[0] == "run") {
    unknown(1, {"matmul", "matmul_bf16", "attention", "attention_bf16"}, "family");
  }

  Command command;
  try {
    std::vector<const char*> argv{"locality"};
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    command.help = app.help();
    return command;
  } catch (const CLI::ParseError& e) {
    throw UsageError{(run->parsed() ? "run: " : "") + std::string(e.what())};
  }
  if (list->parsed()) {
    command.list = true;
  } else if (caches->parsed()) {
    command.caches = caches_json ? Command::Caches::json : Command::Caches::text;
  } else if (matmul->parsed()) {
    command.run.emplace();
    finish_matmul(mm, *matmul, *command.run);
  } else if (bf16->parsed()) {
    command.run.emplace();
    finish_bf16_matmul(bf, *bf16, *command.run);
  } else if (attention->parsed()) {
    command.run.emplace();
    finish_attention(at, *attention, *command.run);
  } else if (attention_bf16->parsed()) {
    command.run.emplace();
    finish_bf16_attention(ab, *attention_bf16, *command.run);
  } else if (run->parsed()) {
    throw UsageError{"run: missing family (try: locality run matmul packed)"};
  } else {
    command.help = app.help();
    command.usage_error = true;
  }
  return command;
}

RunRequest parse_run(const std::vector<std::string>& args) {
  std::vector<std::string> all{"run"};
  all.insert(all.end(), args.begin(), args.end());
  Command command = parse_command(all);
  if (!command.run) throw UsageError{"run: --help asks for the usage, not a run"};
  return *command.run;
}

}  // namespace locality::cli

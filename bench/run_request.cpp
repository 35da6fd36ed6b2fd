#include "run_request.hpp"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli_args.hpp"
#include "locality/gpu.hpp"

namespace locality::cli {
namespace {

std::string value_of(const std::string& flag, const std::vector<std::string>& args,
                     std::size_t& i) {
  if (i + 1 >= args.size()) throw UsageError{"run: " + flag + " needs a value"};
  return args[++i];
}

// Each setting is given at most once: a flag repeated, or two flags for the
// same setting (--seq after --seq-q, --m after --size), is refused, naming both,
// rather than the last one winning silently.
class Settings {
 public:
  void claim(const std::string& flag, std::initializer_list<std::string_view> settings) {
    for (std::string_view setting : settings) {
      for (const auto& [owned, by] : owners_) {
        if (owned != setting) continue;
        throw UsageError{by == flag ? "run: " + flag + " is given twice"
                                    : "run: " + flag + " conflicts with " + by + " (both set " +
                                          std::string(setting) + ")"};
      }
    }
    for (std::string_view setting : settings) owners_.emplace_back(setting, flag);
  }

 private:
  std::vector<std::pair<std::string, std::string>> owners_;
};

// The flags both families share; returns false for a flag it does not know.
bool parse_common(const std::string& flag, const std::vector<std::string>& args, std::size_t& i,
                  RunRequest& req, Settings& seen) {
  if (flag == "--no-verify" || flag == "--threads" || flag == "--repeat" || flag == "--device") {
    seen.claim(flag, {flag});
  }
  if (flag == "--no-verify") {
    req.verify = false;
  } else if (flag == "--threads") {
    req.threads = static_cast<int>(parse_int(value_of(flag, args, i), 1, kMaxThreads, "--threads"));
  } else if (flag == "--repeat") {
    req.repeat = parse_int(value_of(flag, args, i), 0, 1'000'000, "--repeat");
  } else if (flag == "--device") {
    const std::string device = value_of(flag, args, i);
    const bool known = device == "cpu" || (device == "gpu" && args[0] == "matmul");
    if (!known) {
      throw UsageError{"run: device '" + device + "' has no " + args[0] + " ladder (known: cpu" +
                       (args[0] == "matmul" ? ", gpu)" : ")")};
    }
    req.gpu = device == "gpu";
  } else {
    return false;
  }
  return true;
}

void parse_matmul(const std::vector<std::string>& args, RunRequest& req) {
  if (args.size() < 2) throw UsageError{"run matmul: missing variant (see: locality list)"};
  Settings seen;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (parse_common(flag, args, i, req, seen)) continue;
    if (flag == "--size") seen.claim(flag, {"m", "n", "k"});
    if (flag == "--m" || flag == "--n" || flag == "--k") seen.claim(flag, {flag.substr(2)});
    if (flag == "--size") {
      req.m = req.n = req.k = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--size");
    } else if (flag == "--m") {
      req.m = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--m");
    } else if (flag == "--n") {
      req.n = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--n");
    } else if (flag == "--k") {
      req.k = parse_int(value_of(flag, args, i), 1, kMaxDimension, "--k");
    } else {
      throw UsageError{"run: unknown flag '" + flag + "'"};
    }
  }
  // The variant is looked up in the ladder of the device asked for; a build
  // without CUDA has no GPU ladder, and says so rather than "unknown variant".
  if (req.gpu && gpu::matmul_variants().empty()) {
    throw UsageError{"run matmul --device gpu: " + gpu::query_device().reason};
  }
  if (req.gpu) {
    req.gpu_matmul = gpu::find_matmul_variant(args[1]);
  } else {
    req.matmul = cpu::find_matmul_variant(args[1]);
  }
  if (!req.matmul && !req.gpu_matmul) {
    throw UsageError{"run matmul: unknown " + std::string(req.gpu ? "GPU " : "") + "variant '" +
                     args[1] + "' (see: locality list)"};
  }
  if (req.gpu && !gpu::fits_32bit_indexing(req.m, req.n, req.k)) {
    throw UsageError{"run matmul --device gpu: a matrix has more than 2^31 - 1 elements"};
  }
  req.bytes = matmul_bytes(req.m, req.n, req.k, req.verify);
}

void parse_attention(const std::vector<std::string>& args, RunRequest& req) {
  if (args.size() < 2) throw UsageError{"run attention: missing variant (see: locality list)"};
  req.attention = cpu::find_attention_variant(args[1]);
  if (!req.attention) {
    throw UsageError{"run attention: unknown variant '" + args[1] + "' (see: locality list)"};
  }
  AttentionShape& shape = req.shape;
  Settings seen;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (parse_common(flag, args, i, req, seen)) continue;
    if (flag == "--seq") {
      seen.claim(flag, {"seq_q", "seq_kv"});
    } else if (flag == "--seq-q" || flag == "--seq-kv") {
      seen.claim(flag, {flag == "--seq-q" ? "seq_q" : "seq_kv"});
    } else if (flag == "--causal" || flag == "--batch" || flag == "--heads" ||
               flag == "--head-dim" || flag == "--scale") {
      seen.claim(flag, {flag});
    }
    if (flag == "--causal") {
      req.options.causal = true;
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
      req.options.scale = parse_float(value_of(flag, args, i), "--scale");
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
  try {
    req.workspace_bytes = attention_workspace_bytes(*req.attention, shape, req.threads);
  } catch (const ShapeError& e) {
    throw UsageError{std::string("run attention: ") + e.what()};
  }
  // Q and O, K and V, the workspace, and the verifier's double copies of one
  // head's K, V, |K| and |V|.
  const std::uint64_t reference = req.verify ? checked_mul(kv_bytes / heads, 8, what) : 0;
  req.bytes =
      checked_add(checked_add(checked_mul(q_bytes, 2, what), checked_mul(kv_bytes, 2, what), what),
                  checked_add(req.workspace_bytes, reference, what), what);
}

}  // namespace

RunRequest parse_run(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError{"run: missing family (try: locality run matmul packed)"};
  RunRequest req;
  if (args[0] == "matmul") {
    parse_matmul(args, req);
  } else if (args[0] == "attention") {
    parse_attention(args, req);
  } else {
    throw UsageError{"run: unknown family '" + args[0] + "' (known: matmul, attention)"};
  }
  return req;
}

}  // namespace locality::cli

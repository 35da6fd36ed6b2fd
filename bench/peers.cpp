#include "peers.hpp"

#include <omp.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Core>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "locality/verify.hpp"

#if LOCALITY_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif
#if LOCALITY_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace locality::bench {
namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<Eigen::Dynamic>;

// Eigen's own GEMM, parallelized by Eigen with OpenMP.
void eigen_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  Eigen::setNbThreads(threads);
  Eigen::Map<const RowMajorF, Eigen::Unaligned, Stride> ea(a.data(), a.rows(), a.cols(),
                                                           Stride(a.ld()));
  Eigen::Map<const RowMajorF, Eigen::Unaligned, Stride> eb(b.data(), b.rows(), b.cols(),
                                                           Stride(b.ld()));
  Eigen::Map<RowMajorF, Eigen::Unaligned, Stride> ec(c.data(), c.rows(), c.cols(), Stride(c.ld()));
  ec.noalias() = ea * eb;
}

#if LOCALITY_HAVE_ONEDNN
// oneDNN's sgemm (row-major by its definition), on its OpenMP runtime.
void onednn_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  omp_set_num_threads(threads);
  const dnnl_status_t status = dnnl_sgemm('N', 'N', c.rows(), c.cols(), a.cols(), 1.0f, a.data(),
                                          a.ld(), b.data(), b.ld(), 0.0f, c.data(), c.ld());
  if (status != dnnl_success) throw std::runtime_error("dnnl_sgemm failed");
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}
#endif

#if LOCALITY_HAVE_OPENBLAS
// OpenBLAS's cblas_sgemm on its own thread pool.
void openblas_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(c.rows()),
              static_cast<blasint>(c.cols()), static_cast<blasint>(a.cols()), 1.0f, a.data(),
              static_cast<blasint>(a.ld()), b.data(), static_cast<blasint>(b.ld()), 0.0f, c.data(),
              static_cast<blasint>(c.ld()));
}
#endif

// Unfused attention around a peer's two products: ScoresFn computes one
// head's S = Q K^T (sq x skv), OutputFn its O = P V (sq x d).
template <void (*ScoresFn)(const float*, const float*, float*, std::ptrdiff_t, std::ptrdiff_t,
                           std::ptrdiff_t, int),
          void (*OutputFn)(const float*, const float*, float*, std::ptrdiff_t, std::ptrdiff_t,
                           std::ptrdiff_t, int)>
void unfused_attention(const AttentionArgs& args, std::span<float> workspace, int threads) {
  const AttentionShape& s = args.shape;
  const std::ptrdiff_t sq = s.seq_q, skv = s.seq_kv, d = s.head_dim;
  float* scores = workspace.data();
  for (std::ptrdiff_t head = 0; head < s.batch * s.heads; ++head) {
    const float* q = args.q + head * sq * d;
    const float* k = args.k + head * skv * d;
    const float* v = args.v + head * skv * d;
    float* o = args.o + head * sq * d;
    ScoresFn(q, k, scores, sq, skv, d, threads);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::ptrdiff_t i = 0; i < sq; ++i) {
      cpu::softmax_row(scores + i * skv, visible_keys(i, skv, args.causal), skv, args.scale);
    }
    OutputFn(scores, v, o, sq, skv, d, threads);
  }
}

std::size_t unfused_workspace(const AttentionShape& s, int /*threads*/) {
  return static_cast<std::size_t>(s.seq_q * s.seq_kv);
}

template <typename T>
using RowMap = Eigen::Map<T, Eigen::Unaligned>;

void eigen_scores(const float* q, const float* k, float* s, std::ptrdiff_t sq, std::ptrdiff_t skv,
                  std::ptrdiff_t d, int threads) {
  Eigen::setNbThreads(threads);
  RowMap<RowMajorF>(s, sq, skv).noalias() =
      RowMap<const RowMajorF>(q, sq, d) * RowMap<const RowMajorF>(k, skv, d).transpose();
}

void eigen_output(const float* p, const float* v, float* o, std::ptrdiff_t sq, std::ptrdiff_t skv,
                  std::ptrdiff_t d, int threads) {
  Eigen::setNbThreads(threads);
  RowMap<RowMajorF>(o, sq, d).noalias() =
      RowMap<const RowMajorF>(p, sq, skv) * RowMap<const RowMajorF>(v, skv, d);
}

#if LOCALITY_HAVE_ONEDNN
void onednn_scores(const float* q, const float* k, float* s, std::ptrdiff_t sq, std::ptrdiff_t skv,
                   std::ptrdiff_t d, int threads) {
  omp_set_num_threads(threads);
  if (dnnl_sgemm('N', 'T', sq, skv, d, 1.0f, q, d, k, d, 0.0f, s, skv) != dnnl_success) {
    throw std::runtime_error("dnnl_sgemm failed");
  }
}

void onednn_output(const float* p, const float* v, float* o, std::ptrdiff_t sq, std::ptrdiff_t skv,
                   std::ptrdiff_t d, int threads) {
  omp_set_num_threads(threads);
  if (dnnl_sgemm('N', 'N', sq, d, skv, 1.0f, p, skv, v, d, 0.0f, o, d) != dnnl_success) {
    throw std::runtime_error("dnnl_sgemm failed");
  }
}
#endif

constexpr AttentionPeer kAttentionPeers[] = {
    {"eigen", unfused_attention<eigen_scores, eigen_output>, unfused_workspace},
#if LOCALITY_HAVE_ONEDNN
    {"onednn", unfused_attention<onednn_scores, onednn_output>, unfused_workspace},
#endif
};

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

#if LOCALITY_HAVE_OPENBLAS
// Why Debian's OpenBLAS would run below its best here: kernels for an older
// core than the CPU's (its 0.3.21 does not know every CPU, and a machine may
// set OPENBLAS_CORETYPE); "" if none. OpenBLAS names its cores "Prescott",
// "Haswell", ...; the comparison ignores case.
std::string openblas_misconfigured() {
  std::string core = openblas_get_corename();
  for (char& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* old : {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                          "katmai", "coppermine", "northwood", "banias", "barcelona", "opteron",
                          "bobcat", "unknown"}) {
    if (core == old && __builtin_cpu_supports("avx2")) {
      return "OpenBLAS runs its " + std::string(openblas_get_corename()) +
             " kernels on a CPU with AVX2 (OPENBLAS_CORETYPE=" +
             env_or("OPENBLAS_CORETYPE", "unset") + ")";
    }
  }
  return "";
}
#endif

constexpr MatmulPeer kPeers[] = {
    {"eigen", eigen_matmul},
#if LOCALITY_HAVE_ONEDNN
    {"onednn", onednn_matmul},
#endif
#if LOCALITY_HAVE_OPENBLAS
    {"openblas", openblas_matmul, openblas_misconfigured},
#endif
#if LOCALITY_HAVE_SCIPY_OPENBLAS
    {"scipy_openblas", scipy_openblas_matmul},
#endif
#if LOCALITY_HAVE_MKL
    {"mkl", mkl_matmul},
#endif
#if LOCALITY_HAVE_BLIS
    {"blis", blis_matmul, blis_misconfigured},
#endif
};

// Peers left out by the screen, and why.
std::vector<std::pair<std::string, std::string>>& excluded() {
  static std::vector<std::pair<std::string, std::string>> out;
  return out;
}

}  // namespace

std::string screen_peer(const MatmulPeer& peer, unsigned timeout_s) {
  const pid_t child = fork();
  if (child < 0) return "";  // cannot screen: the benchmark's own check still runs
  if (child == 0) {
    alarm(timeout_s);
    int status = 0;
    const std::ptrdiff_t shapes[][3] = {{1, 1, 1}, {37, 53, 29}, {130, 67, 257}, {300, 301, 64}};
    std::uint64_t seed = 7;
    for (int threads : {1, 2}) {
      for (const auto& s : shapes) {
        Matrix<float> a(s[0], s[2]), b(s[2], s[1]), c(s[0], s[1]);
        fill_random(a.view(), seed++);
        fill_random(b.view(), seed++);
        poison(c.view());
        peer.run(a.cview(), b.cview(), c.view(), threads);
        if (!verify_matmul(a.cview(), b.cview(), c.view()).ok) status = 1;
      }
    }
    std::fflush(nullptr);
    _exit(status);
  }
  int status = 0;
  pid_t waited = 0;
  do {
    waited = waitpid(child, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited < 0) return "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return "a wrong answer against Eigen on the screening shapes";
  if (WIFSIGNALED(status)) {
    return WTERMSIG(status) == SIGALRM
               ? "no answer within " + std::to_string(timeout_s) + " s"
               : std::string("crashed: ") + strsignal(WTERMSIG(status));
  }
  return "stopped";
}

std::span<const MatmulPeer> matmul_peers() {
  static const std::vector<MatmulPeer> screened = [] {
    std::vector<MatmulPeer> out;
    for (const MatmulPeer& p : kPeers) {
      std::string why = p.misconfigured ? p.misconfigured() : "";
      if (why.empty()) why = screen_peer(p);
      if (why.empty()) {
        out.push_back(p);
      } else {
        std::fprintf(stderr, "locality_bench: peer %.*s left out: %s\n",
                     static_cast<int>(p.name.size()), p.name.data(), why.c_str());
        excluded().emplace_back(std::string(p.name), why);
      }
    }
    return out;
  }();
  return screened;
}

std::span<const AttentionPeer> attention_peers() { return kAttentionPeers; }

std::vector<std::pair<std::string, std::string>> peer_context() {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("eigen_version", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                        std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                        std::to_string(EIGEN_MINOR_VERSION));
  out.emplace_back("eigen_simd", Eigen::SimdInstructionSetsInUse());
#if LOCALITY_HAVE_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  out.emplace_back("onednn_version", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                         "." + std::to_string(v->patch));
  out.emplace_back("onednn_isa", isa_name(dnnl_get_effective_cpu_isa()));
  out.emplace_back("onednn_max_cpu_isa_env", env_or("ONEDNN_MAX_CPU_ISA", "unset"));
#else
  out.emplace_back("onednn", "not found at configure time (" LOCALITY_ONEDNN_MISSING ")");
#endif
#if LOCALITY_HAVE_OPENBLAS
  out.emplace_back("openblas_corename", openblas_get_corename());
  out.emplace_back("openblas_config", openblas_get_config());
  out.emplace_back("openblas_coretype_env", env_or("OPENBLAS_CORETYPE", "unset"));
#else
  out.emplace_back("openblas", "not found at configure time (" LOCALITY_OPENBLAS_MISSING ")");
#endif
  for (auto& kv : loaded_peer_context()) out.push_back(std::move(kv));
  for (const auto& [name, why] : excluded()) out.emplace_back(name + "_left_out", why);
  return out;
}

}  // namespace locality::bench

#include "peers.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <cstdlib>
#include <stdexcept>

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

constexpr MatmulPeer kPeers[] = {
    {"eigen", eigen_matmul},
#if LOCALITY_HAVE_ONEDNN
    {"onednn", onednn_matmul},
#endif
#if LOCALITY_HAVE_OPENBLAS
    {"openblas", openblas_matmul},
#endif
};

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

}  // namespace

std::span<const MatmulPeer> matmul_peers() { return kPeers; }

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
  out.emplace_back("onednn", "not found at configure time");
#endif
#if LOCALITY_HAVE_OPENBLAS
  out.emplace_back("openblas_corename", openblas_get_corename());
  out.emplace_back("openblas_config", openblas_get_config());
  out.emplace_back("openblas_coretype_env", env_or("OPENBLAS_CORETYPE", "unset"));
#else
  out.emplace_back("openblas", "not found at configure time");
#endif
  return out;
}

}  // namespace locality::bench

// The BLAS peers that export the same names as Debian's OpenBLAS
// (cblas_sgemm, sgemm_): Intel's MKL and BLIS. Linked into one program, the
// first of them on the link line would answer every call to those names, so
// each is loaded with dlopen (RTLD_LOCAL | RTLD_DEEPBIND: its own calls stay
// inside it) and called through the addresses it gives. The current
// OpenBLAS from PyPI prefixes its names (scipy_cblas_sgemm) and is linked.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "peers.hpp"

#if LOCALITY_HAVE_SCIPY_OPENBLAS
// scipy_openblas32's cblas.h, which prefixes every name with scipy_ (by its
// path: Debian's OpenBLAS has a cblas.h too).
#include <scipy_openblas32/include/cblas.h>
#endif

namespace locality::bench {
namespace {

// A shared library opened once, for the life of the program. The sanitizers'
// runtime refuses RTLD_DEEPBIND (the debug preset leaves these peers out).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
class Loaded {
 public:
  explicit Loaded(const char* path) : handle_(dlopen(path, kFlags)) {
    if (!handle_) throw std::runtime_error(std::string("dlopen: ") + dlerror());
  }
  template <typename Fn>
  Fn get(const char* name) const {
    void* sym = dlsym(handle_, name);
    if (!sym) throw std::runtime_error(std::string("no ") + name + " in the library");
    return reinterpret_cast<Fn>(sym);
  }

 private:
  void* handle_;
};

// The CBLAS ABI's constants (cblas.h): row-major, no transpose.
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111;

#if LOCALITY_HAVE_MKL
struct Mkl {
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
  Loaded lib{LOCALITY_MKL_LIBRARY};
  Sgemm sgemm = lib.get<Sgemm>("cblas_sgemm");
  void (*set_threads)(int) = lib.get<void (*)(int)>("MKL_Set_Num_Threads");
  int (*branch)() = lib.get<int (*)()>("MKL_CBWR_Get_Auto_Branch");
  void (*version)(char*, int) = lib.get<void (*)(char*, int)>("MKL_Get_Version_String");
  int (*verbose)(int) = lib.get<int (*)(int)>("MKL_Verbose");
  Mkl() {
    // MKL's OpenMP layer for GNU's runtime, the one this program's threads
    // run on (its default, Intel's libiomp5, would start a second pool).
    if (lib.get<int (*)(int)>("MKL_Set_Threading_Layer")(/*MKL_THREADING_GNU*/ 3) < 0) {
      throw std::runtime_error("MKL refused the GNU threading layer");
    }
  }
};
const Mkl& mkl() {
  static const Mkl m;
  return m;
}
#endif

#if LOCALITY_HAVE_MKL
// The line MKL's verbose mode prints for a call: which processors' code path
// it dispatched to. It prints on stdout, so stdout goes to a temporary file
// for one 1 x 1 x 1 call.
std::string mkl_dispatch_line() {
  const Mkl& m = mkl();
  std::fflush(stdout);
  std::FILE* capture = std::tmpfile();
  if (!capture) return "unknown (no temporary file)";
  const int saved = dup(STDOUT_FILENO);
  dup2(fileno(capture), STDOUT_FILENO);
  m.verbose(1);
  float a = 1, b = 1, c = 0;
  m.sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
  m.verbose(0);
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  std::rewind(capture);
  char line[512] = {};
  const bool got = std::fgets(line, sizeof line, capture) != nullptr;
  std::fclose(capture);
  std::string out = got ? line : "unknown (MKL printed nothing)";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}
#endif

#if LOCALITY_HAVE_BLIS
struct Blis {
  // BLIS's typed API, not its CBLAS (which would clash by name): dim_t and
  // inc_t are 64-bit in Debian's build, checked below.
  using Sgemm = void (*)(int, int, std::int64_t, std::int64_t, std::int64_t, const float*,
                         const float*, std::int64_t, std::int64_t, const float*, std::int64_t,
                         std::int64_t, const float*, float*, std::int64_t, std::int64_t);
  Loaded lib{LOCALITY_BLIS_LIBRARY};
  Sgemm sgemm = lib.get<Sgemm>("bli_sgemm");
  void (*set_threads)(std::int64_t) = lib.get<void (*)(std::int64_t)>("bli_thread_set_num_threads");
  const char* (*arch_string)(int) = lib.get<const char* (*)(int)>("bli_arch_string");
  int (*arch)() = lib.get<int (*)()>("bli_arch_query_id");
  const char* (*version)() = lib.get<const char* (*)()>("bli_info_get_version_str");
  Blis() {
    if (lib.get<std::int64_t (*)()>("bli_info_get_int_type_size")() != 64) {
      throw std::runtime_error("this BLIS was not built with 64-bit integers");
    }
  }
};
const Blis& blis() {
  static const Blis b;
  return b;
}
#endif

}  // namespace

#if LOCALITY_HAVE_MKL
void mkl_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  const Mkl& m = mkl();
  m.set_threads(threads);
  m.sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, static_cast<int>(c.rows()),
          static_cast<int>(c.cols()), static_cast<int>(a.cols()), 1.0f, a.data(),
          static_cast<int>(a.ld()), b.data(), static_cast<int>(b.ld()), 0.0f, c.data(),
          static_cast<int>(c.ld()));
}
#endif

#if LOCALITY_HAVE_BLIS
void blis_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  const Blis& l = blis();
  l.set_threads(threads);
  const float one = 1.0f, zero = 0.0f;
  // Row-major: a row stride of ld, a column stride of 1.
  l.sgemm(0, 0, c.rows(), c.cols(), a.cols(), &one, a.data(), a.ld(), 1, b.data(), b.ld(), 1,
          &zero, c.data(), c.ld(), 1);
}
#endif

#if LOCALITY_HAVE_SCIPY_OPENBLAS
void scipy_openblas_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  scipy_openblas_set_num_threads(threads);
  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(c.rows()),
                    static_cast<blasint>(c.cols()), static_cast<blasint>(a.cols()), 1.0f,
                    a.data(), static_cast<blasint>(a.ld()), b.data(),
                    static_cast<blasint>(b.ld()), 0.0f, c.data(), static_cast<blasint>(c.ld()));
}
#endif

std::vector<std::pair<std::string, std::string>> loaded_peer_context() {
  std::vector<std::pair<std::string, std::string>> out;
  [[maybe_unused]] const auto guarded = [&](const char* key, auto describe) {
    try {
      out.emplace_back(key, describe());
    } catch (const std::exception& e) {
      out.emplace_back(key, std::string("cannot load: ") + e.what());
    }
  };
#if LOCALITY_HAVE_MKL
  guarded("mkl", [] {
    char version[256] = {};
    mkl().version(version, sizeof version - 1);
    const int branch = mkl().branch();
    const char* path = branch == 15   ? "avx10"
                       : branch == 14 ? "avx512_e1"
                       : branch == 12 ? "avx512"
                       : branch == 10 ? "avx2"
                       : branch == 8  ? "sse4_2"
                       : branch == 4  ? "sse2"
                       : branch == 3  ? "compatible"
                       : branch == 2  ? "auto"
                                      : "other";
    return std::string(version) + "; code path " + path + " (MKL_CBWR_Get_Auto_Branch " +
           std::to_string(branch) + "); its verbose mode says: " + mkl_dispatch_line() +
           "; GNU OpenMP threading layer; " LOCALITY_MKL_LIBRARY;
  });
#else
  out.emplace_back("mkl", "not found at configure time (" LOCALITY_MKL_MISSING ")");
#endif
#if LOCALITY_HAVE_BLIS
  guarded("blis", [] {
    const char* env = std::getenv("BLIS_ARCH_TYPE");
    return std::string("BLIS ") + blis().version() + "; configuration " +
           blis().arch_string(blis().arch()) + " (" +
           (env ? std::string("BLIS_ARCH_TYPE=") + env : "detected: BLIS_ARCH_TYPE unset") +
           "); " LOCALITY_BLIS_LIBRARY;
  });
#else
  out.emplace_back("blis", "not found at configure time (" LOCALITY_BLIS_MISSING ")");
#endif
#if LOCALITY_HAVE_SCIPY_OPENBLAS
  out.emplace_back("scipy_openblas", std::string(scipy_openblas_get_config()) + "; core " +
                                         scipy_openblas_get_corename());
#else
  out.emplace_back("scipy_openblas",
                   "not found at configure time (" LOCALITY_SCIPY_OPENBLAS_MISSING ")");
#endif
  return out;
}

#if LOCALITY_HAVE_BLIS
std::string blis_misconfigured() {
  if (std::string(blis().arch_string(blis().arch())) != "generic") return "";
  return "BLIS runs its generic (unoptimised) kernels on this CPU: set BLIS_ARCH_TYPE to the "
         "number of its configuration for it";
}
#endif

}  // namespace locality::bench

// The GPU side: device discovery, the CUDA matmul ladder, and what the tests,
// benchmarks and driver need to reach it. Everything here is host code and
// compiles without CUDA; in a build without a CUDA compiler the ladder is
// empty and every call that needs a device throws GpuError saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "locality/matrix.hpp"
#include "locality/verify.hpp"

namespace locality::gpu {

struct DeviceStatus {
  bool available = false;  // at least one CUDA device can be used
  std::string reason;      // why not, one line, when !available
  std::string name;        // device 0's name, when available
};

// Never throws and never aborts: no CUDA in the build, no driver, or no
// device all come back as available == false with the reason.
DeviceStatus query_device();

// Any failed CUDA or cuBLAS call, or kernel launch: the message names the
// call, the file and line, and CUDA's own description.
struct GpuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A GPU rung computes C = A * B for row-major, contiguous device arrays
// (A m x k, B k x n, C m x n; m, n, k >= 1) on the default stream. It launches
// and returns; launch errors are checked, the kernel's own are reported by the
// next synchronizing call.
using GpuMatmulFn = void (*)(const float* a, const float* b, float* c, int m, int n, int k);

// The rungs index with 32-bit ints: every matrix of an m x n x k product must
// have fewer than 2^31 elements (sizes are at least 0).
inline bool fits_32bit_indexing(std::int64_t m, std::int64_t n, std::int64_t k) {
  constexpr std::int64_t kLimit = 0x7fffffff;
  const auto fits = [](std::int64_t x, std::int64_t y) { return y == 0 || x <= kLimit / y; };
  return fits(m, k) && fits(k, n) && fits(m, n);
}

struct GpuMatmulVariant {
  std::string_view name;    // "naive", "coalesced", ...: also the benchmark name
  int rung;                 // position on the GPU ladder, 0 = naive
  std::string_view lesson;  // one sentence: what this rung adds
  GpuMatmulFn run;
};

// The GPU ladder in rung order (empty in a build without CUDA).
std::span<const GpuMatmulVariant> matmul_variants();
const GpuMatmulVariant* find_matmul_variant(std::string_view name);

// C = A * B on the device for host views (any leading dimensions): checks the
// shapes as matmul() does, copies A and B over, runs the rung, copies C back.
// Throws ShapeError for mismatched shapes, GpuError without a usable device.
void matmul(const GpuMatmulVariant& variant, ConstView<float> a, ConstView<float> b, View<float> c);

// What the benchmark JSON records about the device and the libraries.
struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int sm_clock_mhz = 0, memory_clock_mhz = 0;
  std::int64_t l2_bytes = 0, memory_bytes = 0;
  std::string compute_capability, driver_version, runtime_version, cublas_version;
};
DeviceInfo device_info();  // throws GpuError without a usable device

// One square or rectangular problem resident on the device, for timing: random
// inputs (the same values the CPU ladder uses), C, a buffer at least the size
// of the L2 that is written before each timed call (so no call starts with
// its operands in L2), CUDA events, and a cuBLAS handle for the peer.
class MatmulBench {
 public:
  MatmulBench(int m, int n, int k);  // throws GpuError
  ~MatmulBench();
  MatmulBench(const MatmulBench&) = delete;
  MatmulBench& operator=(const MatmulBench&) = delete;

  // Milliseconds of one call, measured with events around the launch, after
  // the L2 flush. cublas: cublasSgemm in FP32 (pedantic math: no tensor cores).
  double time_ms(const GpuMatmulVariant& variant);
  double time_cublas_ms();
  // Runs the rung once more (poisoning C first) and checks the listed rows of
  // C against Eigen in double on the host.
  VerifyResult check(const GpuMatmulVariant& variant, std::span<const std::ptrdiff_t> rows);
  VerifyResult check_cublas(std::span<const std::ptrdiff_t> rows);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace locality::gpu

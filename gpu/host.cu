// Host side of the GPU ladders: device discovery, the copy-in/run/copy-out
// entry points the tests and driver use, and the timing harness the benchmarks
// use (events, L2 flush, the cuBLAS peer).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attention/common.cuh"
#include "cuda_check.cuh"
#include "locality/bf16.hpp"
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"

#define LOCALITY_CUBLAS(call)                                                                    \
  do {                                                                                           \
    const cublasStatus_t locality_status_ = (call);                                              \
    if (locality_status_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::locality::gpu::fail(#call, __FILE__, __LINE__, cublasGetStatusString(locality_status_)); \
  } while (0)

namespace locality::gpu {

DeviceStatus query_device() {
  DeviceStatus status;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    status.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return status;
  }
  if (count == 0) {
    status.reason = "no usable CUDA device: cudaGetDeviceCount found 0 devices";
    return status;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    status.reason = "no usable CUDA device: cannot read device 0's properties";
    return status;
  }
  status.available = true;
  status.name = prop.name;
  return status;
}

// Why a tensor-core rung cannot run on device 0 ("" if it can).
std::string unavailable_reason(std::string_view name, int min_sm) {
  const DeviceStatus status = query_device();
  if (!status.available) return status.reason;
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess) {
    return "cannot read device 0's compute capability";
  }
  const int sm = 10 * major + minor;
  // sm_90a code runs on compute capability 9.0 only; sm_80 code on 8.0 and later.
  const bool runs = min_sm == 90 ? sm == 90 : sm >= min_sm;
  if (runs) return "";
  return std::string(name) + " needs compute capability " + std::to_string(min_sm / 10) + "." +
         std::to_string(min_sm % 10) + (min_sm == 90 ? " exactly (sm_90a)" : " or later") +
         "; device 0 has " + std::to_string(major) + "." + std::to_string(minor);
}

namespace {

void require_device() {
  const DeviceStatus status = query_device();
  if (!status.available) throw GpuError(status.reason);
}

void require_int_sized(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k) {
  if (!fits_32bit_indexing(m, n, k)) {
    throw ShapeError("GPU matmul of " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                     std::to_string(k) + ": a matrix has more than 2^31 - 1 elements");
  }
}

void copy_to_device(ConstView<float> host, float* device) {
  LOCALITY_CUDA(cudaMemcpy2D(device, static_cast<std::size_t>(host.cols()) * sizeof(float),
                             host.data(), static_cast<std::size_t>(host.ld()) * sizeof(float),
                             static_cast<std::size_t>(host.cols()) * sizeof(float),
                             static_cast<std::size_t>(host.rows()), cudaMemcpyHostToDevice));
}

// A flat host tensor into device memory of at least its size.
void copy_to_device(std::span<const float> host, float* device) {
  LOCALITY_CUDA(cudaMemcpy(device, host.data(), host.size_bytes(), cudaMemcpyHostToDevice));
}

void copy_to_host(const float* device, View<float> host) {
  LOCALITY_CUDA(cudaMemcpy2D(host.data(), static_cast<std::size_t>(host.ld()) * sizeof(float),
                             device, static_cast<std::size_t>(host.cols()) * sizeof(float),
                             static_cast<std::size_t>(host.cols()) * sizeof(float),
                             static_cast<std::size_t>(host.rows()), cudaMemcpyDeviceToHost));
}

// Runs `launch` once with the device's C poisoned with NaN first, and
// copies C back into `host`: what every entry point and harness check does
// (unwritten elements show as NaN).
template <typename Launch>
void run_poisoned(Launch launch, DeviceBuffer<float>& dc, View<float> host) {
  LOCALITY_CUDA(cudaMemset(dc.get(), 0xff, dc.size() * sizeof(float)));
  launch();
  LOCALITY_CUDA(cudaDeviceSynchronize());
  copy_to_host(dc.get(), host);
}

}  // namespace

void matmul(const GpuMatmulVariant& variant, ConstView<float> a, ConstView<float> b,
            View<float> c) {
  check_matmul_args(a, b, c, 1);
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = 0, as on the CPU
    for (std::ptrdiff_t i = 0; i < m; ++i) std::fill_n(c.row(i), n, 0.0f);
    return;
  }
  require_int_sized(m, n, k);
  require_device();
  DeviceBuffer<float> da(checked_elements(m, k, sizeof(float))),
      db(checked_elements(k, n, sizeof(float))), dc(checked_elements(m, n, sizeof(float)));
  copy_to_device(a, da.get());
  copy_to_device(b, db.get());
  run_poisoned(
      [&] {
        variant.run(da.get(), db.get(), dc.get(), static_cast<int>(m), static_cast<int>(n),
                    static_cast<int>(k));
      },
      dc, c);
}

namespace {

void require_bf16_runs(const GpuBf16MatmulVariant& variant, std::ptrdiff_t n, std::ptrdiff_t k) {
  if (k % variant.multiple != 0 || n % variant.multiple != 0) {
    throw ShapeError("the " + std::string(variant.name) + " bf16 rung needs k and n multiples of " +
                     std::to_string(variant.multiple) + " (got k = " + std::to_string(k) +
                     ", n = " + std::to_string(n) + ")");
  }
  if (const std::string why = bf16_unavailable_reason(variant); !why.empty()) throw GpuError(why);
}

}  // namespace

void matmul_bf16(const GpuBf16MatmulVariant& variant, ConstView<float> a, ConstView<float> b,
                 View<float> c) {
  check_matmul_args(a, b, c, 1);
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = b.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::ptrdiff_t i = 0; i < m; ++i) std::fill_n(c.row(i), n, 0.0f);
    return;
  }
  require_int_sized(m, n, k);
  require_bf16_runs(variant, n, k);
  const std::vector<std::uint16_t> ha = bf16_bits(a), hb = bf16_bits(b);
  DeviceBuffer<std::uint16_t> da(ha.size()), db(hb.size());
  DeviceBuffer<float> dc(checked_elements(m, n, sizeof(float)));
  LOCALITY_CUDA(cudaMemcpy(da.get(), ha.data(), ha.size() * 2, cudaMemcpyHostToDevice));
  LOCALITY_CUDA(cudaMemcpy(db.get(), hb.data(), hb.size() * 2, cudaMemcpyHostToDevice));
  run_poisoned(
      [&] {
        variant.run(da.get(), db.get(), dc.get(), static_cast<int>(m), static_cast<int>(n),
                    static_cast<int>(k));
      },
      dc, c);
}

void attention(const GpuAttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options) {
  check_attention_args(shape, q, k, v, o, options, 1);
  if (o.empty()) return;  // no query rows: nothing to compute
  require_device();
  DeviceBuffer<float> dq(q.size()), dk(k.size()), dv(v.size()), dout(o.size()),
      workspace(variant.workspace_floats(shape));
  copy_to_device(q, dq.get());
  copy_to_device(k, dk.get());
  copy_to_device(v, dv.get());
  LOCALITY_CUDA(cudaMemset(dout.get(), 0xff, o.size_bytes()));  // NaN: unwritten shows
  const float scale = attention_scale(shape, options);
  const AttentionArgs args{shape, dq.get(), dk.get(), dv.get(), dout.get(), scale, options.causal};
  variant.run(args, workspace.get());
  LOCALITY_CUDA(cudaDeviceSynchronize());
  LOCALITY_CUDA(cudaMemcpy(o.data(), dout.get(), o.size_bytes(), cudaMemcpyDeviceToHost));
}

namespace {

void require_bf16_attention_runs(const GpuBf16AttentionVariant& variant) {
  if (const std::string why = bf16_unavailable_reason(variant); !why.empty()) throw GpuError(why);
}

Bf16AttentionArgs bf16_args(const AttentionShape& shape, const DeviceBuffer<std::uint16_t>& q,
                            const DeviceBuffer<std::uint16_t>& k,
                            const DeviceBuffer<std::uint16_t>& v, DeviceBuffer<std::uint16_t>& o,
                            const AttentionOptions& options) {
  return {shape,         q.get(), k.get(), v.get(), o.get(), attention_scale(shape, options),
          options.causal};
}

DeviceBuffer<std::uint16_t> bf16_on_device(std::span<const float> x) {
  const std::vector<std::uint16_t> bits = bf16_bits(x);
  DeviceBuffer<std::uint16_t> d(bits.size());
  LOCALITY_CUDA(cudaMemcpy(d.get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  return d;
}

// O's bf16 values from the device, widened to float.
void bf16_to_host(const DeviceBuffer<std::uint16_t>& d, std::span<float> out) {
  std::vector<std::uint16_t> bits(out.size());
  LOCALITY_CUDA(cudaMemcpy(bits.data(), d.get(), bits.size() * 2, cudaMemcpyDeviceToHost));
  std::transform(bits.begin(), bits.end(), out.begin(), from_bf16_bits);
}

}  // namespace

void attention_bf16(const GpuBf16AttentionVariant& variant, const AttentionShape& shape,
                    std::span<const float> q, std::span<const float> k, std::span<const float> v,
                    std::span<float> o, const AttentionOptions& options) {
  check_attention_args(shape, q, k, v, o, options, 1);
  if (o.empty()) return;
  require_bf16_attention_runs(variant);
  const DeviceBuffer<std::uint16_t> dq = bf16_on_device(q), dk = bf16_on_device(k),
                                    dv = bf16_on_device(v);
  DeviceBuffer<std::uint16_t> dout(o.size());
  LOCALITY_CUDA(cudaMemset(dout.get(), 0xff, o.size() * 2));  // NaN: unwritten shows
  variant.run(bf16_args(shape, dq, dk, dv, dout, options));
  LOCALITY_CUDA(cudaDeviceSynchronize());
  bf16_to_host(dout, o);
}

DeviceInfo device_info() {
  require_device();
  cudaDeviceProp prop{};
  LOCALITY_CUDA(cudaGetDeviceProperties(&prop, 0));
  DeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  int khz = 0;
  LOCALITY_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  info.sm_clock_mhz = khz / 1000;
  LOCALITY_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, 0));
  info.memory_clock_mhz = khz / 1000;
  info.l2_bytes = prop.l2CacheSize;
  info.memory_bytes = static_cast<std::int64_t>(prop.totalGlobalMem);
  info.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  int version = 0;
  LOCALITY_CUDA(cudaDriverGetVersion(&version));
  info.driver_version = std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
  LOCALITY_CUDA(cudaRuntimeGetVersion(&version));
  info.runtime_version = std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
  int major = 0, minor = 0, patch = 0;
  LOCALITY_CUBLAS(cublasGetProperty(MAJOR_VERSION, &major));
  LOCALITY_CUBLAS(cublasGetProperty(MINOR_VERSION, &minor));
  LOCALITY_CUBLAS(cublasGetProperty(PATCH_LEVEL, &patch));
  info.cublas_version =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  return info;
}

namespace {

std::size_t flush_bytes() {
  require_device();
  int l2 = 0;
  LOCALITY_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  return 2 * static_cast<std::size_t>(std::max(l2, 1 << 20));
}

// Times one call with CUDA events around it, after a write over a buffer
// twice the L2's size, so that no call starts with its operands in L2.
class FlushedTimer {
 public:
  FlushedTimer() : flush_(flush_bytes() / sizeof(float)) {
    LOCALITY_CUDA(cudaEventCreate(&start_));
    LOCALITY_CUDA(cudaEventCreate(&stop_));
  }
  ~FlushedTimer() {
    if (start_) cudaEventDestroy(start_);
    if (stop_) cudaEventDestroy(stop_);
  }
  FlushedTimer(const FlushedTimer&) = delete;
  FlushedTimer& operator=(const FlushedTimer&) = delete;

  template <typename Launch>
  double time_ms(Launch launch) {
    LOCALITY_CUDA(cudaMemsetAsync(flush_.get(), 0, flush_.size() * sizeof(float)));
    LOCALITY_CUDA(cudaEventRecord(start_));
    launch();
    LOCALITY_CUDA(cudaEventRecord(stop_));
    LOCALITY_CUDA(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    LOCALITY_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  DeviceBuffer<float> flush_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// A cuBLAS handle in strict FP32: pedantic math, so no TF32 tensor-core
// shortcuts for the peers.
cublasHandle_t fp32_cublas() {
  cublasHandle_t handle = nullptr;
  LOCALITY_CUBLAS(cublasCreate(&handle));
  const cublasStatus_t status = cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);
  if (status != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(handle);
    fail("cublasSetMathMode(CUBLAS_PEDANTIC_MATH)", __FILE__, __LINE__,
         cublasGetStatusString(status));
  }
  return handle;
}

// What both matmul harnesses need before they allocate.
void require_bench_sizes(int m, int n, int k) {
  if (m < 1 || n < 1 || k < 1) throw ShapeError("GPU benchmark sizes must be at least 1");
  require_int_sized(m, n, k);
  require_device();
}

}  // namespace

struct MatmulBench::Impl {
  int m, n, k;
  Matrix<float> a, b, c;  // host copies: the inputs, and C for checking
  DeviceBuffer<float> da, db, dc;
  FlushedTimer timer;
  cublasHandle_t cublas = nullptr;

  Impl(int m_, int n_, int k_)
      : m(m_),
        n(n_),
        k(k_),
        a(m_, k_),
        b(k_, n_),
        c(m_, n_),
        da(checked_elements(m_, k_, sizeof(float))),
        db(checked_elements(k_, n_, sizeof(float))),
        dc(checked_elements(m_, n_, sizeof(float))) {}
  ~Impl() {
    if (cublas) cublasDestroy(cublas);
  }

  template <typename Launch>
  double time(Launch launch) {
    return timer.time_ms(launch);
  }

  void cublas_sgemm() {
    // Row-major C = A B is column-major C^T = B^T A^T: the operands swap.
    const float one = 1.0f, zero = 0.0f;
    LOCALITY_CUBLAS(cublasSgemm(cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, db.get(), n,
                                da.get(), k, &zero, dc.get(), n));
  }

  template <typename Launch>
  VerifyResult check(Launch launch, std::span<const std::ptrdiff_t> rows) {
    run_poisoned(launch, dc, c.view());
    return verify_matmul_rows(a.cview(), b.cview(), c.cview(), rows);
  }
};

MatmulBench::MatmulBench(int m, int n, int k) {
  require_bench_sizes(m, n, k);
  impl_ = std::make_unique<Impl>(m, n, k);
  fill_random(impl_->a.view(), 1);
  fill_random(impl_->b.view(), 2);
  copy_to_device(impl_->a.cview(), impl_->da.get());
  copy_to_device(impl_->b.cview(), impl_->db.get());
  impl_->cublas = fp32_cublas();
}

MatmulBench::~MatmulBench() = default;

double MatmulBench::time_ms(const GpuMatmulVariant& variant) {
  Impl& s = *impl_;
  return s.time([&] { variant.run(s.da.get(), s.db.get(), s.dc.get(), s.m, s.n, s.k); });
}

double MatmulBench::time_cublas_ms() {
  return impl_->time([&] { impl_->cublas_sgemm(); });
}

VerifyResult MatmulBench::check(const GpuMatmulVariant& variant,
                                std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  return s.check([&] { variant.run(s.da.get(), s.db.get(), s.dc.get(), s.m, s.n, s.k); }, rows);
}

VerifyResult MatmulBench::check_cublas(std::span<const std::ptrdiff_t> rows) {
  return impl_->check([&] { impl_->cublas_sgemm(); }, rows);
}

struct Bf16MatmulBench::Impl {
  int m, n, k;
  Matrix<float> a, b, c;  // host: the bf16 values as floats, and C for checking
  DeviceBuffer<std::uint16_t> da, db;
  DeviceBuffer<float> dc;
  FlushedTimer timer;
  // The cuBLASLt peer: row-major C = A B as column-major C^T = B^T A^T.
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t lb = nullptr, la = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  DeviceBuffer<unsigned char> workspace{std::size_t{32} << 20};
  std::string algorithm;

  Impl(int m_, int n_, int k_)
      : m(m_),
        n(n_),
        k(k_),
        a(m_, k_),
        b(k_, n_),
        c(m_, n_),
        da(checked_elements(m_, k_, 2)),
        db(checked_elements(k_, n_, 2)),
        dc(checked_elements(m_, n_, sizeof(float))) {}
  ~Impl() {
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (op) cublasLtMatmulDescDestroy(op);
    if (lt) cublasLtDestroy(lt);
  }

  void cublas_run(const cublasLtMatmulAlgo_t& with) {
    const float one = 1.0f, zero = 0.0f;
    LOCALITY_CUBLAS(cublasLtMatmul(lt, op, &one, db.get(), lb, da.get(), la, &zero, dc.get(), lc,
                                   dc.get(), lc, &with, workspace.get(), workspace.size(),
                                   nullptr));
  }

  // cuBLASLt's heuristic candidates, each timed once (after one untimed
  // call); the fastest is the peer from here on.
  void choose_cublas() {
    LOCALITY_CUBLAS(cublasLtCreate(&lt));
    LOCALITY_CUBLAS(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LOCALITY_CUBLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, n, k, n));
    LOCALITY_CUBLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, k, m, k));
    LOCALITY_CUBLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, n, m, n));
    cublasLtMatmulPreference_t pref = nullptr;
    LOCALITY_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
    const std::size_t bytes = workspace.size();
    cublasLtMatmulHeuristicResult_t found[8] = {};
    int count = 0;
    const cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof bytes);
    const cublasStatus_t got =
        set == CUBLAS_STATUS_SUCCESS
            ? cublasLtMatmulAlgoGetHeuristic(lt, op, lb, la, lc, lc, pref, 8, found, &count)
            : set;
    cublasLtMatmulPreferenceDestroy(pref);
    LOCALITY_CUBLAS(got);
    if (count == 0) throw GpuError("cuBLASLt proposes no algorithm for this bf16 product");
    double best = 0.0;
    int chosen = 0;
    for (int i = 0; i < count; ++i) {
      cublas_run(found[i].algo);
      const double ms = timer.time_ms([&] { cublas_run(found[i].algo); });
      if (i == 0 || ms < best) best = ms, chosen = i;
    }
    algo = found[chosen].algo;
    const auto config = [&](cublasLtMatmulAlgoConfigAttributes_t what) {
      int value = 0;
      std::size_t written = 0;
      LOCALITY_CUBLAS(
          cublasLtMatmulAlgoConfigGetAttribute(&algo, what, &value, sizeof value, &written));
      return std::to_string(value);
    };
    algorithm = "algo " + config(CUBLASLT_ALGO_CONFIG_ID) + " tile " +
                config(CUBLASLT_ALGO_CONFIG_TILE_ID) + " stages " +
                config(CUBLASLT_ALGO_CONFIG_STAGES_ID) + " split-k " +
                config(CUBLASLT_ALGO_CONFIG_SPLITK_NUM) + " (fastest of " + std::to_string(count) +
                " heuristic candidates)";
  }

  template <typename Launch>
  VerifyResult check(Launch launch, std::span<const std::ptrdiff_t> rows) {
    run_poisoned(launch, dc, c.view());
    return verify_matmul_bf16_rows(a.cview(), b.cview(), c.cview(), rows);
  }
};

Bf16MatmulBench::Bf16MatmulBench(int m, int n, int k) {
  require_bench_sizes(m, n, k);
  impl_ = std::make_unique<Impl>(m, n, k);
  Impl& s = *impl_;
  fill_random(s.a.view(), 1);
  fill_random(s.b.view(), 2);
  round_to_bf16(s.a.view());  // the host keeps the values the device computes with
  round_to_bf16(s.b.view());
  for (const auto& [host, device] :
       {std::pair{s.a.cview(), s.da.get()}, {s.b.cview(), s.db.get()}}) {
    const std::vector<std::uint16_t> bits = bf16_bits(host);
    LOCALITY_CUDA(cudaMemcpy(device, bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  }
  s.choose_cublas();
}

Bf16MatmulBench::~Bf16MatmulBench() = default;

double Bf16MatmulBench::time_ms(const GpuBf16MatmulVariant& variant) {
  Impl& s = *impl_;  // the rung refuses sizes outside its rule itself (ShapeError)
  return s.timer.time_ms([&] { variant.run(s.da.get(), s.db.get(), s.dc.get(), s.m, s.n, s.k); });
}

double Bf16MatmulBench::time_cublas_ms() {
  Impl& s = *impl_;
  return s.timer.time_ms([&] { s.cublas_run(s.algo); });
}

VerifyResult Bf16MatmulBench::check(const GpuBf16MatmulVariant& variant,
                                    std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  require_bf16_runs(variant, s.n, s.k);
  return s.check([&] { variant.run(s.da.get(), s.db.get(), s.dc.get(), s.m, s.n, s.k); }, rows);
}

VerifyResult Bf16MatmulBench::check_cublas(std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  return s.check([&] { s.cublas_run(s.algo); }, rows);
}

const std::string& Bf16MatmulBench::cublas_algorithm() const { return impl_->algorithm; }

struct AttentionBench::Impl {
  AttentionShape shape;
  bool causal;
  std::vector<float> q, k, v, o;  // host copies: the inputs, and O for checking
  DeviceBuffer<float> dq, dk, dv, dout;
  DeviceBuffer<float> workspace{0};  // grown to what the largest caller needs
  FlushedTimer timer;
  cublasHandle_t cublas = nullptr;

  Impl(const AttentionShape& s, bool causal_)
      : shape(s),
        causal(causal_),
        q(s.q_elements()),
        k(s.kv_elements()),
        v(s.kv_elements()),
        o(s.q_elements()),
        dq(q.size()),
        dk(k.size()),
        dv(v.size()),
        dout(o.size()) {}
  ~Impl() {
    if (cublas) cublasDestroy(cublas);
  }

  AttentionOptions options() const { return {std::nullopt, causal}; }
  AttentionArgs args() const {
    return {shape, dq.get(), dk.get(), dv.get(), dout.get(), attention_scale(shape, options()),
            causal};
  }
  float* workspace_of(std::size_t floats) {
    if (workspace.size() < floats) {
      workspace = DeviceBuffer<float>(0);  // the old one goes first
      workspace = DeviceBuffer<float>(floats);
    }
    return workspace.get();
  }

  // Heads per strided batch of the cuBLAS peer: scores of at most 2^30 floats.
  std::int64_t cublas_heads() const {
    const std::int64_t per_head = shape.seq_q * shape.seq_kv;
    return std::clamp<std::int64_t>((std::int64_t{1} << 30) / per_head, 1,
                                    shape.batch * shape.heads);
  }
  void cublas_attention() {
    const int sq = static_cast<int>(shape.seq_q), skv = static_cast<int>(shape.seq_kv),
              d = static_cast<int>(shape.head_dim);
    const long long q_stride = 1LL * sq * d, kv_stride = 1LL * skv * d, s_stride = 1LL * sq * skv;
    const std::int64_t heads = shape.batch * shape.heads, batch = cublas_heads();
    float* s = workspace.get();
    const float one = 1.0f, zero = 0.0f, scale = attention_scale(shape, options());
    for (std::int64_t h0 = 0; h0 < heads; h0 += batch) {
      const int n = static_cast<int>(std::min(batch, heads - h0));
      // Row-major S = Q K^T is column-major S^T = K Q^T; then O^T = V^T P^T.
      LOCALITY_CUBLAS(cublasSgemmStridedBatched(
          cublas, CUBLAS_OP_T, CUBLAS_OP_N, skv, sq, d, &one, dk.get() + h0 * kv_stride, d,
          kv_stride, dq.get() + h0 * q_stride, d, q_stride, &zero, s, skv, s_stride, n));
      softmax_rows(s, Sizes{n, shape.seq_q, shape.seq_kv, shape.head_dim, causal}, scale);
      LOCALITY_CUBLAS(cublasSgemmStridedBatched(
          cublas, CUBLAS_OP_N, CUBLAS_OP_N, d, sq, skv, &one, dv.get() + h0 * kv_stride, d,
          kv_stride, s, skv, s_stride, &zero, dout.get() + h0 * q_stride, d, q_stride, n));
    }
  }

  template <typename Launch>
  VerifyResult check(Launch launch, std::span<const std::ptrdiff_t> rows) {
    LOCALITY_CUDA(cudaMemset(dout.get(), 0xff, dout.size() * sizeof(float)));
    launch();
    LOCALITY_CUDA(cudaDeviceSynchronize());
    LOCALITY_CUDA(
        cudaMemcpy(o.data(), dout.get(), o.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return verify_attention_rows(shape, q, k, v, o, options(), rows);
  }

  // The bf16 ladder's tensors: Q, K and V rounded (host copies for the
  // check, bits on the device) and O, made on first use.
  struct Bf16 {
    std::vector<float> q, k, v;
    DeviceBuffer<std::uint16_t> dq, dk, dv, dout;
  };
  std::unique_ptr<Bf16> bf16;
  Bf16& bf16_tensors() {
    if (!bf16) {
      const auto rounded = [](std::vector<float> x) {
        round_to_bf16(std::span<float>(x));
        return x;
      };
      bf16 = std::make_unique<Bf16>(Bf16{rounded(q), rounded(k), rounded(v), bf16_on_device(q),
                                         bf16_on_device(k), bf16_on_device(v),
                                         DeviceBuffer<std::uint16_t>(o.size())});
    }
    return *bf16;
  }
  Bf16AttentionArgs bf16_args_now() {
    Bf16& b = bf16_tensors();
    return bf16_args(shape, b.dq, b.dk, b.dv, b.dout, options());
  }
};

namespace {
// The shapes the benchmark harness takes: every size at least 1, head_dim
// within the ladder's limit, one head's matrices under 2^31 elements.
void check_bench_shape(const AttentionShape& s) {
  if (s.batch < 1 || s.heads < 1 || s.seq_q < 1 || s.seq_kv < 1 || s.head_dim < 1 ||
      s.head_dim > kMaxHeadDim) {
    throw ShapeError("GPU attention benchmark: every size must be at least 1, head_dim at most " +
                     std::to_string(kMaxHeadDim));
  }
  if (!fits_32bit_indexing(s.seq_q, s.seq_kv, s.head_dim)) {
    throw ShapeError("GPU attention benchmark: one head's scores exceed 2^31 - 1 elements");
  }
  const char* what = "the GPU attention benchmark's tensors";
  checked_mul(checked_mul(static_cast<std::size_t>(s.batch * s.heads),
                          static_cast<std::size_t>(std::max(s.seq_q, s.seq_kv)), what),
              static_cast<std::size_t>(s.head_dim) * sizeof(float), what);
}
}  // namespace

AttentionBench::AttentionBench(const AttentionShape& shape, bool causal) {
  check_bench_shape(shape);
  require_device();
  impl_ = std::make_unique<Impl>(shape, causal);
  fill_random(std::span<float>(impl_->q), 1);
  fill_random(std::span<float>(impl_->k), 2);
  fill_random(std::span<float>(impl_->v), 3);
  copy_to_device(impl_->q, impl_->dq.get());
  copy_to_device(impl_->k, impl_->dk.get());
  copy_to_device(impl_->v, impl_->dv.get());
  impl_->cublas = fp32_cublas();
}

AttentionBench::~AttentionBench() = default;

void AttentionBench::use(const AttentionShape& shape, bool causal) {
  check_bench_shape(shape);
  Impl& s = *impl_;
  if (shape.q_elements() != s.q.size() || shape.kv_elements() != s.k.size()) {
    throw ShapeError(
        "AttentionBench::use: the new shape's tensors must have the sizes of the "
        "first shape's");
  }
  s.shape = shape;
  s.causal = causal;
}

double AttentionBench::time_ms(const GpuAttentionVariant& variant) {
  Impl& s = *impl_;
  float* workspace = s.workspace_of(variant.workspace_floats(s.shape));
  return s.timer.time_ms([&] { variant.run(s.args(), workspace); });
}

double AttentionBench::time_cublas_ms() {
  Impl& s = *impl_;
  s.workspace_of(static_cast<std::size_t>(s.cublas_heads() * s.shape.seq_q * s.shape.seq_kv));
  return s.timer.time_ms([&] { s.cublas_attention(); });
}

VerifyResult AttentionBench::check(const GpuAttentionVariant& variant,
                                   std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  float* workspace = s.workspace_of(variant.workspace_floats(s.shape));
  return s.check([&] { variant.run(s.args(), workspace); }, rows);
}

VerifyResult AttentionBench::check_cublas(std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  s.workspace_of(static_cast<std::size_t>(s.cublas_heads() * s.shape.seq_q * s.shape.seq_kv));
  return s.check([&] { s.cublas_attention(); }, rows);
}

double AttentionBench::time_ms(const GpuBf16AttentionVariant& variant) {
  Impl& s = *impl_;
  const Bf16AttentionArgs args = s.bf16_args_now();
  return s.timer.time_ms([&] { variant.run(args); });
}

VerifyResult AttentionBench::check(const GpuBf16AttentionVariant& variant,
                                   std::span<const std::ptrdiff_t> rows) {
  Impl& s = *impl_;
  require_bf16_attention_runs(variant);
  const Bf16AttentionArgs args = s.bf16_args_now();
  Impl::Bf16& b = *s.bf16;
  LOCALITY_CUDA(cudaMemset(b.dout.get(), 0xff, b.dout.size() * 2));
  variant.run(args);
  LOCALITY_CUDA(cudaDeviceSynchronize());
  bf16_to_host(b.dout, s.o);
  return verify_attention_bf16_rows(s.shape, b.q, b.k, b.v, s.o, s.options(), rows);
}

}  // namespace locality::gpu

// The GPU side: device discovery, the CUDA matmul and attention ladders, and
// what the tests, benchmarks and driver need to reach them. Everything here is host code and
// compiles without CUDA; in a build without a CUDA compiler the ladder is
// empty and every call that needs a device throws GpuError saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "locality/attention.hpp"
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

// The tensor-core ladder: C = A B with A (m x k) and B (k x n) in bf16, C in
// float32, float accumulation; row-major, contiguous device arrays, bf16
// passed as its 16 bits (bf16.hpp). Launches on the default stream, as the
// float rungs; throws ShapeError for sizes it refuses (see `multiple`).
using GpuBf16MatmulFn = void (*)(const std::uint16_t* a, const std::uint16_t* b, float* c, int m,
                                 int n, int k);

struct GpuBf16MatmulVariant {
  std::string_view name;    // "wmma", "mma_sync", ...: also the benchmark name
  int rung;                 // position on the ladder, from 1 (no naive tensor-core rung)
  std::string_view lesson;  // one sentence: what this rung adds
  GpuBf16MatmulFn run;
  int multiple;  // k and n must be multiples of this (1: any size)
  int min_sm;    // the compute capability it needs, times ten: 80 (sm_80 on), 90 (sm_90a only)
};

// The tensor-core ladder in rung order (empty in a build without CUDA).
std::span<const GpuBf16MatmulVariant> bf16_matmul_variants();
const GpuBf16MatmulVariant* find_bf16_matmul_variant(std::string_view name);

// Why a rung called `name` that needs compute capability min_sm / 10 cannot
// run on this machine's device 0 (none, or a compute capability it was not
// built for), or "" when it can.
std::string unavailable_reason(std::string_view name, int min_sm);
inline std::string bf16_unavailable_reason(const GpuBf16MatmulVariant& variant) {
  return unavailable_reason(variant.name, variant.min_sm);
}

// C = A B on the device for host views, A and B first rounded to bf16
// (round_to_bf16): shapes checked as matmul() does, then the rung's own
// rule (ShapeError naming it); GpuError without a device it can run on.
void matmul_bf16(const GpuBf16MatmulVariant& variant, ConstView<float> a, ConstView<float> b,
                 View<float> c);

// A GPU attention rung computes O = attention(Q, K, V) as attention.hpp
// defines it (layout, scale, causal mask, non-finite rules), for device
// tensors: `args` holds device pointers and a checked shape with at least one
// query row, `workspace` device memory of the rung's own workspace_floats(shape)
// floats (null where that is 0). It launches on the default stream and
// returns, as the matmul rungs do.
using GpuAttentionFn = void (*)(const AttentionArgs& args, float* workspace);
using GpuAttentionWorkspaceFn = std::size_t (*)(const AttentionShape& shape);

struct GpuAttentionVariant {
  std::string_view name;    // "naive", ...: also the benchmark name
  int rung;                 // position on the GPU attention ladder, 0 = naive
  std::string_view lesson;  // one sentence: what this rung adds
  GpuAttentionFn run;
  GpuAttentionWorkspaceFn workspace_floats;
  std::int64_t largest_timed;  // longest sequence the benchmarks time it at
};

// The GPU attention ladder in rung order (empty in a build without CUDA).
std::span<const GpuAttentionVariant> attention_variants();
const GpuAttentionVariant* find_attention_variant(std::string_view name);

// O = attention(Q, K, V) on the device for host tensors: checks the arguments
// as the CPU's attention() does (ShapeError, std::invalid_argument), copies
// Q, K and V over, runs the rung with O poisoned with NaN, copies O back.
// Throws GpuError without a usable device or when the workspace does not fit.
void attention(const GpuAttentionVariant& variant, const AttentionShape& shape,
               std::span<const float> q, std::span<const float> k, std::span<const float> v,
               std::span<float> o, const AttentionOptions& options = {});

// The bf16 attention ladder: Q, K, V and O in bf16 (passed as their 16 bits,
// bf16.hpp), scores, softmax state and sums in float; layout, scale, causal
// mask and non-finite rules as attention.hpp. Device pointers and a checked
// shape with at least one query row; launches on the default stream and
// returns. Throws ShapeError for what a rung refuses (its head dims, say).
struct Bf16AttentionArgs {
  AttentionShape shape;
  const std::uint16_t* q;
  const std::uint16_t* k;
  const std::uint16_t* v;
  std::uint16_t* o;
  float scale;
  bool causal;
};
using GpuBf16AttentionFn = void (*)(const Bf16AttentionArgs& args);

struct GpuBf16AttentionVariant {
  std::string_view name;    // "flash2_mma", ...: also the benchmark name
  int rung;                 // position on the ladder, from 1
  std::string_view lesson;  // one sentence: what this rung adds
  GpuBf16AttentionFn run;
  int min_sm;  // as GpuBf16MatmulVariant's
};

// The bf16 attention ladder in rung order (empty in a build without CUDA).
std::span<const GpuBf16AttentionVariant> bf16_attention_variants();
const GpuBf16AttentionVariant* find_bf16_attention_variant(std::string_view name);
inline std::string bf16_unavailable_reason(const GpuBf16AttentionVariant& variant) {
  return unavailable_reason(variant.name, variant.min_sm);
}

// O = attention(Q, K, V) on the device for host tensors, Q, K and V first
// rounded to bf16: checks as attention() does, then the rung's own rule; O
// comes back as the bf16 values the rung wrote, widened to float.
void attention_bf16(const GpuBf16AttentionVariant& variant, const AttentionShape& shape,
                    std::span<const float> q, std::span<const float> k, std::span<const float> v,
                    std::span<float> o, const AttentionOptions& options = {});

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

// One bf16 problem resident on the device, for timing: random A and B (the
// float ladder's values rounded to bf16), C, the L2 flush, events, and the
// cuBLAS peer: cublasLtMatmul with bf16 inputs, float compute and output,
// tensor cores allowed, and the fastest of the algorithms cuBLASLt's
// heuristic proposes (each timed once here, the winner kept).
class Bf16MatmulBench {
 public:
  Bf16MatmulBench(int m, int n, int k);  // throws GpuError
  ~Bf16MatmulBench();
  Bf16MatmulBench(const Bf16MatmulBench&) = delete;
  Bf16MatmulBench& operator=(const Bf16MatmulBench&) = delete;

  double time_ms(const GpuBf16MatmulVariant& variant);
  double time_cublas_ms();
  // Runs once more (C poisoned first) and checks the listed rows of C
  // against Eigen in double from the same bf16 inputs (verify_matmul_bf16_rows).
  VerifyResult check(const GpuBf16MatmulVariant& variant, std::span<const std::ptrdiff_t> rows);
  VerifyResult check_cublas(std::span<const std::ptrdiff_t> rows);
  // The algorithm cuBLASLt ran: its id, tile, stages, split-k, and among how many.
  const std::string& cublas_algorithm() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One attention problem resident on the device, for timing: random Q, K and
// V (the values the CPU ladder uses), O, the workspace the largest rung
// declares (grown as needed), a buffer written before each timed call so that
// no call starts with its operands in L2, CUDA events, and the cuBLAS peer:
// unfused attention with cublasSgemmStridedBatched in FP32 (pedantic math),
// the tiled rung's softmax between its two products, heads in batches whose
// scores take at most 4 GiB.
class AttentionBench {
 public:
  AttentionBench(const AttentionShape& shape, bool causal);  // throws GpuError, ShapeError
  ~AttentionBench();
  // The same tensors seen as another shape with the same element counts
  // (the benchmarks' shapes all have batch x seq and heads x head_dim fixed).
  void use(const AttentionShape& shape, bool causal);
  AttentionBench(const AttentionBench&) = delete;
  AttentionBench& operator=(const AttentionBench&) = delete;

  double time_ms(const GpuAttentionVariant& variant);
  double time_cublas_ms();
  // Runs once more (O poisoned first) and checks the listed rows of O
  // (index (b * heads + h) * seq_q + i) against Eigen in double.
  VerifyResult check(const GpuAttentionVariant& variant, std::span<const std::ptrdiff_t> rows);
  // The bf16 ladder on the same Q, K and V rounded to bf16 (made on first
  // use), checked with verify_attention_bf16_rows.
  double time_ms(const GpuBf16AttentionVariant& variant);
  VerifyResult check(const GpuBf16AttentionVariant& variant, std::span<const std::ptrdiff_t> rows);
  VerifyResult check_cublas(std::span<const std::ptrdiff_t> rows);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace locality::gpu

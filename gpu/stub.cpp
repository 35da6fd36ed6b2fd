// The GPU side in a build without a CUDA compiler: no ladders, and every entry
// point that needs a device says why there is none.
#include "locality/gpu.hpp"
#include "locality/matmul.hpp"

namespace locality::gpu {

namespace {
constexpr const char* kNoCuda =
    "no usable CUDA device: this build has no CUDA (nvcc was not found)";
}

DeviceStatus query_device() { return DeviceStatus{false, kNoCuda, ""}; }

std::span<const GpuMatmulVariant> matmul_variants() { return {}; }

const GpuMatmulVariant* find_matmul_variant(std::string_view) { return nullptr; }

void matmul(const GpuMatmulVariant&, ConstView<float> a, ConstView<float> b, View<float> c) {
  check_matmul_args(a, b, c, 1);
  throw GpuError(kNoCuda);
}

std::span<const GpuBf16MatmulVariant> bf16_matmul_variants() { return {}; }

const GpuBf16MatmulVariant* find_bf16_matmul_variant(std::string_view) { return nullptr; }

std::string unavailable_reason(std::string_view, int) { return kNoCuda; }

void matmul_bf16(const GpuBf16MatmulVariant&, ConstView<float> a, ConstView<float> b,
                 View<float> c) {
  check_matmul_args(a, b, c, 1);
  throw GpuError(kNoCuda);
}

std::span<const GpuAttentionVariant> attention_variants() { return {}; }

const GpuAttentionVariant* find_attention_variant(std::string_view) { return nullptr; }

void attention(const GpuAttentionVariant&, const AttentionShape& shape, std::span<const float> q,
               std::span<const float> k, std::span<const float> v, std::span<float> o,
               const AttentionOptions& options) {
  check_attention_args(shape, q, k, v, o, options, 1);
  throw GpuError(kNoCuda);
}

std::span<const GpuBf16AttentionVariant> bf16_attention_variants() { return {}; }

const GpuBf16AttentionVariant* find_bf16_attention_variant(std::string_view) { return nullptr; }

void attention_bf16(const GpuBf16AttentionVariant&, const AttentionShape& shape,
                    std::span<const float> q, std::span<const float> k, std::span<const float> v,
                    std::span<float> o, const AttentionOptions& options) {
  check_attention_args(shape, q, k, v, o, options, 1);
  throw GpuError(kNoCuda);
}

DeviceInfo device_info() { throw GpuError(kNoCuda); }

struct MatmulBench::Impl {};
MatmulBench::MatmulBench(int, int, int) { throw GpuError(kNoCuda); }
MatmulBench::~MatmulBench() = default;
double MatmulBench::time_ms(const GpuMatmulVariant&) { throw GpuError(kNoCuda); }
double MatmulBench::time_cublas_ms() { throw GpuError(kNoCuda); }
VerifyResult MatmulBench::check(const GpuMatmulVariant&, std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}
VerifyResult MatmulBench::check_cublas(std::span<const std::ptrdiff_t>) { throw GpuError(kNoCuda); }

struct Bf16MatmulBench::Impl {};
Bf16MatmulBench::Bf16MatmulBench(int, int, int) { throw GpuError(kNoCuda); }
Bf16MatmulBench::~Bf16MatmulBench() = default;
double Bf16MatmulBench::time_ms(const GpuBf16MatmulVariant&) { throw GpuError(kNoCuda); }
double Bf16MatmulBench::time_cublas_ms() { throw GpuError(kNoCuda); }
VerifyResult Bf16MatmulBench::check(const GpuBf16MatmulVariant&, std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}
VerifyResult Bf16MatmulBench::check_cublas(std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}
const std::string& Bf16MatmulBench::cublas_algorithm() const { throw GpuError(kNoCuda); }

struct AttentionBench::Impl {};
AttentionBench::AttentionBench(const AttentionShape&, bool) { throw GpuError(kNoCuda); }
AttentionBench::~AttentionBench() = default;
void AttentionBench::use(const AttentionShape&, bool) { throw GpuError(kNoCuda); }
double AttentionBench::time_ms(const GpuAttentionVariant&) { throw GpuError(kNoCuda); }
double AttentionBench::time_cublas_ms() { throw GpuError(kNoCuda); }
VerifyResult AttentionBench::check(const GpuAttentionVariant&, std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}
VerifyResult AttentionBench::check_cublas(std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}
double AttentionBench::time_ms(const GpuBf16AttentionVariant&) { throw GpuError(kNoCuda); }
VerifyResult AttentionBench::check(const GpuBf16AttentionVariant&,
                                   std::span<const std::ptrdiff_t>) {
  throw GpuError(kNoCuda);
}

}  // namespace locality::gpu

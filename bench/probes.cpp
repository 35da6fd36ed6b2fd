#include "probes.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <new>

namespace locality::bench {
namespace {

// Accumulators per thread: the FMA latency (4 cycles) times the FMA ports
// (2) is 8 in flight. 16 leave no doubt where there are 32 vector registers;
// with AVX2's 16, 16 chains and the two constants would not fit, and the
// chain the compiler spills (a store and a load per step) would set the pace
// of all of them: 12 there.
#if defined(__AVX512F__) || !(defined(__AVX2__) && defined(__FMA__))
constexpr int kChains = 16;
#else
constexpr int kChains = 12;
#endif

#if defined(__AVX512F__)
constexpr int kLanes = 16;
__attribute__((noinline)) float fma_chains(std::int64_t reps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-6f);
  for (std::int64_t r = 0; r < reps; ++r) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
__attribute__((noinline)) float fma_chains(std::int64_t reps) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-6f);
  for (std::int64_t r = 0; r < reps; ++r) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  float lanes[8];
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  _mm256_storeu_ps(lanes, sum);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
#else
constexpr int kLanes = 1;
__attribute__((noinline)) float fma_chains(std::int64_t reps) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = static_cast<float>(i);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999999f + 1e-6f;
  }
  float sum = 0;
  for (float v : acc) sum += v;
  return sum;
}
#endif

}  // namespace

std::int64_t fma_probe_flops(int threads, std::int64_t reps) {
  return 2LL * kChains * kLanes * reps * threads;
}

float fma_probe(int threads, std::int64_t reps) {
  float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  total += fma_chains(reps);
  return total;
}

double measure_fma_peak(int threads) {
  using Clock = std::chrono::steady_clock;
  constexpr std::int64_t kReps = 2'000'000;  // ~30 ms at full speed
  double best = 0;
  volatile float sink = fma_probe(threads, kReps / 10);  // wake the cores and threads
  for (int trial = 0; trial < 8; ++trial) {
    const auto t0 = Clock::now();
    sink = fma_probe(threads, kReps);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(fma_probe_flops(threads, kReps)) / seconds);
  }
  (void)sink;
  return best;
}

struct StreamArrays {
  struct Free {
    void operator()(float* p) const { ::operator delete (p, std::align_val_t{64}); }
  };
  std::int64_t n;
  std::unique_ptr<float[], Free> a, b, c;
};

StreamArrays* stream_arrays(std::int64_t floats, int threads) {
  static std::map<std::int64_t, std::unique_ptr<StreamArrays>> cache;
  auto& slot = cache[floats];
  if (!slot) {
    const auto alloc = [&] {
      return std::unique_ptr<float[], StreamArrays::Free>(static_cast<float*>(
          ::operator new (static_cast<std::size_t>(floats) * sizeof(float), std::align_val_t{64})));
    };
    slot = std::make_unique<StreamArrays>(StreamArrays{floats, alloc(), alloc(), alloc()});
    float *a = slot->a.get(), *b = slot->b.get(), *c = slot->c.get();
    // First touch by the threads that will use each page.
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t i = 0; i < floats; ++i) {
      a[i] = 0.0f;
      b[i] = 1.0f;
      c[i] = 2.0f;
    }
  }
  return slot.get();
}

void stream_triad(StreamArrays* arrays, int threads) {
  float* __restrict a = arrays->a.get();
  const float* __restrict b = arrays->b.get();
  const float* __restrict c = arrays->c.get();
  const std::int64_t n = arrays->n;
  constexpr float kScale = 3.0f;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) a[i] = b[i] + kScale * c[i];
}

std::int64_t stream_triad_bytes(std::int64_t floats) {
  return 3 * floats * static_cast<std::int64_t>(sizeof(float));
}

}  // namespace locality::bench

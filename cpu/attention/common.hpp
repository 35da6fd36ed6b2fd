// Pieces shared by the attention rungs (internal to cpu/attention/): the
// exponential, the row softmax of the unfused rungs, workspace carving, and
// the split of a call into per-thread slabs of query rows.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>

#include "locality/attention.hpp"
#include "locality/exp2.hpp"
#include "locality/matrix.hpp"
#include "microkernel.hpp"

namespace locality::cpu {

// One vector register of floats as a value, with element-wise operators
// (GCC's vector extension): 16 lanes with AVX-512, 8 with AVX2, 4 otherwise.
// The flash rungs write their softmax with it and the compiler picks the
// instructions. Its width is the register's, not a fixed 16: a type wider
// than the register is split by the compiler, and not always well (under
// AVX2, a select on a 16-float type became 16 scalar max instructions).
inline constexpr int kLanes = kVectorFloats;
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));
using VecU = std::uint32_t __attribute__((vector_size(kLanes * sizeof(float))));

inline Vec load_vec(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_vec(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// 2^x for x <= 0 on a float or a vector of them: locality/exp2.hpp.
inline float exp2_nonpositive(float x) { return exp2_nonpositive_impl<float, std::uint32_t>(x); }
#if defined(__AVX512F__)
// With AVX-512 the same steps take its own instructions, 12 to a vector where
// the compiler made 15 of the generic form: vmaxps for the clamp (it returns
// its second operand, x, when x is NaN), vrndscaleps for round(x) (to
// nearest even, as the generic form's shift), vscalefps for p 2^n, and a
// mask for the flush at n = -127 (NaN kept). Bit for bit the generic
// form's results.
// (The all-lanes masked forms: GCC 12 warns that the plain ones' undefined
// pass-through is uninitialized.)
inline Vec exp2_nonpositive(Vec x) {
  constexpr __mmask16 kAll = 0xffff;
  const __m512 clamped = _mm512_maskz_max_ps(kAll, _mm512_set1_ps(-127.0f), x);
  const __m512 n =
      _mm512_maskz_roundscale_ps(kAll, clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 p = exp2_reduced(Vec(_mm512_sub_ps(clamped, n)));
  const __mmask16 normal = _mm512_cmp_ps_mask(n, _mm512_set1_ps(-127.0f), _CMP_NLE_UQ);
  return _mm512_maskz_scalef_ps(normal, p, n);
}
#else
inline Vec exp2_nonpositive(Vec x) { return exp2_nonpositive_impl<Vec, VecU>(x); }
#endif

// Softmax of one row of raw scores q . k in place: s[0..visible) become the
// weights softmax(scale * s), s[visible..cols) (keys the causal mask hides)
// become 0.
void softmax_row(float* s, std::ptrdiff_t visible, std::ptrdiff_t cols, float scale);

// O row += sum over j < keys of p[j] * (row j of V): the unit-stride P V of
// rung 1, and the exact fallback of the blocked rungs (below).
void add_weighted_rows(const float* p, std::ptrdiff_t keys, ConstView<float> v, float* o_row);

// Whether every element is finite. The blocked rungs multiply masked keys'
// zero weights by V inside their products; 0 x v is exactly 0 for finite v,
// but NaN for v = NaN or +-inf, which would leak a key into rows the causal
// mask hides it from. So they check V once per head (O(seq_kv d) against
// O(seq_q seq_kv d) work) and keep masked keys out of P V when it is not.
bool all_finite(ConstView<float> x);

// Floats rounded up to a whole number of cache lines, so every buffer carved
// from a workspace starts 64-byte aligned.
// Workspace sizes multiply the caller's shape sizes: each rung's workspace
// function builds them with checked_mul and checked_add (matrix.hpp), so a
// shape whose workspace cannot exist is refused instead of wrapping.
inline std::size_t line_floats(std::size_t floats) {
  constexpr std::size_t kLine = kCacheLineBytes / sizeof(float);
  return checked_add(floats, kLine - 1, "attention workspace") / kLine * kLine;
}
// line_floats(rows * cols), checked.
inline std::size_t line_floats(std::ptrdiff_t rows, std::ptrdiff_t cols) {
  return line_floats(checked_mul(static_cast<std::size_t>(rows), static_cast<std::size_t>(cols),
                                 "attention workspace"));
}
// The sum of workspace pieces, checked.
inline std::size_t add_floats(std::size_t a, std::size_t b) {
  return checked_add(a, b, "attention workspace");
}
// A team of `team` threads' workspaces of `per_thread` floats each, checked.
inline std::size_t team_floats(int team, std::size_t per_thread) {
  return checked_mul(static_cast<std::size_t>(team), per_thread, "attention workspace");
}

// Hands out consecutive pieces of a workspace; asking for more than it holds
// is a bug in a rung's workspace function, reported rather than overrun.
class Carver {
 public:
  explicit Carver(std::span<float> workspace) : rest_(workspace) {}
  float* take(std::size_t floats) {
    const std::size_t n = line_floats(floats);
    if (n > rest_.size()) throw std::logic_error("attention rung overran its declared workspace");
    float* p = rest_.data();
    rest_ = rest_.subspan(n);
    return p;
  }

 private:
  std::span<float> rest_;
};

// A slab of query rows of one head, with that head's whole K and V: the unit
// of work of the single-threaded rungs.
struct HeadRows {
  ConstView<float> q;        // rows x head_dim
  ConstView<float> k;        // seq_kv x head_dim
  ConstView<float> v;        // seq_kv x head_dim
  View<float> o;             // rows x head_dim
  std::ptrdiff_t first_row;  // index of q's first row in its head (for the causal mask)
  float scale;
  bool causal;
};
using HeadKernel = void (*)(const HeadRows& rows, std::span<float> workspace);

// Threads used for `shape`: no more than there are query rows in all.
int attention_team(const AttentionShape& shape, int threads);
// Most query rows of one head a thread's slab can hold.
std::ptrdiff_t slab_rows(const AttentionShape& shape, int threads);

// Runs a single-threaded rung on `threads` OpenMP threads: the B*H*seq_q query
// rows are cut into one contiguous slab per thread (a slab may cross heads),
// and thread t gets the t-th `per_thread` floats of the workspace.
void split_query_rows(HeadKernel kernel, const AttentionArgs& args, std::span<float> workspace,
                      std::size_t per_thread, int threads);

}  // namespace locality::cpu

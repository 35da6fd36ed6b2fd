// Machine probes: the measured ceilings every benchmark is compared with.
#pragma once

#include <cstdint>

namespace locality::bench {

// Floating-point operations done by one call of fma_probe(threads, reps).
std::int64_t fma_probe_flops(int threads, std::int64_t reps);

// Independent chains of vector FMAs on `threads` threads: nothing but the
// FMA units' throughput limits it. Returns a value so the work is not elided.
float fma_probe(int threads, std::int64_t reps);

// Best FLOP/s of a few short fma_probe runs (about 0.3 s in all): the peak
// that benchmarks report their `peak_fraction` against.
double measure_fma_peak(int threads);

// STREAM's triad a = b + s * c over three arrays of `floats` elements each,
// split across `threads` threads; bytes counted as STREAM does (3 arrays).
struct StreamArrays;
StreamArrays* stream_arrays(std::int64_t floats, int threads);
void stream_triad(StreamArrays* arrays, int threads);
std::int64_t stream_triad_bytes(std::int64_t floats);

}  // namespace locality::bench

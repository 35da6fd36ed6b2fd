// Each timed run starts only once the program's other threads have stopped
// running. The ladder and its peers bring several thread pools into one
// process (GNU OpenMP, which MKL and BLIS use too, and two OpenBLAS builds),
// and a pool keeps its threads spinning for a while after its last call
// (OpenBLAS's for about 2^28 cycles, a tenth of a second). With the runs
// interleaved, a 2-thread run that started behind another library's
// spinning threads would share its cores with them for its first part.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>

namespace locality::bench {

// Waits until every other thread of this process (and of the helper processes
// also_wait_for names) has been off the CPU for a 5 ms window (read from
// /proc/self/task/*/schedstat), at most one second; where schedstat cannot be read, sleeps 0.25 s.
// A Google Benchmark Setup hook: it runs before each repetition, outside the timing.
void wait_for_idle_threads(const benchmark::State&);

// Counts `helper`'s threads as this process's own in wait_for_idle_threads
// (bench/fused_peers.py, whose libraries keep thread pools too).
void also_wait_for(pid_t helper);

}  // namespace locality::bench

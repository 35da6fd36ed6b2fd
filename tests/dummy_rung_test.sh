#!/usr/bin/env bash
# Adding a rung is one file, one registry line and one CMake line, and
# nothing else: in a copy of this checkout, a dummy CPU matmul rung is added
# exactly so, and it must keep the house rules for rung files
# (tests/rung_headers_test.py), show up in `locality list`, run and verify under
# `locality run`, be timed and verified by locality_bench (with its rung
# number in the JSON), and appear in the report's tables and in the rungs the
# plots draw, with no other edit anywhere.
#
#   bash tests/dummy_rung_test.sh      (run by tests/run.sh; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/deps.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The checkout's files as they are (tracked ones), without its builds, in a
# repository of their own so that the edit below can be counted.
git ls-files -z | xargs -0 cp --parents -t "$work"
cd "$work"
git init -q . && git add -A && git -c user.name=t -c user.email=t@t commit -qm base

# 1. One file: the rung.
cat >cpu/matmul/6_dummy.cpp <<'EOF'
// Rung 6 -- dummy: a test's rung (tests/dummy_rung_test.sh), j-i-k order.
//
// Idea: rung 0's dot products, taken column of C by column of C.
// Locality: B's column is walked down its rows for every row of A, one
//   cache line per element, and C is written down its columns; nothing is
//   reused from a cache that rung 0 does not already reuse.
// Cost: m n k multiply-adds, each on a strided load of B, as in rung 0,
//   and a strided store per element of C.
// Edges: any m, n, k (k = 0 writes zeros). It exists to prove that a rung
//   is one file, one registry line and one CMake line: tests,
//   benchmarks, the driver, the report and the plots all find it.
#include "locality/matmul.hpp"

namespace locality::cpu {

void dummy_matmul(ConstView<float> a, ConstView<float> b, View<float> c) {
  for (std::ptrdiff_t j = 0; j < b.cols(); ++j) {
    for (std::ptrdiff_t i = 0; i < a.rows(); ++i) {
      float sum = 0.0f;
      for (std::ptrdiff_t p = 0; p < a.cols(); ++p) sum += a(i, p) * b(p, j);
      c(i, j) = sum;
    }
  }
}

}  // namespace locality::cpu
EOF
# 2. One registry line, above the marker that ends the list.
sed -i 's|^  /\* a new rung: one line above this one \*/|  SERIAL(6, dummy, 256, "a test'"'"'s rung") \\\n&|' cpu/matmul/registry.cpp
# 3. One CMake line.
sed -i 's|^  matmul/5_parallel.cpp$|&\n  matmul/6_dummy.cpp|' cpu/CMakeLists.txt
git add -A
[[ "$(git diff --cached --numstat | awk '$3 != "cpu/matmul/6_dummy.cpp" {print $1 "+" $2 "-" $3}' | sort | tr '\n' ' ')" == \
   "1+0-cpu/CMakeLists.txt 1+0-cpu/matmul/registry.cpp " ]] ||
  { git diff --cached --stat; echo "dummy rung: FAIL: the edit is not one file + one line + one line"; exit 1; }

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLOCALITY_CUDA=OFF -DLOCALITY_BUILD_TESTS=OFF \
  >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" --target locality_cli locality_bench >>build.log 2>&1 ||
  { tail -30 build.log; exit 1; }

fail() { echo "dummy rung: FAIL: $*"; exit 1; }
"$LOCALITY_PYTHON" tests/rung_headers_test.py >headers.log 2>&1 ||
  { cat headers.log; fail "the rung file or its registry line breaks the house rules"; }
build/bench/locality list | grep -Eq '^matmul +6 +dummy +cpu' || fail "not in locality list"
build/bench/locality run matmul dummy --m 37 --n 41 --k 29 --threads 2 | grep -q "verify: ok" ||
  fail "locality run matmul dummy did not verify"
build/bench/locality_bench --locality_family=matmul --locality_sizes=64,512 --locality_threads=1 \
  --benchmark_filter='cpu/matmul/(naive|dummy|packed|eigen)/' --benchmark_min_time=0.01 \
  --benchmark_out=bench.json --benchmark_out_format=json >bench.log 2>&1 ||
  { tail -20 bench.log; fail "locality_bench failed"; }
grep -q '"name": "cpu/matmul/dummy/64x64x64/omp_threads:1/real_time"' bench.json ||
  fail "no dummy benchmark in the JSON"
grep -q 'cpu/matmul/dummy/512x512x512' bench.json &&
  fail "dummy timed past its largest size (256), which its registry line set"
"$LOCALITY_PYTHON" bench/report.py bench.json >report.md || fail "report.py failed"
grep -q '^| 6 | dummy |' report.md || fail "no dummy row in the report's ladder table"
grep -q '^| dummy |' report.md || fail "no dummy row in the report's size table"
"$LOCALITY_PYTHON" - <<'PY' || fail "the plots do not draw the dummy rung"
import os, sys
sys.path.insert(0, "bench")
import plots, report
drawn = []
real = plots.ladder_bars
def spy(path, title, rungs, *args, **kwargs):
    drawn.append(list(rungs))
    return real(path, title, rungs, *args, **kwargs)
plots.ladder_bars = spy
report.write_plots(report.load("bench.json"), "matmul", "plots", None)
assert drawn and all(r[-1] == "dummy" for r in drawn), drawn
assert os.path.getsize("plots/matmul_ladder.png") > 0
PY
echo "dummy rung: one file, one registry line, one CMake line: in locality list, locality run," \
  "locality_bench (rung 6 in the JSON, stopped at its size), the report's tables and the plots"

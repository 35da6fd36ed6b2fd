#!/usr/bin/env bash
# gpu/run_on_device.sh with stand-ins for the carried binaries and for
# compute-sanitizer, where no GPU is. The tests run rung by rung: a rung
# whose tests never finish is stopped after --test-limit seconds, one whose
# tests fail or crash is named with its test, the other rungs' tests still
# run, and both are left out of the sanitizers, of the benchmarks (the
# ladder's filter names the rungs kept) and of the tests that run every
# rung; --skip
# leaves rungs out of a call that runs no tests. A hang under a sanitizer
# is stopped after --limit and the next one still runs; a run whose steps
# all pass exits 0, even with no benchmark to list; no usable device and
# bad flags exit 2 with a line that says why.
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $1"
  for f in gpu.log tests.txt; do [[ -f "$work/out/$f" ]] && cat "$work/out/$f"; done
  cat "$work/calls" 2>/dev/null
  exit 1
}

# A copy of the script in a tree of its own, with a carried "build".
mkdir -p "$work/tree/gpu" "$work/tree/.gpu-carry/bin" "$work/tree/.gpu-carry/lib" "$work/path"
cp "$source_dir/gpu/run_on_device.sh" "$work/tree/gpu/"
echo 0123456789ab >"$work/tree/.gpu-carry/commit"
touch "$work/tree/.gpu-carry/bin/locality"
tests="$work/tree/.gpu-carry/bin/locality_tests" bench="$work/tree/.gpu-carry/bin/locality_bench"
# The stand-in test binary: two ladders, three rungs; MODE says how the
# matmul_bf16 rungs behave. Every call is written to $CALLS.
cat >"$tests" <<'EOF'
#!/usr/bin/env bash
echo "tests $*" >>"$CALLS"
run() { echo "[ RUN      ] $1"; }
ok() { echo "[       OK ] $1 (1 ms)"; echo "[  PASSED  ] 1 test."; }
case "$*" in
  *--gtest_list_tests*)
    printf '%s\n' "Gpu/GpuBf16MatmulRung." '  Primes/mma_sync  # GetParam() = "mma_sync"' \
      '  Primes/wgmma  # GetParam() = "wgmma"' '  Edges/mma_sync  # GetParam() = "mma_sync"' \
      '  Edges/wgmma  # GetParam() = "wgmma"' "Gpu/GpuAttentionRung." \
      '  Tiny/flash  # GetParam() = "flash"' ;;
  *GpuDevice*)
    if [[ $MODE == no_device ]]; then
      # GoogleTest's words for a skip: "file:line: Skipped", the reason under it.
      printf '%s\n' "[ RUN      ] GpuDevice.Probe" "tests/gpu_test.cpp:1: Skipped" \
        "no usable CUDA device: stand-in" "[  SKIPPED ] GpuDevice.Probe (0 ms)"
    else
      echo "[  PASSED  ] 1 test."
    fi ;;
  *'filter=Gpu/GpuBf16MatmulRung.*/wgmma')
    run Gpu/GpuBf16MatmulRung.Primes/wgmma
    [[ $MODE == hang ]] && exec sleep 600
    [[ $MODE == crash ]] && kill -SEGV $$
    ok Gpu/GpuBf16MatmulRung.Primes/wgmma ;;
  *'filter=Gpu/GpuBf16MatmulRung.*/mma_sync')
    run Gpu/GpuBf16MatmulRung.Primes/mma_sync
    if [[ $MODE == fail ]]; then
      echo "[  FAILED  ] Gpu/GpuBf16MatmulRung.Primes/mma_sync (2 ms)"
      echo "[  FAILED  ] 1 test, listed below:"
      exit 1
    fi
    ok Gpu/GpuBf16MatmulRung.Primes/mma_sync ;;
  *NotMultiplesOfAnyTile*)  # the sanitizers' list
    run Gpu/GpuBf16MatmulRung.NotMultiplesOfAnyTile/wgmma
    [[ $MODE == hang_under_sanitizer && -n ${SANITIZED:-} ]] && exec sleep 600
    ok Gpu/GpuBf16MatmulRung.NotMultiplesOfAnyTile/wgmma ;;
  *)
    run GpuRegistry.Stand
    ok GpuRegistry.Stand ;;
esac
EOF
# The stand-in benchmark binary: lists three matmul_bf16 benchmarks, and
# writes an empty result where asked.
cat >"$bench" <<'EOF'
#!/usr/bin/env bash
echo "bench $*" >>"$CALLS"
if [[ "$*" == *--benchmark_list_tests* ]]; then
  printf '%s\n' gpu/matmul_bf16/cublas/256x256x256 gpu/matmul_bf16/mma_sync/256x256x256 \
    gpu/matmul_bf16/wgmma/256x256x256
  exit 0
fi
for a in "$@"; do
  [[ $a == --benchmark_out=* ]] && echo '{"context": {}, "benchmarks": []}' >"${a#--benchmark_out=}"
done
exit 0
EOF
# compute-sanitizer --tool T --error-exitcode N PROGRAM ARGS...: runs PROGRAM.
printf '#!/usr/bin/env bash\nshift 4\nSANITIZED=1 exec "$@"\n' >"$work/path/compute-sanitizer"
chmod +x "$tests" "$bench" "$work/path/compute-sanitizer"
run() {  # run MODE ARGS...: the script's exit status in $rc, its time in $took
  local start=$SECONDS
  rc=0
  rm -rf "$work/out" "$work/calls"
  MODE=$1 CALLS="$work/calls" PATH="$work/path:$PATH" bash "$work/tree/gpu/run_on_device.sh" \
    "$work/out" "${@:2}" >"$work/stdout" 2>"$work/stderr" || rc=$?
  took=$((SECONDS - start))
}
called() { grep -qF -- "$1" "$work/calls"; }  # called TEXT: some call's arguments hold TEXT

run hang --steps tests,sanitize,bench --test-limit 2
((rc == 1)) || fail "a hanging rung: exit $rc, not 1"
((took < 40)) || fail "a hanging rung held the script for $took s with --test-limit 2"
grep -qx "matmul_bf16/wgmma stopped after 2 s (last started: Gpu/GpuBf16MatmulRung.Primes/wgmma) ([0-9]* s)" \
  "$work/out/tests.txt" || fail "tests.txt does not name the rung that hung and its test"
grep -qx "matmul_bf16/mma_sync passed ([0-9]* s)" "$work/out/tests.txt" ||
  fail "the rung after the one that hung did not run, or did not pass"
grep -qx "attention/flash passed ([0-9]* s)" "$work/out/tests.txt" || fail "the other ladder's rung did not run"
grep -q "^gpu: the tests of matmul_bf16/wgmma stopped after 2 s" "$work/stderr" || fail "no line on stderr for the hang"
called "filter=Gpu*-Gpu/*:*Bench.*" || fail "the tests that run every rung were not left out"
called "/*-Gpu/GpuBf16MatmulRung.*/wgmma" || fail "the sanitizers did not leave the hung rung out"
called "filter=^gpu/matmul_bf16/(cublas|mma_sync)/ " || fail "the benchmarks did not leave the hung rung out"
called "filter=^gpu/matmul/[a-z_0-9]+/ " || fail "a ladder with no rung left out lost its filter"
[[ -s "$work/out/gpu_matmul_bf16.json" ]] || fail "the benchmarks' file was not written"
[[ $(tail -n "$(($(wc -l <"$work/out/tests.txt") + 1))" "$work/stdout") == \
  $(printf '%s\n' "== the tests, rung by rung (tests.txt)" "$(cat "$work/out/tests.txt")") ]] ||
  fail "the output does not end with each rung's verdict"
echo "ok: a rung that hangs is stopped after --test-limit and named, the others' tests run, it is left out after, and the output ends with each rung's verdict (${took} s)"

run fail --steps tests,sanitize
((rc == 1)) || fail "a failing rung: exit $rc, not 1"
grep -qx "matmul_bf16/mma_sync failed (exit 1: Gpu/GpuBf16MatmulRung.Primes/mma_sync) ([0-9]* s)" \
  "$work/out/tests.txt" || fail "tests.txt does not name the failing rung and its test"
grep -qx "matmul_bf16/wgmma passed ([0-9]* s)" "$work/out/tests.txt" || fail "the other rungs' tests did not run"
called "/*-Gpu/GpuBf16MatmulRung.*/mma_sync" || fail "the sanitizers did not leave the failing rung out"
echo "ok: a rung whose tests fail is named with the test and left out of the sanitizers"

run crash --steps tests
((rc == 1)) || fail "a rung that crashes: exit $rc, not 1"
grep -qx "matmul_bf16/wgmma failed (exit 139: in Gpu/GpuBf16MatmulRung.Primes/wgmma) ([0-9]* s)" \
  "$work/out/tests.txt" || fail "tests.txt does not name the test the rung crashed in"
echo "ok: a rung that crashes is named with the test it was running, not another rung's"

# A hang under a sanitizer only (the tests finish): stopped, named, and the
# next sanitizer still runs.
run hang_under_sanitizer --steps tests,sanitize --limit 2
((rc == 1)) || fail "a hang under the sanitizers: exit $rc, not 1"
for tool in memcheck racecheck; do
  grep -q "^gpu: compute-sanitizer --tool $tool stopped after 2 s .*NotMultiplesOfAnyTile/wgmma" "$work/out/gpu.log" ||
    fail "the $tool step did not run, or was not stopped and named"
  grep -q "^== $tool took" "$work/out/gpu.log" || fail "no time for the $tool step"
done
echo "ok: a hang under a sanitizer is stopped and named, and the next one runs"

run pass --steps tests,sanitize
((rc == 0)) || fail "a run whose steps pass (no benchmarks): exit $rc, not 0"
[[ $(grep -c ' passed (' "$work/out/tests.txt") == 4 ]] || fail "not every rung (and the rest) passed"
grep -qxF "tests --gtest_filter=Gpu*-Gpu/*" "$work/calls" || fail "the tests of no one rung did not run in full"
echo "ok: a run whose steps pass exits 0, every rung's tests in a process of its own"

run pass --steps bench --skip matmul_bf16/wgmma,attention/flash
((rc == 0)) || fail "--skip: exit $rc, not 0"
called "filter=^gpu/matmul_bf16/(cublas|mma_sync)/ " || fail "--skip did not leave the rung out of its benchmarks"
! called "tests --gtest_filter=Gpu/" || fail "--steps bench ran tests"
echo "ok: --skip leaves rungs out of a call that runs no tests"

run no_device
((rc == 2)) || fail "no usable device: exit $rc, not 2"
grep -q "no usable CUDA device" "$work/stderr" || fail "no usable device: the reason is not printed"
echo "ok: no usable device exits 2 with the reason"

for bad in "--limit 0" "--limit -5" "--limit abc" "--limit 10000" "--test-limit 0" "--skip wgmma" \
  "--skip matmul_bf16/wgmma," "--skip a/b;ls"; do
  read -r flag value <<<"$bad"
  run pass "$flag" "$value"
  ((rc == 2)) || fail "$bad: exit $rc, not 2"
  grep -q -- "$flag takes .*, got '$value'" "$work/stderr" || fail "$bad: no message"
done
echo "ok: bad --limit, --test-limit and --skip exit 2 with a message"

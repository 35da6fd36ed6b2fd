#!/usr/bin/env bash
# gpu/run_on_device.sh with stand-ins for the carried binaries and for
# compute-sanitizer, where no GPU is: a GPU test that never finishes is
# stopped after --limit seconds and named in the log, the sanitizers (the
# same kernels) skipped; a hang under a sanitizer is stopped too and the
# next one still runs; a run whose steps all pass exits 0, even with no
# benchmark to list; no usable device and a bad --limit exit 2 with a line
# that says why.
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $1"; [[ -f "$work/out/gpu.log" ]] && cat "$work/out/gpu.log"; exit 1; }

# A copy of the script in a tree of its own, with a carried "build".
mkdir -p "$work/tree/gpu" "$work/tree/.gpu-carry/bin" "$work/tree/.gpu-carry/lib" "$work/path"
cp "$source_dir/gpu/run_on_device.sh" "$work/tree/gpu/"
echo 0123456789ab >"$work/tree/.gpu-carry/commit"
touch "$work/tree/.gpu-carry/bin/locality_bench" "$work/tree/.gpu-carry/bin/locality"
tests="$work/tree/.gpu-carry/bin/locality_tests"
# The stand-in test binary: MODE says how the GPU tests behave.
cat >"$tests" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  *GpuDevice*)
    if [[ $MODE == no_device ]]; then
      # GoogleTest's words for a skip: "file:line: Skipped", the reason under it.
      printf '%s\n' "[ RUN      ] GpuDevice.Probe" "tests/gpu_test.cpp:1: Skipped" \
        "no usable CUDA device: stand-in" "[  SKIPPED ] GpuDevice.Probe (0 ms)"
    else
      echo "[  PASSED  ] 1 test."
    fi ;;
  *)
    echo "[ RUN      ] Gpu/GpuBf16MatmulRung.Primes/wgmma"
    [[ $MODE == hang || ($MODE == hang_under_sanitizer && -n ${SANITIZED:-}) ]] && exec sleep 600
    echo "[       OK ] Gpu/GpuBf16MatmulRung.Primes/wgmma (1 ms)"
    echo "[  PASSED  ] 1 test." ;;
esac
EOF
# compute-sanitizer --tool T --error-exitcode N PROGRAM ARGS...: runs PROGRAM.
printf '#!/usr/bin/env bash\nshift 4\nSANITIZED=1 exec "$@"\n' >"$work/path/compute-sanitizer"
chmod +x "$tests" "$work/path/compute-sanitizer"
run() {  # run MODE ARGS...: the script's exit status in $rc, its time in $took
  local start=$SECONDS
  rc=0
  MODE=$1 PATH="$work/path:$PATH" bash "$work/tree/gpu/run_on_device.sh" "$work/out" "${@:2}" \
    >"$work/stdout" 2>"$work/stderr" || rc=$?
  took=$((SECONDS - start))
}

run hang --steps tests,sanitize --limit 2
((rc == 1)) || fail "a hanging GPU test: exit $rc, not 1"
((took < 30)) || fail "a hanging GPU test held the script for $took s with --limit 2"
grep -q "^gpu: the GPU tests stopped after 2 s .*the last test started: Gpu/GpuBf16MatmulRung.Primes/wgmma" \
  "$work/out/gpu.log" || fail "the log does not name the test that hung"
grep -q "^gpu: the GPU tests stopped after 2 s" "$work/stderr" || fail "no line on stderr for the hang"
grep -q "^gpu: compute-sanitizer skipped: the GPU tests did not finish" "$work/out/gpu.log" ||
  fail "the sanitizers were not skipped after the tests hung"
echo "ok: a hanging GPU test is stopped after --limit and named; the sanitizers skipped (${took} s)"

# A hang under a sanitizer only (the tests finish): stopped, named, and the
# next sanitizer still runs.
rm -rf "$work/out"
run hang_under_sanitizer --steps tests,sanitize --limit 2
((rc == 1)) || fail "a hang under the sanitizers: exit $rc, not 1"
for tool in memcheck racecheck; do
  grep -q "^gpu: compute-sanitizer --tool $tool stopped after 2 s .*Primes/wgmma" "$work/out/gpu.log" ||
    fail "the $tool step did not run, or was not stopped and named"
  grep -q "^== $tool took" "$work/out/gpu.log" || fail "no time for the $tool step"
done
echo "ok: a hang under a sanitizer is stopped and named, and the next one runs"

rm -rf "$work/out"
run pass --steps tests,sanitize
((rc == 0)) || fail "a run whose steps pass (no benchmarks): exit $rc, not 0"
echo "ok: a run whose steps pass exits 0"

rm -rf "$work/out"
run no_device
((rc == 2)) || fail "no usable device: exit $rc, not 2"
grep -q "no usable CUDA device" "$work/stderr" || fail "no usable device: the reason is not printed"
echo "ok: no usable device exits 2 with the reason"

for bad in 0 -5 abc 10000; do
  run pass --limit "$bad"
  ((rc == 2)) || fail "--limit $bad: exit $rc, not 2"
  grep -q -- "--limit takes 1 to 9999 seconds, got '$bad'" "$work/stderr" || fail "--limit $bad: no message"
done
echo "ok: a bad --limit exits 2 with a message"

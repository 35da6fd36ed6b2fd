#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests, compute-sanitizer, and the
# GPU benchmarks, with everything written to the folder named first.
#
#   bash gpu/run_on_device.sh OUTDIR [--quick] [--steps tests,sanitize,bench,sass,torch,profile]
#                                    [--limit SECONDS] [--test-limit SECONDS] [--skip LADDER/RUNG,...]
#
# Needs .gpu-carry/ from gpu/pack.sh (built on a machine with the packages;
# carried along), or builds the `gpu` preset here when CMake finds Eigen,
# Google Benchmark and GoogleTest. Writes, each atomically:
#   OUTDIR/gpu_matmul.json, gpu_matmul_bf16.json, gpu_attention.json,
#   gpu_attention_bf16.json
#       Google Benchmark JSON of the four ladders; PyTorch's attention
#       (gpu/torch_sdpa.py, where python3 has torch) merged into the last
#       two, in float32 and in bf16;
#   OUTDIR/sass.txt     each bf16 kernel's count of HMMA or HGMMA instructions;
#   OUTDIR/gpu_profile.json   with the `profile` step: every GPU rung under
#       Nsight Compute (gpu/ncu_profile.py);
#   OUTDIR/tests.txt    each rung's tests: passed, failed or stopped, and how long;
#   OUTDIR/gpu.log      everything printed, and a short table last.
# --quick: matmul at n <= 2048 and attention at seq <= 2048 only. --steps
# picks what runs (default: tests,sanitize,bench,sass,torch). Each step
# prints its own time.
#
# A kernel that never finishes (an mbarrier whose phase never completes
# spins for ever) or that traps (its process's CUDA context is then lost)
# must not cost a short device session more than its own share. So the
# tests run rung by rung, each rung's in a process of its own stopped after
# --test-limit seconds (default 60), and a rung whose tests fail or are
# stopped is named in tests.txt and left out of the sanitizers, the
# benchmarks and the profile that follow, as are the rungs --skip names
# (ladder/rung, as tests.txt writes them: attention_bf16/flash_pingpong),
# for a later call that runs no tests. No other program of a step runs past
# --limit seconds (default 240); the log then names the test that was
# running.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash gpu/run_on_device.sh OUTDIR [--quick] [--steps tests,sanitize,bench,sass,torch,profile] [--limit SECONDS] [--test-limit SECONDS] [--skip LADDER/RUNG,...]"
out="${1:?$usage}"
shift
quick="" steps="tests,sanitize,bench,sass,torch" limit=240 test_limit=60 skip=""
while (($#)); do
  case "$1" in
    --quick) quick=--quick ;;
    --steps) steps="${2:?$usage}"; shift ;;
    --limit) limit="${2:?$usage}"; shift ;;
    --test-limit) test_limit="${2:?$usage}"; shift ;;
    --skip) skip="${2:?$usage}"; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
for s in ${steps//,/ }; do
  [[ "$s" =~ ^(tests|sanitize|bench|sass|torch|profile)$ ]] || { echo "unknown step '$s'; $usage" >&2; exit 2; }
done
[[ "$limit" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "--limit takes 1 to 9999 seconds, got '$limit'; $usage" >&2; exit 2; }
[[ "$test_limit" =~ ^[1-9][0-9]{0,3}$ ]] ||
  { echo "--test-limit takes 1 to 9999 seconds, got '$test_limit'; $usage" >&2; exit 2; }
[[ "$skip" =~ ^([a-z_0-9]+/[a-z_0-9]+(,[a-z_0-9]+/[a-z_0-9]+)*)?$ ]] ||
  { echo "--skip takes ladder/rung words separated by commas, got '$skip'; $usage" >&2; exit 2; }
step() { [[ ",$steps," == *",$1,"* ]]; }
# limited WHAT SECONDS CMD...: CMD, stopped after SECONDS (exit 124), with a
# line in the log and on this script's stderr (fd 3: the calls send theirs
# to the log) that says so and which test it was running.
exec 3>&2
limited() {
  local what=$1 seconds=$2 rc=0
  shift 2
  timeout -k 10 "$seconds" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "gpu: $what stopped after $seconds s (a kernel that never finishes?);" \
      "the last test started: $(grep -E '^\[ RUN' "$log" | tail -n 1 | sed 's/^\[ RUN *\] //')" |
      tee -a "$log" >&3
  fi
  return "$rc"
}
timed() {  # timed NAME: the seconds since the step began
  echo "== $1 took $((SECONDS - step_start)) s" | tee -a "$log"
}
mkdir -p "$out"
log="$out/gpu.log"
: >"$log"

if [[ -x .gpu-carry/bin/locality_tests ]]; then
  tests=.gpu-carry/bin/locality_tests bench=.gpu-carry/bin/locality_bench
  cli=.gpu-carry/bin/locality
  export LD_LIBRARY_PATH="$PWD/.gpu-carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  commit=$(cat .gpu-carry/commit)
  echo "gpu: carried build of commit $commit" | tee -a "$log"
else
  cmake --preset gpu -DCMAKE_CUDA_ARCHITECTURES=native >>"$log" 2>&1
  cmake --build --preset gpu -j "$(nproc)" >>"$log" 2>&1
  tests=build/gpu/tests/locality_tests bench=build/gpu/bench/locality_bench
  cli=build/gpu/bench/locality
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv | tee -a "$log"
fi
# No usable device: say why and stop (the tests would only skip).
if ! probe=$("$tests" --gtest_filter=GpuDevice.* 2>&1); then
  echo "gpu: the test binary does not run here:" >&2
  echo "$probe" | tail -n 3 >&2
  exit 2
fi
if grep -q "Skipped" <<<"$probe"; then
  echo "gpu: $(grep -A1 'Skipped' <<<"$probe" | tail -n 1)" >&2
  exit 2
fi

status=0
# The ladders' test suites (Gpu/<suite>.<test>/<rung>) and their benchmark
# names (gpu/<ladder>/<rung>/...).
suite_of() {
  case "$1" in
    matmul) echo GpuMatmulRung ;; attention) echo GpuAttentionRung ;;
    matmul_bf16) echo GpuBf16MatmulRung ;; attention_bf16) echo GpuBf16AttentionRung ;;
    *) echo "$1" ;;
  esac
}
ladder_of() {
  case "$1" in
    GpuMatmulRung) echo matmul ;; GpuAttentionRung) echo attention ;;
    GpuBf16MatmulRung) echo matmul_bf16 ;; GpuBf16AttentionRung) echo attention_bf16 ;;
    *) echo "$1" ;;
  esac
}
bad=" ${skip//,/ } "  # the rungs left out: ladder/rung words between spaces
if step tests; then
  step_start=$SECONDS
  echo "== GPU tests, rung by rung" | tee -a "$log"
  : >"$out/tests.txt"
  # "Gpu/GpuMatmulRung." and then its tests, "  Primes/naive  # GetParam() = ...".
  groups=$("$tests" --gtest_list_tests --gtest_filter='Gpu/*' 2>>"$log" |
    awk '/^[^ ]/ {suite = $1; sub(/^Gpu\//, "", suite); sub(/\.$/, "", suite); next}
         {rung = $1; sub(/.*\//, "", rung); if (!seen[suite " " rung]++) print suite, rung}')
  while read -r suite rung; do
    [[ -n "$suite" ]] || continue
    name="$(ladder_of "$suite")/$rung"
    if [[ "$bad" == *" $name "* ]]; then
      echo "$name skipped (--skip)" | tee -a "$log" "$out/tests.txt"
      continue
    fi
    start=$SECONDS rc=0 from=$(wc -l <"$log")
    limited "the tests of $name" "$test_limit" "$tests" --gtest_filter="Gpu/$suite.*/$rung" \
      >>"$log" 2>&1 || rc=$?
    # What this rung's run printed: the test it started last, the one that failed.
    started=$(tail -n "+$((from + 1))" "$log" | { grep -E '^\[ RUN' || true; } | tail -n 1 |
      sed 's/^\[ RUN *\] //')
    failed=$(tail -n "+$((from + 1))" "$log" | { grep -E '^\[  FAILED  \] Gpu/' || true; } |
      tail -n 1 | sed 's/^\[  FAILED  \] //; s/ (.*//')
    case $rc in
      0) verdict=passed ;;
      124 | 137) verdict="stopped after $test_limit s (last started: ${started:-none})" ;;
      *) verdict="failed (exit $rc: ${failed:-in ${started:-no test}})" ;;
    esac
    ((rc == 0)) || { bad+="$name "; status=1; }
    echo "$name $verdict ($((SECONDS - start)) s)" | tee -a "$log" "$out/tests.txt"
  done <<<"$groups"
  # The tests of no one rung; the benchmark ones run every rung, so not
  # once a rung is known to fail or hang.
  others='Gpu*-Gpu/*'
  [[ -z "${bad// /}" ]] || others+=':*Bench.*'
  start=$SECONDS rc=0
  limited "the other GPU tests" "$test_limit" "$tests" --gtest_filter="$others" >>"$log" 2>&1 || rc=$?
  if ((rc == 0)); then verdict=passed; else verdict="failed or stopped (exit $rc)" status=1; fi
  echo "others $verdict ($((SECONDS - start)) s)$([[ -z "${bad// /}" ]] || echo ', benchmark tests left out')" |
    tee -a "$log" "$out/tests.txt"
  timed tests
fi

# Every rung of the ladders at ragged sizes under memcheck (out-of-bounds
# and misaligned accesses) and racecheck (shared-memory races); matmul rung
# 6's wide tiles too; not the rungs left out above (they would only hang or
# fail again).
sanitized='Gpu/GpuMatmulRung.NotMultiplesOfAnyTile/*:Gpu/GpuMatmulRung.WideTilesOnMostSms/pipelined:Gpu/GpuAttentionRung.SeqQAndSeqKvDifferBothWays/*:Gpu/GpuBf16MatmulRung.NotMultiplesOfAnyTile/*:Gpu/GpuBf16AttentionRung.SeqQAndSeqKvDifferBothWays/*:Gpu/GpuBf16AttentionRung.NonFiniteInputsPropagateAsDocumented/*'
left_out=""
for name in $bad; do left_out+="${left_out:+:}Gpu/$(suite_of "${name%/*}").*/${name#*/}"; done
[[ -z "$left_out" ]] || sanitized+="-$left_out"
if step sanitize; then
  for tool in memcheck racecheck; do
    step_start=$SECONDS
    echo "== compute-sanitizer --tool $tool" | tee -a "$log"
    limited "compute-sanitizer --tool $tool" "$limit" compute-sanitizer --tool "$tool" --error-exitcode 3 \
      "$tests" --gtest_filter="$sanitized" >>"$log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$log" | tail -n 2 || true
    timed "$tool"
  done
fi

# One JSON file per ladder, each written atomically; a ladder's rungs left
# out above are not in its filter (Google Benchmark's regex has no negative
# lookahead here: the rungs kept are named instead).
bench_ladder() {  # bench_ladder LADDER FILTER
  local tmp="$out/.gpu_$1.json.tmp" f=$2 name kept=()
  echo "== GPU benchmarks: $1" | tee -a "$log"
  if [[ "$bad" == *" $1/"* ]]; then
    while read -r name; do
      [[ -z "$name" || "$bad" == *" $1/$name "* ]] || kept+=("$name")
    done < <("$bench" --locality_family=gpu --benchmark_list_tests --benchmark_filter="$f" 2>>"$log" |
      awk -F/ '{print $3}' | sort -u)
    if ((${#kept[@]} == 0)); then
      echo "gpu: no $1 benchmark left to run" | tee -a "$log"
      return
    fi
    f=${f/"$any"/"($(IFS='|'; echo "${kept[*]}"))"}
    echo "gpu: $1 benchmarks of ${kept[*]} only" | tee -a "$log"
  fi
  limited "the $1 benchmarks" "$limit" "$bench" --locality_family=gpu --benchmark_filter="$f" --benchmark_repetitions=5 \
    --benchmark_enable_random_interleaving=true --benchmark_display_aggregates_only=true \
    --benchmark_min_time=0.2 --benchmark_out="$tmp" --benchmark_out_format=json \
    --benchmark_context=git_commit="$commit" >>"$log" 2>&1 || status=1
  if [[ -s "$tmp" ]]; then mv "$tmp" "$out/gpu_$1.json"; else rm -f "$tmp"; fi
}
any='[a-z_0-9]+'  # a variant's name in the filters
if [[ "$quick" == --quick ]]; then
  matmul="^gpu/matmul/$any/(256|512|1024|2048)x"
  attention="^gpu/attention/$any/[0-9]+x[0-9]+x(512|1024|2048)x"
  bf16="^gpu/matmul_bf16/$any/(256|512|1024|2048)x"
  attention_bf16="^gpu/attention_bf16/$any/[0-9]+x[0-9]+x(512|1024|2048)x"
else
  matmul="^gpu/matmul/$any/" attention="^gpu/attention/$any/" bf16="^gpu/matmul_bf16/$any/"
  attention_bf16="^gpu/attention_bf16/$any/"
fi
if step bench; then
  for ladder in matmul attention matmul_bf16 attention_bf16; do
    step_start=$SECONDS
    case "$ladder" in
      matmul) f="$matmul" ;; attention) f="$attention" ;; matmul_bf16) f="$bf16" ;;
      *) f="$attention_bf16" ;;
    esac
    bench_ladder "$ladder" "$f"
    timed "$ladder benchmarks"
  done
fi
# Which tensor-core instructions each bf16 kernel was compiled to (HMMA:
# mma.sync, as wmma and rung 2 use; HGMMA: Hopper's wgmma), from the binary,
# each rung's checked against its architecture (gpu/sass.py).
if step sass; then
  step_start=$SECONDS
  echo "== SASS of the bf16 kernels" | tee -a "$log"
  python3 gpu/sass.py "$tests" --check "$cli" --out "$out/sass.txt" 2>&1 | tee -a "$log" ||
    status=1
  timed sass
fi
# PyTorch's attention on the same shapes, merged into each ladder's file:
# float32 beside the attention ladder, bf16 beside attention_bf16.
if step torch; then
  for dtype in float32 bfloat16; do
    step_start=$SECONDS
    if [[ $dtype == float32 ]]; then file=gpu_attention f="$attention"; else file=gpu_attention_bf16 f="$attention_bf16"; fi
    echo "== torch scaled_dot_product_attention ($dtype)" | tee -a "$log"
    if limited "torch_sdpa.py ($dtype)" "$limit" python3 gpu/torch_sdpa.py --bench "$bench" --dtype "$dtype" --filter "$f" \
        --out "$out/.torch_sdpa.json" >>"$log" 2>&1 && [[ -s "$out/$file.json" ]]; then
      python3 bench/fused_peers.py --merge-into "$out/$file.json" \
        "$out/.torch_sdpa.json" >>"$log" 2>&1 || status=1
    else
      status=1
    fi
    rm -f "$out/.torch_sdpa.json"
    grep -E "^torch_sdpa" "$log" | tail -n 4 || true
    timed "torch $dtype"
  done
fi
# Every GPU rung under Nsight Compute (gpu/ncu_profile.py), but those left
# out above; each rung's case stopped after its own time limit.
if step profile; then
  step_start=$SECONDS
  echo "== ncu profile" | tee -a "$log"
  skipped=""
  for name in $bad; do skipped+="${skipped:+,}$name"; done
  python3 gpu/ncu_profile.py --locality "$cli" --out "$out/gpu_profile.json" --skip "$skipped" \
    >>"$log" 2>&1 || status=1
  grep -E "^profile" "$log" | tail -n 20 || true
  timed profile
fi
# The medians, last, for the reply's tail: name, time, and the counters;
# then each rung's tests, the lines a next call's --skip is made from.
grep -E "_median" "$log" | tr -s ' ' | cut -c1-200 | tail -n 60 || true
if step tests; then
  echo "== the tests, rung by rung (tests.txt)"
  cat "$out/tests.txt"
fi
exit "$status"

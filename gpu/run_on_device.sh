#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests, compute-sanitizer, and the
# GPU benchmarks, with everything written to the folder named first.
#
#   bash gpu/run_on_device.sh OUTDIR [--quick] [--steps tests,sanitize,bench,sass,torch,profile]
#                                    [--limit SECONDS]
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
#   OUTDIR/gpu.log      everything printed, and a short table last.
# --quick: matmul at n <= 2048 and attention at seq <= 2048 only. --steps
# picks what runs (default: tests,sanitize,bench,sass,torch). Each step
# prints its own time. --limit: the most seconds any one program of a step
# may run (default 240): a kernel that never finishes (an mbarrier whose
# phase never completes spins for ever) costs that much of a short device
# session, not all of it; the log then names the test that was running,
# and the steps after it still run (the sanitizers not, after the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash gpu/run_on_device.sh OUTDIR [--quick] [--steps tests,sanitize,bench,sass,torch,profile] [--limit SECONDS]"
out="${1:?$usage}"
shift
quick="" steps="tests,sanitize,bench,sass,torch" limit=240
while (($#)); do
  case "$1" in
    --quick) quick=--quick ;;
    --steps) steps="${2:?$usage}"; shift ;;
    --limit) limit="${2:?$usage}"; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
for s in ${steps//,/ }; do
  [[ "$s" =~ ^(tests|sanitize|bench|sass|torch|profile)$ ]] || { echo "unknown step '$s'; $usage" >&2; exit 2; }
done
[[ "$limit" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "--limit takes 1 to 9999 seconds, got '$limit'; $usage" >&2; exit 2; }
step() { [[ ",$steps," == *",$1,"* ]]; }
# limited WHAT CMD...: CMD, stopped after $limit seconds (exit 124), with a
# line in the log and on this script's stderr (fd 3: the calls send theirs
# to the log) that says so and which test it was running; `stopped` then
# names WHAT.
exec 3>&2
limited() {
  local what=$1 rc=0
  shift
  timeout -k 10 "$limit" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then
    stopped=$what
    echo "gpu: $what stopped after $limit s (a kernel that never finishes?);" \
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

status=0 stopped=""
if step tests; then
  step_start=$SECONDS
  echo "== GPU tests" | tee -a "$log"
  limited "the GPU tests" "$tests" --gtest_filter='Gpu*' >>"$log" 2>&1 || status=1
  tail -n 3 "$log"
  timed tests
fi

# Every rung of both ladders at ragged sizes under memcheck (out-of-bounds
# and misaligned accesses) and racecheck (shared-memory races); matmul rung
# 6's wide tiles too. Not after the tests hung: the sanitizers run the same
# kernels, and would only hang twice more.
if step sanitize && [[ "$stopped" == "the GPU tests" ]]; then
  echo "gpu: compute-sanitizer skipped: the GPU tests did not finish" | tee -a "$log" >&2
  status=1
elif step sanitize; then
  for tool in memcheck racecheck; do
    step_start=$SECONDS
    echo "== compute-sanitizer --tool $tool" | tee -a "$log"
    limited "compute-sanitizer --tool $tool" compute-sanitizer --tool "$tool" --error-exitcode 3 \
      "$tests" --gtest_filter='Gpu/GpuMatmulRung.NotMultiplesOfAnyTile/*:Gpu/GpuMatmulRung.WideTilesOnMostSms/pipelined:Gpu/GpuAttentionRung.SeqQAndSeqKvDifferBothWays/*:Gpu/GpuBf16MatmulRung.NotMultiplesOfAnyTile/*:Gpu/GpuBf16AttentionRung.SeqQAndSeqKvDifferBothWays/*:Gpu/GpuBf16AttentionRung.NonFiniteInputsPropagateAsDocumented/*' \
      >>"$log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$log" | tail -n 2 || true
    timed "$tool"
  done
fi

# One JSON file per ladder, each written atomically.
bench_ladder() {  # bench_ladder matmul|attention FILTER
  local tmp="$out/.gpu_$1.json.tmp"
  echo "== GPU benchmarks: $1" | tee -a "$log"
  limited "the $1 benchmarks" "$bench" --locality_family=gpu --benchmark_filter="$2" --benchmark_repetitions=5 \
    --benchmark_enable_random_interleaving=true --benchmark_display_aggregates_only=true \
    --benchmark_min_time=0.2 --benchmark_out="$tmp" --benchmark_out_format=json \
    --benchmark_context=git_commit="$commit" >>"$log" 2>&1 || status=1
  if [[ -s "$tmp" ]]; then mv "$tmp" "$out/gpu_$1.json"; else rm -f "$tmp"; fi
}
if [[ "$quick" == --quick ]]; then
  matmul='^gpu/matmul/[a-z_0-9]+/(256|512|1024|2048)x'
  attention='^gpu/attention/[a-z_0-9]+/[0-9]+x[0-9]+x(512|1024|2048)x'
  bf16='^gpu/matmul_bf16/[a-z_0-9]+/(256|512|1024|2048)x'
  attention_bf16='^gpu/attention_bf16/[a-z_0-9]+/[0-9]+x[0-9]+x(512|1024|2048)x'
else
  matmul='^gpu/matmul/' attention='^gpu/attention/' bf16='^gpu/matmul_bf16/'
  attention_bf16='^gpu/attention_bf16/'
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
# mma.sync, as wmma and rung 2 use; HGMMA: Hopper's wgmma), from the binary.
if step sass; then
  step_start=$SECONDS
  echo "== SASS of the bf16 kernels" | tee -a "$log"
  if cuobjdump -sass "$tests" >"$out/.sass" 2>>"$log"; then
    awk '/Function : / {f = $3} f ~ /bf16|bfloat16|mma/ && /HGMMA|HMMA/ {
           op = ($0 ~ /HGMMA/) ? "HGMMA" : "HMMA"; n[f " " op]++ }
         END {for (k in n) print k, n[k]}' "$out/.sass" | sort >"$out/sass.txt"
    tee -a "$log" <"$out/sass.txt"
  else
    status=1
  fi
  rm -f "$out/.sass"
  timed sass
fi
# PyTorch's attention on the same shapes, merged into each ladder's file:
# float32 beside the attention ladder, bf16 beside attention_bf16.
if step torch; then
  for dtype in float32 bfloat16; do
    step_start=$SECONDS
    if [[ $dtype == float32 ]]; then file=gpu_attention f="$attention"; else file=gpu_attention_bf16 f="$attention_bf16"; fi
    echo "== torch scaled_dot_product_attention ($dtype)" | tee -a "$log"
    if limited "torch_sdpa.py ($dtype)" python3 gpu/torch_sdpa.py --bench "$bench" --dtype "$dtype" --filter "$f" \
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
# Every GPU rung under Nsight Compute (gpu/ncu_profile.py).
if step profile; then
  step_start=$SECONDS
  echo "== ncu profile" | tee -a "$log"
  python3 gpu/ncu_profile.py --locality "$cli" --out "$out/gpu_profile.json" >>"$log" 2>&1 \
    || status=1
  grep -E "^profile" "$log" | tail -n 20 || true
  timed profile
fi
# The medians, last, for the reply's tail: name, time, and the counters.
grep -E "_median" "$log" | tr -s ' ' | cut -c1-200 | tail -n 60 || true
exit "$status"

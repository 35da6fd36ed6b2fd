#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, runs the
# CPU ladders (matmul, then attention) beside their peers and probes, writes
# results/<machine>/cpu_matmul.json and cpu_attention.json, the cache counts
# (cachegrind.json), the report (results/<machine>/README.md: tables and
# plots) and compares the run with the machine's baseline.
#
#   bash bench/run.sh            default sweep (about 10 minutes on 2 cores)
#   bash bench/run.sh --quick    every rung at small sizes, 1 repetition (about a minute);
#                                results under results/<machine>-quick/, no baseline
#   bash bench/run.sh --full     every size (matmul 64..4096, attention 256..8192), 5 repetitions
#   bash bench/run.sh --family attention   one ladder only
#   bash bench/run.sh --repetitions 5   more interleaved repetitions (default 3), for a noisy machine
#   bash bench/run.sh --pairs 20 rounds of the top matmul rung against each BLAS peer, call by
#                                call (default 10, 2 with --quick; 0: none)
#   bash bench/run.sh --label X  store under results/X/ (default: from the CPU model)
#   bash bench/run.sh --no-profile      skip the cachegrind profile (bench/cachegrind.py)
#   bash bench/run.sh --save-baseline   make this run the machine's baseline
#   bash bench/run.sh --update-readme   also write the tables into README.md and docs/
#   bash bench/run.sh --report-only --label X   no runs: rewrite results/X/README.md (tables,
#                                plots) from the JSON already there, e.g. after report.py changed
#   extra Google Benchmark flags go after --, e.g. -- --benchmark_filter=packed
#   LOCALITY_FUSED_PEERS="onnxruntime torch" bash bench/run.sh   also PyTorch's attention
#                                (opt-in: .venv/bin/pip install torch first, several GB)
#
# Every step after the benchmarks (profile, tables, plots, comparison) is
# optional: one that cannot run is skipped with one line saying why, and the
# job finishes the rest (exit 0; the skipped steps are listed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

sweep=default
repetitions=3
pairs=10
min_time=0.2
update_readme=0
profile=1
save_baseline=0
report_only=0
label=""
families=(matmul attention)
extra=()
while (($#)); do
  case "$1" in
    --full) sweep=full; repetitions=5 ;;
    --quick) sweep=quick; repetitions=1; pairs=2; min_time=0.05 ;;
    --update-readme) update_readme=1 ;;
    --label) label="${2:?--label needs a name}"; shift ;;
    --label=*) label="${1#--label=}" ;;
    --family) families=("${2:?--family needs matmul or attention}"); shift ;;
    --family=*) families=("${1#--family=}") ;;
    --repetitions) repetitions="${2:?--repetitions needs a count}"; shift ;;
    --repetitions=*) repetitions="${1#--repetitions=}" ;;
    --pairs) pairs="${2:?--pairs needs a count}"; shift ;;
    --pairs=*) pairs="${1#--pairs=}" ;;
    --no-profile) profile=0 ;;
    --save-baseline) save_baseline=1 ;;
    --report-only) report_only=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! "$repetitions" =~ ^[1-9][0-9]{0,2}$ ]]; then
  echo "bench/run.sh: --repetitions must be a whole number from 1 to 999, got '$repetitions'" >&2
  exit 2
fi
if [[ ! "$pairs" =~ ^(0|[1-9][0-9]{0,2})$ ]]; then
  echo "bench/run.sh: --pairs must be a whole number from 0 to 999, got '$pairs'" >&2
  exit 2
fi
for family in "${families[@]}"; do
  if [[ "$family" != matmul && "$family" != attention ]]; then
    echo "bench/run.sh: --family must be matmul or attention, got '$family'" >&2
    exit 2
  fi
done

source bench/deps.sh
locality_install_deps

model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
# The CPU's family and model numbers, as f<family>m<model> (f6m207).
cpu_id=$(awk -F: '/^cpu family/ {f = $2 + 0} /^model[ \t]*:/ {m = $2 + 0}
                 END {if (f != "") print "f" f "m" m}' /proc/cpuinfo 2>/dev/null || true)
if [[ -z "$label" ]]; then
  label=$(echo "${model:-cpu}" | tr 'A-Z' 'a-z' |
    sed -e 's/(r)//g; s/(tm)//g; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
  # Virtual machines often name only the line ("Intel(R) Xeon(R) Processor"),
  # which two generations share: the numbers keep their runs apart.
  [[ "$model" =~ [0-9] || -z "$cpu_id" ]] || label+="-$cpu_id"
  label+=-$(nproc)cores
  [[ "$sweep" == quick ]] && label+=-quick
fi
if [[ ! "$label" =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "bench/run.sh: label '$label' may hold only letters, digits, '.', '_' and '-'" >&2
  exit 2
fi

outdir="results/$label"
if ((report_only)) && [[ ! -f "$outdir/cpu_matmul.json" && ! -f "$outdir/cpu_attention.json" ]]; then
  echo "bench/run.sh: --report-only: no cpu_matmul.json or cpu_attention.json in $outdir" >&2
  exit 2
fi
if ((!report_only)); then
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$(nproc)"
fi

mkdir -p "$outdir"
# Temporaries of an earlier run that was killed before it could tidy up (the
# results beside them are whole: every file is replaced by a rename).
find "$outdir" "$outdir/baseline" -maxdepth 1 -type f \( -name '.cpu_*.json.??????' -o \
  -name '.README.md.??????' -o -name '.*.json.tmp' \) -delete 2>/dev/null || true
find "$outdir" -maxdepth 1 -type d -name '.turns.??????' -exec rm -rf {} + 2>/dev/null || true
# Interrupted (Ctrl-C, kill): stop the benchmarks and exit through the EXIT
# traps, which remove this run's temporaries.
bench_pid=""
trap '[[ -n "$bench_pid" ]] && kill "$bench_pid" 2>/dev/null; exit 130' INT
trap '[[ -n "$bench_pid" ]] && kill "$bench_pid" 2>/dev/null; exit 143' TERM
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Dirty means changed code; the result files and README this job rewrites do not count.
if [[ -n "$(git status --porcelain --untracked-files=no -- . ":!results" ":!README.md" 2>/dev/null)" ]]; then
  commit+="-dirty"
fi

# Everything after the benchmarks is optional: `late WHAT COMMAND...` runs one
# step; if it fails, one line says which and why, and the job goes on.
skipped=()
late() {
  local what=$1 status=0 log
  shift
  log=$(mktemp)
  "$@" 2>"$log" || status=$?
  cat "$log" >&2
  if ((status != 0)); then
    local why
    why=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | cut -c1-300)
    echo "locality: skipped $what (exit $status${why:+: $why})" >&2
    skipped+=("$what")
  fi
  rm -f "$log"
  return 0
}

# The fused attention peers (ONNX Runtime; PyTorch where asked for with
# LOCALITY_FUSED_PEERS="onnxruntime torch"): locality_bench runs
# bench/fused_peers.py with the virtual environment's Python as a helper, and
# each attention problem times them in its own turn, beside its rungs.
fused_flags=()
if [[ -x "$LOCALITY_VENV/bin/python" ]]; then
  fused_list=$(echo ${LOCALITY_FUSED_PEERS:-onnxruntime} | tr ' ' ',')
  fused_flags=(--locality_fused_peers="$fused_list" --locality_python="$LOCALITY_VENV/bin/python"
    --locality_fused_min_time="$min_time")
else
  echo "locality: no virtual environment at $LOCALITY_VENV (bench/deps.sh makes it);" \
    "the fused attention peers are left out" >&2
fi

# `run_family FAMILY OUT REPETITIONS [FLAG...]`: one ladder's benchmarks into OUT,
# written atomically, in a folder of turns that in_turns removes on exit.
run_family() {
  local family=$1 out=$2 reps=$3 tmp start status=0 family_flags=()
  shift 3
  [[ "$family" == attention ]] && family_flags=("${fused_flags[@]}")
  tmp="$(mktemp "$(dirname "$out")/.cpu_$family.json.XXXXXX")"
  start=$(date +%s)
  ./build/release/bench/locality_bench \
    --locality_family="$family" \
    --locality_sweep="$sweep" \
    --benchmark_repetitions="$reps" \
    --benchmark_display_aggregates_only=true \
    --benchmark_min_time="$min_time" \
    --benchmark_out="$tmp" --benchmark_out_format=json \
    --benchmark_context=git_commit="$commit" \
    --benchmark_context=machine_label="$label" --benchmark_context=cpu_id="${cpu_id:-unknown}" \
    --benchmark_context=cpu_model="${model:-unknown}" \
    "${family_flags[@]}" "${extra[@]}" "$@" &
  bench_pid=$!  # in the background, so that a signal reaches the traps at once
  wait "$bench_pid" || status=$?
  bench_pid=""
  echo "locality: $family benchmarks took $(( $(date +%s) - start )) s"
  if ((status != 0)); then
    echo "locality: locality_bench failed (exit $status); $out left as it was" >&2
    exit "$status"
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$out"
  echo "locality: wrote $out"
}

# A ladder runs in turns: one repetition of every benchmark of the family (its
# rungs and peers, the fused attention peers among them, problem by problem,
# each problem's variants one after another in a random order that
# locality_bench draws), as many turns as repetitions; the turns are combined
# into one file with every repetition kept, written atomically: a run that
# fails or is interrupted removes its turns and leaves the previous file as it
# was. On a machine whose speed drifts over minutes (a shared VM), repetition
# r of a rung and of a peer then come from the same minutes, and the report
# compares them turn by turn.
in_turns() {
  local family=$1 turns start files=() r
  turns=$(mktemp -d "$outdir/.turns.XXXXXX")
  trap 'rm -rf "$turns"' EXIT
  start=$(date +%s)
  for ((r = 0; r < repetitions; r++)); do
    run_family "$family" "$turns/ladder_$r.json" 1
    files+=("$turns/ladder_$r.json")
  done
  # The top matmul rung against each BLAS peer, call by call: $pairs rounds
  # per problem, once, after the turns (each ratio is of two calls made one
  # after the other, so it needs no turns); its rows join the ladder's file.
  if [[ "$family" == matmul ]] && ((pairs > 0)); then
    run_family "$family" "$turns/pairs.json" 1 --locality_pairs="$pairs" \
      --benchmark_filter='^cpu/pairs/'
    files+=("$turns/pairs.json")
  fi
  "$LOCALITY_PYTHON" bench/results.py combine "$outdir/cpu_$family.json" "${files[@]}"
  rm -rf "$turns"
  trap - EXIT
  echo "locality: the $family ladder took $(( $(date +%s) - start )) s in $repetitions turns;" \
    "wrote $outdir/cpu_$family.json"
}

((report_only)) || for family in "${families[@]}"; do in_turns "$family"; done

# Cache evidence: every rung once under cachegrind, from the AVX2 profile build.
profile_json="$outdir/cachegrind.json"
profile_set=default
[[ "$sweep" == quick ]] && profile_set=ci
cache_profile() {
  cmake --preset profile >/dev/null
  cmake --build --preset profile -j "$(nproc)" --target locality_cli >/dev/null
  local start
  start=$(date +%s)
  "$LOCALITY_PYTHON" bench/cachegrind.py --set "$profile_set" --out "$profile_json" >/dev/null
  echo "locality: cachegrind profile took $(( $(date +%s) - start )) s; wrote $profile_json"
}
if ((profile && !report_only)); then late "the cachegrind profile" cache_profile; fi

# The report: results/<label>/README.md, from every result file in the folder
# (tables, then plots), written whole and atomically. The top-level README's
# tables change only with --update-readme.
page="$outdir/README.md"
page_tmp=$(mktemp "$outdir/.README.md.XXXXXX")
trap 'rm -f "$page_tmp"' EXIT
profile_args=()
[[ -f "$profile_json" ]] && profile_args=(--profile "$profile_json")
{
  echo "# locality results: $label"
  echo
  echo "Written by \`bash bench/run.sh\` from the JSON files in this folder" \
    "($(date -u +%Y-%m-%dT%H:%M:%SZ)); each table's first line names the machine, compiler and" \
    "commit of its run. Every table is generated: do not edit it."
  for family in matmul attention; do
    [[ -f "$outdir/cpu_$family.json" ]] || continue
    echo
    echo "## The CPU $family ladder"
    echo
    echo "<!-- cpu-$family-ladder:begin -->"
    echo "<!-- cpu-$family-ladder:end -->"
  done
  if [[ -f "$profile_json" ]]; then
    echo
    echo "## Cache counts (cachegrind)"
    echo
    echo "<!-- cachegrind:begin -->"
    echo "<!-- cachegrind:end -->"
  fi
} >"$page_tmp"
for family in matmul attention; do
  [[ -f "$outdir/cpu_$family.json" ]] || continue
  readmes=(--readme "$page_tmp")
  ((update_readme)) && readmes+=(--readme README.md --readme "docs/cpu-$family.md")
  late "the $family tables and plots" "$LOCALITY_PYTHON" bench/report.py \
    "$outdir/cpu_$family.json" "${readmes[@]}" --plots "$outdir" "${profile_args[@]}"
done
if [[ -f "$profile_json" ]]; then
  readmes=(--readme "$page_tmp")
  ((update_readme)) && readmes+=(--readme docs/reading-the-ladders.md)
  late "the cachegrind table" "$LOCALITY_PYTHON" bench/cachegrind.py --table "$profile_json" \
    "${readmes[@]}"
fi
plots=("$outdir"/*.png)
if [[ -e "${plots[0]}" ]]; then
  { echo; echo "## Plots"; echo
    for png in "${plots[@]}"; do echo "![$(basename "$png" .png)]($(basename "$png"))"; echo; done
  } >>"$page_tmp"
fi
chmod 644 "$page_tmp"
mv "$page_tmp" "$page"
trap - EXIT
echo "locality: wrote $page"

# The baseline: the first run on a machine becomes it; --save-baseline replaces it.
# Otherwise this run is compared with it (timings need 5+ repetitions to show
# anything significant: compare --full runs).
baseline="$outdir/baseline"
results=("${families[@]/#/cpu_}")
results=("${results[@]/%/.json}")
[[ -f "$profile_json" ]] && results+=(cachegrind.json)
save_baseline_files() {
  mkdir -p "$baseline"
  for f in "${results[@]}"; do
    cp "$outdir/$f" "$baseline/.$f.tmp" && mv "$baseline/.$f.tmp" "$baseline/$f"
  done
  # The small sizes CI checks every change against (tests/run.sh); a quick
  # run is for trying the suite, not for guarding it.
  if ((profile)) && [[ "$sweep" != quick ]]; then
    "$LOCALITY_PYTHON" bench/cachegrind.py --set ci --out "$baseline/cachegrind_ci.json" >/dev/null
    results+=(cachegrind_ci.json)
  fi
  echo "locality: saved ${results[*]} as the baseline in $baseline"
}
# A regression (compare.py's exit 1) is reported, not fatal: the run itself is
# what this job makes; bad input (exit 2) skips the comparison.
compare_with_baseline() {
  local status=0 out
  out=$("$LOCALITY_PYTHON" bench/compare.py "$@") || status=$?
  printf '%s\n' "$out" | tail -n 4
  if ((status == 1)); then
    echo "locality: $(basename "$2") is slower than its baseline (above)"
    status=0
  fi
  return "$status"
}
if ((report_only)); then
  :  # no run to keep or compare
elif ((save_baseline)) || [[ ! -d "$baseline" ]]; then
  late "saving the baseline" save_baseline_files
else
  for f in "${results[@]}"; do
    [[ -f "$baseline/$f" ]] || continue
    kind=timings
    [[ "$f" == cachegrind.json ]] && kind=cachegrind
    echo "== against the baseline: $f"
    late "the comparison of $f" compare_with_baseline "$kind" "$outdir/$f"
  done
fi

if ((${#skipped[@]})); then
  echo "locality: done, with ${#skipped[@]} step(s) skipped: $(IFS=,; echo "${skipped[*]}" | sed 's/,/, /g')" >&2
else
  echo "locality: done; the report is $page"
fi

#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, runs the
# CPU ladders (matmul, then attention) beside their peers and probes, writes
# results/<machine>/cpu_matmul.json and cpu_attention.json and prints the
# ladder tables.
#
#   bash bench/run.sh            default sweep (about 10 minutes on 2 cores)
#   bash bench/run.sh --full     every size (matmul 64..4096, attention 256..8192), 5 repetitions
#   bash bench/run.sh --family attention   one ladder only
#   bash bench/run.sh --label X  store under results/X/ (default: from the CPU model)
#   bash bench/run.sh --no-profile      skip the cachegrind profile (bench/cachegrind.py)
#   bash bench/run.sh --save-baseline   make this run the machine's baseline
#   extra Google Benchmark flags go after --, e.g. -- --benchmark_filter=packed
#
# Then: the cache counts of every rung under cachegrind (results/<machine>/
# cachegrind.json), the tables (printed and written into README.md), the plots
# (results/<machine>/*.png), and a comparison with results/<machine>/baseline/
# (the first run on a machine becomes its baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

sweep=default
repetitions=3
profile=1
save_baseline=0
label=""
families=(matmul attention)
extra=()
while (($#)); do
  case "$1" in
    --full) sweep=full; repetitions=5 ;;
    --label) label="${2:?--label needs a name}"; shift ;;
    --label=*) label="${1#--label=}" ;;
    --family) families=("${2:?--family needs matmul or attention}"); shift ;;
    --family=*) families=("${1#--family=}") ;;
    --no-profile) profile=0 ;;
    --save-baseline) save_baseline=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

for family in "${families[@]}"; do
  if [[ "$family" != matmul && "$family" != attention ]]; then
    echo "bench/run.sh: --family must be matmul or attention, got '$family'" >&2
    exit 2
  fi
done

source bench/deps.sh
locality_install_deps

model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
if [[ -z "$label" ]]; then
  label=$(echo "${model:-cpu}" | tr 'A-Z' 'a-z' |
    sed -e 's/(r)//g; s/(tm)//g; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//')-$(nproc)cores
fi
if [[ ! "$label" =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "bench/run.sh: label '$label' may hold only letters, digits, '.', '_' and '-'" >&2
  exit 2
fi

cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"

outdir="results/$label"
mkdir -p "$outdir"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Dirty means changed code; the result files and README this job rewrites do not count.
if [[ -n "$(git status --porcelain --untracked-files=no -- . ":!results" ":!README.md" 2>/dev/null)" ]]; then
  commit+="-dirty"
fi

# One family per JSON file, each written atomically: a run that fails or is
# interrupted leaves the previous file as it was.
run_family() {
  local family=$1 out="$outdir/cpu_$1.json" tmp start status=0
  tmp="$(mktemp "$outdir/.cpu_$family.json.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  start=$(date +%s)
  ./build/release/bench/locality_bench \
    --locality_family="$family" \
    --locality_sweep="$sweep" \
    --benchmark_repetitions="$repetitions" \
    --benchmark_enable_random_interleaving=true \
    --benchmark_display_aggregates_only=true \
    --benchmark_min_time=0.2 \
    --benchmark_out="$tmp" --benchmark_out_format=json \
    --benchmark_context=git_commit="$commit" \
    --benchmark_context=machine_label="$label" \
    --benchmark_context=cpu_model="${model:-unknown}" \
    "${extra[@]}" || status=$?
  echo "locality: $family benchmarks took $(( $(date +%s) - start )) s"
  if ((status != 0)); then
    echo "locality: locality_bench failed (exit $status); $out left as it was" >&2
    exit "$status"
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$out"
  trap - EXIT
  echo "locality: wrote $out"
}

for family in "${families[@]}"; do run_family "$family"; done

# Cache evidence: every rung once under cachegrind, from the AVX2 profile build.
profile_json="$outdir/cachegrind.json"
if ((profile)); then
  cmake --preset profile >/dev/null
  cmake --build --preset profile -j "$(nproc)" --target locality_cli
  start=$(date +%s)
  "$LOCALITY_PYTHON" bench/cachegrind.py --out "$profile_json" >/dev/null
  echo "locality: cachegrind profile took $(( $(date +%s) - start )) s; wrote $profile_json"
fi

# The tables (printed, and between README's markers) and the plots.
profile_args=()
[[ -f "$profile_json" ]] && profile_args=(--profile "$profile_json")
for family in "${families[@]}"; do
  "$LOCALITY_PYTHON" bench/report.py "$outdir/cpu_$family.json" --readme README.md \
    --plots "$outdir" "${profile_args[@]}"
done
if [[ -f "$profile_json" ]]; then
  "$LOCALITY_PYTHON" bench/cachegrind.py --table "$profile_json" --readme README.md
fi

# The baseline: the first run on a machine becomes it; --save-baseline replaces it.
# Otherwise this run is compared with it (timings need 5+ repetitions to show
# anything significant: compare --full runs).
baseline="$outdir/baseline"
results=("${families[@]/#/cpu_}")
results=("${results[@]/%/.json}")
[[ -f "$profile_json" ]] && results+=(cachegrind.json)
if ((save_baseline)) || [[ ! -d "$baseline" ]]; then
  mkdir -p "$baseline"
  for f in "${results[@]}"; do
    cp "$outdir/$f" "$baseline/.$f.tmp" && mv "$baseline/.$f.tmp" "$baseline/$f"
  done
  if ((profile)); then
    # The small sizes CI checks every change against (tests/run.sh).
    "$LOCALITY_PYTHON" bench/cachegrind.py --set ci --out "$baseline/cachegrind_ci.json" >/dev/null
    results+=(cachegrind_ci.json)
  fi
  echo "locality: saved ${results[*]} as the baseline in $baseline"
else
  for f in "${results[@]}"; do
    [[ -f "$baseline/$f" ]] || continue
    kind=timings
    [[ "$f" == cachegrind.json ]] && kind=cachegrind
    echo "== against the baseline: $f"
    "$LOCALITY_PYTHON" bench/compare.py "$kind" "$outdir/$f" | tail -n 4 || true
  done
fi

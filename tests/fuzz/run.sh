#!/usr/bin/env bash
# The fuzzers, each for a bounded time (default 45 s; first argument to change):
#   - libFuzzer over `locality run`'s argument parser and the number parsers
#     (tests/fuzz/cli_fuzz.cpp, built by the `fuzz` preset: clang, ASan, UBSan),
#     starting from tests/fuzz/corpus/cli;
#   - the mutation fuzzer over the result-file reader (tests/fuzz/report_fuzz.py).
# A finding fails the run; its input is kept under build/fuzz/findings/.
# Called by tests/run.sh; needs clang and libclang-rt-14-dev (installed there).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-45}"
if [[ ! "$seconds" =~ ^[0-9]+$ || "$seconds" -lt 1 ]]; then
  echo "tests/fuzz/run.sh: seconds must be a positive whole number, got '$seconds'" >&2
  exit 2
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

findings="$PWD/build/fuzz/findings"
mkdir -p "$findings"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== fuzz: locality run's parser, ${seconds} s (libFuzzer)"
# New inputs go to the first corpus folder (scratch); the committed seeds are read only.
status=0
./build/fuzz/tests/fuzz/locality_fuzz_cli -max_total_time="$seconds" -timeout=10 \
  -artifact_prefix="$findings/" -print_final_stats=1 "$work" tests/fuzz/corpus/cli \
  >"$work.log" 2>&1 || status=$?
grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|ERROR|artifact" "$work.log" || true
rm -f "$work.log"
if [[ $status -ne 0 ]]; then
  echo "fuzz: the parser fuzzer found an input that fails (exit $status; input under $findings)" >&2
  exit 1
fi

echo "== fuzz: the result-file reader, ${seconds} s (mutations of results/*.json)"
"${LOCALITY_PYTHON:-python3}" tests/fuzz/report_fuzz.py --seconds "$seconds" --findings "$findings"

#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with
# ctest, first in the release build, then in the debug build with
# AddressSanitizer and UndefinedBehaviorSanitizer; then the cachegrind counts
# of every rung against the committed baseline; then the fuzzers, for a
# bounded time each (tests/fuzz/run.sh; LOCALITY_FUZZ_SECONDS, default 45).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/deps.sh
locality_install_deps "${LOCALITY_TEST_PACKAGES[@]}"

jobs=$(nproc)
for preset in release debug; do
  echo "== locality tests: $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done

# Locality regressions: the cache counts of every rung (cachegrind, small
# sizes) against each committed baseline, with the cache geometry stored in
# it; any rung whose instructions or misses grow by more than 1% fails.
echo "== locality tests: cachegrind counts against the committed baselines"
cmake --preset profile >/dev/null
cmake --build --preset profile -j "$jobs" --target locality_cli
found=0
for base in results/*/baseline/cachegrind_ci.json; do
  [[ -f "$base" ]] || continue
  found=1
  machine=$(basename "$(dirname "$(dirname "$base")")")
  now="build/profile/cachegrind_ci-$machine.json"
  "$LOCALITY_PYTHON" bench/cachegrind.py --set ci --geometry-from "$base" --out "$now" >/dev/null
  "$LOCALITY_PYTHON" bench/compare.py cachegrind "$base" "$now"
done
if ((!found)); then
  echo "no results/*/baseline/cachegrind_ci.json yet: bash bench/run.sh --save-baseline makes one"
fi

echo "== locality tests: fuzzers"
bash tests/fuzz/run.sh "${LOCALITY_FUZZ_SECONDS:-45}"

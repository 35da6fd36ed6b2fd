#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with
# ctest, first in the release build, then in the debug build with
# AddressSanitizer and UndefinedBehaviorSanitizer; then a dummy rung added to
# a copy of the tree (tests/dummy_rung_test.sh); then the cachegrind counts
# of every rung against the committed baseline; then the fuzzers, for a
# bounded time each (tests/fuzz/run.sh; LOCALITY_FUZZ_SECONDS, default 45);
# then, where mmdebstrap can make one (root, Debian), the README's two
# commands in a brand-new Debian 12 root (tests/fresh_machine.sh; skipped
# with LOCALITY_FRESH_MACHINE=0).
#
#   bash tests/run.sh           all of the above
#   bash tests/run.sh --quick   the installs, the release build and its ctest,
#                               and the fuzzers for 5 s each (what the fresh
#                               machine runs)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "tests/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
source bench/deps.sh
locality_install_deps "${LOCALITY_TEST_PACKAGES[@]}"

jobs=$(nproc)
presets=(release debug)
((quick)) && presets=(release)
for preset in "${presets[@]}"; do
  echo "== locality tests: $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done

if ((!quick)); then
  echo "== locality tests: a dummy rung is one file, one registry line, one CMake line"
  bash tests/dummy_rung_test.sh
fi

if ((quick)); then
  echo "== locality tests: fuzzers (quick)"
  bash tests/fuzz/run.sh 5
  exit 0
fi

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

# A missing install step: the README's two commands on a brand-new Debian 12.
echo "== locality tests: the README's commands on a fresh Debian 12 (tests/fresh_machine.sh)"
if [[ "${LOCALITY_FRESH_MACHINE:-1}" == 0 ]]; then
  echo "skipped: LOCALITY_FRESH_MACHINE=0"
elif [[ $(id -u) -ne 0 ]]; then
  echo "skipped: tests/fresh_machine.sh needs root (CI runs as root)"
else
  bash tests/fresh_machine.sh
fi

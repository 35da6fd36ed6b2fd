#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with
# ctest, first in the release build, then in the debug build with
# AddressSanitizer and UndefinedBehaviorSanitizer; then the fuzzers, for a
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

echo "== locality tests: fuzzers"
bash tests/fuzz/run.sh "${LOCALITY_FUZZ_SECONDS:-45}"

#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with
# ctest, first in the release build, then in the debug build with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/deps.sh
locality_install_deps

jobs=$(nproc)
for preset in release debug; do
  echo "== locality tests: $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done

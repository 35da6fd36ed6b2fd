#!/usr/bin/env bash
# Installs what locality needs from Debian's packages, only what is missing.
# Sourced by bench/run.sh and tests/run.sh; safe to run again.
set -euo pipefail

LOCALITY_PACKAGES=(
  build-essential cmake git python3
  libeigen3-dev libbenchmark-dev libgtest-dev   # the reference, the timer, the tests
  libcli11-dev                                  # the locality driver's command line
  libdnnl-dev libopenblas-dev                   # the peers beside the ladder
  valgrind python3-matplotlib                   # cache counts (cachegrind) and plots
  libbenchmark-tools python3-scipy              # Google Benchmark's compare.py and its U test
)

# Debian's Python, where the python3-* packages above live (a python3 from
# pyenv or a virtual environment earlier on PATH would not see them).
if [[ -x /usr/bin/python3 ]]; then LOCALITY_PYTHON=/usr/bin/python3; else LOCALITY_PYTHON=python3; fi
export LOCALITY_PYTHON

# What the tests need beyond that: clang and its libFuzzer runtime and OpenMP
# for the fuzz preset (tests/fuzz/).
LOCALITY_TEST_PACKAGES=(clang libclang-rt-14-dev libomp-dev)

# locality_install_deps [extra packages...]
locality_install_deps() {
  local missing=()
  for pkg in "${LOCALITY_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "locality: installing ${missing[*]}" >&2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

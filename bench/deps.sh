#!/usr/bin/env bash
# Installs what locality needs from Debian's packages, only what is missing.
# Sourced by bench/run.sh and tests/run.sh; safe to run again.
set -euo pipefail

LOCALITY_PACKAGES=(
  build-essential cmake git python3 python3-venv
  libeigen3-dev libbenchmark-dev libgtest-dev   # the reference, the timer, the tests
  libcli11-dev                                  # the locality driver's command line
  libdnnl-dev libopenblas-dev libblis-dev       # the peers beside the ladder
  valgrind python3-matplotlib                   # cache counts (cachegrind) and plots
  libbenchmark-tools python3-scipy              # Google Benchmark's compare.py and its U test
)

# Debian's Python, where the python3-* packages above live (a python3 from
# pyenv or a virtual environment earlier on PATH would not see them).
if [[ -x /usr/bin/python3 ]]; then LOCALITY_PYTHON=/usr/bin/python3; else LOCALITY_PYTHON=python3; fi
export LOCALITY_PYTHON

# The peers that come from PyPI, pinned (a new version is a new peer: bump it
# on purpose), into a virtual environment of the project's own, $LOCALITY_VENV
# (default .venv, git-ignored): Intel's MKL, a current OpenBLAS that knows newer
# CPUs than Debian's 0.3.21 (with its symbols prefixed scipy_, so that it
# links beside Debian's), and ONNX Runtime for a fused attention peer; and
# CUDA's cuobjdump and nvdisasm (6 MB), which read the GPU rungs' machine code
# (gpu/sass.py) where the CUDA toolkit came without them.
LOCALITY_PIP_PACKAGES=(
  mkl-devel==2026.2.0 mkl-include==2026.2.0 scipy-openblas32==0.3.34.481.3
  onnxruntime==1.32.0 onnx==1.23.2 numpy==2.3.5
  nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37
)
LOCALITY_VENV=${LOCALITY_VENV:-$PWD/.venv}
export LOCALITY_VENV

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
  if ((${#missing[@]})); then
    echo "locality: installing ${missing[*]}" >&2
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  locality_install_pip
}

# The PyPI peers into $LOCALITY_VENV, once per package list (a stamp file
# holds the list installed). They are peers, so optional: where PyPI cannot
# be reached, one line says so and configure reports each as not found.
locality_install_pip() {
  local stamp="$LOCALITY_VENV/locality-packages"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "${LOCALITY_PIP_PACKAGES[*]}" ]]; then
    return 0
  fi
  echo "locality: installing ${LOCALITY_PIP_PACKAGES[*]} into $LOCALITY_VENV (PyPI, about 270 MB)" >&2
  if /usr/bin/python3 -m venv "$LOCALITY_VENV" &&
    "$LOCALITY_VENV/bin/pip" install -q --disable-pip-version-check \
      "${LOCALITY_PIP_PACKAGES[@]}" >/dev/null; then
    echo "${LOCALITY_PIP_PACKAGES[*]}" >"$stamp"
  else
    echo "locality: could not install the PyPI peers; the run goes on without them" >&2
  fi
}

#!/usr/bin/env bash
# Builds the GPU-side binaries here and packs them for a GPU machine, which
# has nvcc, CMake and the CUDA libraries but not Eigen, Google Benchmark or
# GoogleTest: the `gpu` preset (sm_90, -march=x86-64-v3, no oneDNN/OpenBLAS
# peers) links Eigen and GoogleTest in, and the one shared library the
# machine lacks (Google Benchmark's) is copied beside the binaries.
#
#   bash gpu/pack.sh          -> .gpu-carry/ (git-ignored; carry it, then run
#                                gpu/run_on_device.sh there)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/deps.sh
locality_install_deps

cmake --preset gpu >/dev/null
cmake --build --preset gpu -j "$(nproc)"
rm -rf .gpu-carry
mkdir -p .gpu-carry/bin .gpu-carry/lib
cp build/gpu/tests/locality_tests build/gpu/bench/locality_bench build/gpu/bench/locality \
  .gpu-carry/bin/
# Shared libraries from this machine's packages that a CUDA image may lack.
for bin in .gpu-carry/bin/*; do
  ldd "$bin" | awk '$1 ~ /^lib(benchmark|gomp)\./ && $3 ~ /^\// {print $3}'
done | sort -u | xargs -r -I{} cp -L {} .gpu-carry/lib/
git rev-parse --short=12 HEAD > .gpu-carry/commit
du -sh .gpu-carry

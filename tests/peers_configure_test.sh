#!/usr/bin/env bash
# Configure with a broken oneDNN install and a peer turned off: configure must
# succeed, say "peer onednn not found (reason)", and go on without it.
# The broken install: a CMake config that requires a package that is not
# there (as Debian's oneDNN 2.6 config requires OpenCL), the header, and a
# "library" that is not one.
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fake/cmake/dnnl" "$work/fake/include/oneapi/dnnl" "$work/fake/lib"
echo 'find_package(LocalityNoSuchPackage REQUIRED)' > "$work/fake/cmake/dnnl/dnnl-config.cmake"
printf 'typedef struct { int major; } dnnl_version_t;\nconst dnnl_version_t* dnnl_version(void);\n' > "$work/fake/include/oneapi/dnnl/dnnl.h"
echo 'not a shared library' > "$work/fake/lib/libdnnl.so"

status=0
cmake -S "$source_dir" -B "$work/build" -DLOCALITY_CUDA=OFF -DLOCALITY_BUILD_TESTS=OFF \
  -Ddnnl_DIR="$work/fake/cmake/dnnl" -DCMAKE_PREFIX_PATH="$work/fake" \
  -DLOCALITY_PEER_ONEDNN_INCLUDE_DIR="$work/fake/include" \
  -DLOCALITY_PEER_ONEDNN_LIBRARY="$work/fake/lib/libdnnl.so" \
  -DLOCALITY_PEER_OPENBLAS=OFF >"$work/log" 2>&1 || status=$?
if ((status != 0)); then
  cat "$work/log"
  echo "FAIL: configure exited $status with a broken oneDNN"
  exit 1
fi
grep -q '^-- locality: peer onednn not found (a program calling it does not build' "$work/log" || {
  cat "$work/log"; echo "FAIL: no 'peer onednn not found (...)' line"; exit 1; }
grep -q '^-- locality: peer openblas not found (turned off: LOCALITY_PEER_OPENBLAS=OFF)' "$work/log" || {
  cat "$work/log"; echo "FAIL: no 'peer openblas not found (turned off ...)' line"; exit 1; }
grep '^-- locality: peer' "$work/log"
echo "ok: configure goes on without a broken peer"

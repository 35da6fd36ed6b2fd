#!/usr/bin/env bash
# Compiler launcher for the sm_90a rungs (gpu/CMakeLists.txt): runs the
# compile it is given and fails it when ptxas had to serialize a wgmma.
# ptxas reports that ("Potential Performance Loss: wgmma.mma_async
# instructions are serialized", C7510/C7511) as information, not as a
# warning, so --warning-as-error lets it through; such a rung would run its
# MMAs one at a time, at a fraction of its speed.
out=$("$@" 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out" >&2
if [ "$rc" -eq 0 ] && grep -q "wgmma.mma_async instructions are serialized" <<<"$out"; then
  echo "error: ptxas serialized a wgmma (above); fix the kernel rather than accept it" >&2
  exit 1
fi
exit "$rc"

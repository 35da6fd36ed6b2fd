#!/usr/bin/env bash
# The README's two commands on a brand-new Debian 12 (bookworm, x86-64) with
# nothing but git and root: a minimal root made by mmdebstrap (--variant=apt)
# from Debian's packages, a clean clone of this checkout's HEAD copied in,
# and inside it, as root:
#
#   bash tests/run.sh --quick       the installs, release build, ctest, fuzzers (5 s each)
#   bash bench/run.sh --quick       every CPU rung at small sizes, the cachegrind
#                                   profile, the report, the plots, the baseline
#
# each of which must exit 0 and leave its results; then a main job killed
# mid-benchmark must leave no temporary and the results as they were.
# `bash tests/fresh_machine.sh --full` runs the two commands in their full
# forms instead (the README's timings for a fresh machine come from it). The main job runs as on a
# machine whose kernel exposes no cache folder in sysfs
# (LOCALITY_CACHE_SYSFS points at an empty folder), so the cache geometry
# must come from sysconf, or the profile must say in one line why it was
# skipped while the rest completes.
#
# A missing package in bench/deps.sh fails here even where this machine has
# it. The root is new every run; Debian's .deb files are kept between runs in
# $LOCALITY_FRESH_CACHE (default /var/cache/locality-fresh-machine) to save
# the downloads; LOCALITY_FRESH_CACHE=none downloads everything, as a new
# machine does. The CUDA toolkit is not a Debian package, so the fresh root
# builds the CPU side only. Needs root (chroot, mounts) and network access to
# Debian's mirrors.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
mode=quick
case "${1:-}" in
  "") ;;
  --full) mode=full ;;
  *) echo "tests/fresh_machine.sh: unknown argument '$1' (--full or nothing)" >&2; exit 2 ;;
esac
if [[ $(id -u) -ne 0 ]]; then
  echo "tests/fresh_machine.sh: needs root (it makes a chroot and mounts /proc in it)" >&2
  exit 2
fi
source bench/deps.sh
locality_install_deps mmdebstrap

cache=${LOCALITY_FRESH_CACHE:-/var/cache/locality-fresh-machine}
fresh_cache=""
if [[ "$cache" == none ]]; then
  cache=$(mktemp -d /var/tmp/locality-fresh-cache.XXXXXX)
  fresh_cache=$cache
fi
mkdir -p "$cache/partial" "$cache/pip"
root=$(mktemp -d /var/tmp/locality-fresh.XXXXXX)
cleanup() {
  # The mounts live in a private mount namespace (unshare below) and went with
  # it; nothing under the root is mounted any more when this runs.
  rm -rf --one-file-system "$root" ${fresh_cache:+"$fresh_cache"}
}
trap cleanup EXIT

start=$(date +%s)
echo "fresh machine: mmdebstrap bookworm into $root"
mirror=http://deb.debian.org/debian
mmdebstrap --quiet --variant=apt --include=git bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
made=$(date +%s)
echo "fresh machine: root made in $((made - start)) s"

git clone --quiet --no-hardlinks "$repo" "$root/root/locality"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# The network's trust anchors travel with its name server: where this
# machine reaches PyPI through a proxy that signs with a certificate
# authority of its own, pip in the root needs that authority too (the
# authorities added under /usr/local/share/ca-certificates, the bundle made
# from them, and a pip.conf pointing at it). A machine on the open internet
# has none of these, and the root then gets none.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  cp -L /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  if [[ -f /etc/pip.conf ]]; then cp -L /etc/pip.conf "$root/etc/pip.conf"; fi
fi

# Inside: the two commands, as a new user would type them, then the checks.
cat >"$root/root/fresh.sh" <<'INSIDE'
set -euo pipefail
cd /root/locality
form=()
[[ "$1" == quick ]] && form=(--quick)
t0=$(date +%s)
# (The full test command inside does not make a fresh root of its own.)
LOCALITY_FRESH_MACHINE=0 bash tests/run.sh "${form[@]}" 2>&1 | tee /root/tests.log
t1=$(date +%s)
mkdir -p /root/no-cache-info
LOCALITY_CACHE_SYSFS=/root/no-cache-info bash bench/run.sh "${form[@]}" --label fresh 2>&1 |
  tee /root/bench.log
t2=$(date +%s)
echo "fresh machine: tests/run.sh ${form[*]} took $((t1 - t0)) s, bench/run.sh ${form[*]}" \
  "$((t2 - t1)) s ($(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores)"

fail() { echo "fresh machine: FAIL: $*"; exit 1; }
grep -q "100% tests passed" /root/tests.log || fail "ctest did not report 100% tests passed"
out=results/fresh
for f in cpu_matmul.json cpu_attention.json README.md matmul_ladder.png attention_ladder.png \
         baseline/cpu_matmul.json; do
  [[ -s "$out/$f" ]] || fail "bench/run.sh ${form[*]} left no $out/$f"
done
grep -q "^| 5 | parallel |" "$out/README.md" || fail "no matmul ladder table in $out/README.md"
# Debian's and PyPI's peers, installed and run; or, where a peer runs below
# this CPU (Debian's OpenBLAS on a CPU it does not know), left out with the
# reason in the context.
for peer in mkl scipy_openblas blis onednn openblas; do
  grep -q "\"name\": \"cpu/matmul/$peer/" "$out/cpu_matmul.json" ||
    grep -q "\"${peer}_left_out\": \"" "$out/cpu_matmul.json" ||
    fail "no $peer rows in cpu_matmul.json, and no reason for leaving it out"
done
grep -q "\"name\": \"cpu/attention/onnxruntime/" "$out/cpu_attention.json" ||
  fail "no onnxruntime rows in cpu_attention.json"
grep -q "^| 4 | parallel_flash |" "$out/README.md" || fail "no attention ladder table in $out/README.md"
if [[ -s "$out/cachegrind.json" ]]; then
  python3 - "$out/cachegrind.json" <<'PY' || fail "the profile's cache geometry is not sysconf's"
import json, sys
geometry = json.load(open(sys.argv[1]))["context"]["cache_geometry"]
print("fresh machine: cache geometry from", geometry["source"], "-", geometry["note"])
sys.exit(geometry["source"] != "sysconf")
PY
  grep -q "^<!-- cachegrind:begin -->" "$out/README.md" || fail "no cachegrind table in the report"
else
  grep -q "skipped the cachegrind profile (exit 2: cachegrind.py: cannot read the cache geometry" \
    /root/bench.log || fail "no cachegrind.json and no line saying why"
  echo "fresh machine: sysconf gave no usable geometry here; the profile said why and was skipped"
fi
# An interrupted main job leaves no temporary beside the results, and the next
# run removes one that an earlier, killed run left (issue 21).
sum_before=$(sha256sum "$out/cpu_matmul.json")
touch "$out/.cpu_matmul.json.Stale1"
bash bench/run.sh --quick --family matmul --label fresh --no-profile >/root/interrupted.log 2>&1 &
job=$!
for _ in $(seq 600); do  # until the benchmarks write their own temporary (in the turns' folder)
  [[ ! -e "$out/.cpu_matmul.json.Stale1" ]] &&
    compgen -G "$out/.turns.??????/.cpu_matmul.json.??????" >/dev/null && break
  sleep 0.1
done
[[ ! -e "$out/.cpu_matmul.json.Stale1" ]] || fail "a stale temporary survived the next run"
kill -TERM "$job"
status=0
wait "$job" || status=$?
((status == 143)) || fail "bench/run.sh exited $status on SIGTERM, not 143"
leftover=$(compgen -G "$out/.*.??????" || true)
[[ -z "$leftover" ]] || fail "an interrupted run left $leftover"
[[ "$(sha256sum "$out/cpu_matmul.json")" == "$sum_before" ]] || fail "an interrupted run changed cpu_matmul.json"
echo "fresh machine: an interrupted run left no temporary and the results as they were"

# The report alone, from the JSON already there: the same tables; a folder
# without results is refused in one line.
sed 1,3d "$out/README.md" >/root/report.before
rm "$out/README.md"
bash bench/run.sh --report-only --label fresh >/root/report.log 2>&1 || fail "--report-only failed"
sed 1,3d "$out/README.md" | cmp -s - /root/report.before ||
  fail "--report-only wrote other tables than the run did"
status=0
bash bench/run.sh --report-only --label no-such-run >/root/report.log 2>&1 || status=$?
((status == 2)) && grep -q "no cpu_matmul.json or cpu_attention.json" /root/report.log ||
  fail "--report-only on a folder without results exited $status"
[[ ! -e results/no-such-run ]] || fail "--report-only made a folder for a run that is not there"
echo "fresh machine: --report-only rewrote the same report, and refused a folder without results"

others=$(grep "^locality: skipped" /root/bench.log | grep -v "the cachegrind profile" || true)
[[ -z "$others" ]] || fail "bench/run.sh skipped a step: $others"
[[ -z "$(git status --porcelain --untracked-files=no)" ]] || fail "the run changed tracked files"
echo "fresh machine: both README commands passed"
INSIDE

# A private mount namespace: /proc, /sys, /dev and the package cache are
# mounted for the chroot and vanish with it, whatever happens. pip's cache
# (the PyPI peers' wheels) is kept beside Debian's .deb files.
status=0
unshare --mount --propagation private bash -euc '
  root=$1 cache=$2
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount --bind "$cache" "$root/var/cache/apt/archives"
  mkdir -p "$root/root/.cache/pip"
  mount --bind "$cache/pip" "$root/root/.cache/pip"
  exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash /root/fresh.sh "$3"
' _ "$root" "$cache" "$mode" || status=$?
echo "fresh machine: $((made - start)) s to make the root, $(($(date +%s) - made)) s inside it" \
  "(exit $status)"
exit "$status"

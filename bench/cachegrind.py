#!/usr/bin/env python3
"""Cache evidence for every CPU rung: valgrind's cachegrind, one call each.

    python3 bench/cachegrind.py --out results/<machine>/cachegrind.json
    python3 bench/cachegrind.py --set ci --geometry-from results/<machine>/baseline/cachegrind_ci.json --out X
    python3 bench/cachegrind.py --table results/<machine>/cachegrind.json [--readme README.md]

Runs `locality run <family> <variant> ... --repeat 1 --no-verify --threads 1`
under `valgrind --tool=cachegrind` for each rung at fixed small sizes, and the
same command with `--repeat 0` (inputs built, kernel not called); the
difference is the kernel's own instructions, data reads and writes, and D1
and last-level misses. Counts are exact and repeatable (a simulation, not a
sample), so they also serve as a regression signal (bench/compare.py).

Two facts of the machines this runs on: valgrind 3.19 stops at the first
AVX-512 instruction, so the binary comes from the `profile` preset
(-march=x86-64-v3: AVX2 and FMA); and a virtual machine may tell valgrind a
bogus last-level cache, so the geometry is passed explicitly (--I1, --D1,
--LL): read by `locality caches --json` (sysfs, else sysconf: glibc's CPUID
reading, what getconf prints), the reader the rungs cut their blocks by, or
taken from an earlier result file; each cache checked (a VM's sysconf may
report an L3 of associativity 0), and recorded with its source. The rungs'
blocks depend on the L1d and L2 (cpu/matmul/microkernels.cpp): the L1d and
L2 read are recorded too ("blocks_for") and told to every profiled command,
so that counts from another machine's geometry are comparable.
Cachegrind models two levels; its "LL" is the deepest cache whose set count
is a power of two (cachegrind needs one), which is the L2 where the L3 has an
odd number of sets.

Exit status 2, with one line on stderr, for bad input; the output file is
written atomically and only when every rung ran.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import results  # noqa: E402  (the JSON reader, atomic writes, the docs' markers)
EVENTS = ["Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw"]

# (family, label, flops, arguments after the variant)
SETS = {
    "default": [
        ("matmul", "256x256x256", 2 * 256 ** 3, ["--size", "256"]),
        ("matmul", "512x512x512", 2 * 512 ** 3, ["--size", "512"]),
        ("attention", "1x1x1024x1024x64", 4 * 1024 * 1024 * 64,
         ["--seq", "1024", "--head-dim", "64"]),
    ],
    "ci": [
        ("matmul", "128x128x128", 2 * 128 ** 3, ["--size", "128"]),
        ("attention", "1x1x256x256x64", 4 * 256 * 256 * 64,
         ["--seq", "256", "--head-dim", "64"]),
    ],
}


class ProfileError(Exception):
    pass


SYSFS_CACHE = "/sys/devices/system/cpu/cpu0/cache"
# The caches the rungs cut their blocks for when a result file predates the
# record of them: the reference machine's (48 KiB L1d, 2 MiB L2).
REFERENCE_BLOCKS_FOR = [48 << 10, 2 << 20]


def read_caches(binary, sysfs=None):
    """[(level, type, size_bytes, ways, line)] and their source, from
    `locality caches --json`: the reader the rungs size their blocks by
    (sysfs, else sysconf, which is what getconf prints)."""
    env = dict(os.environ)
    if sysfs:
        env["LOCALITY_CACHE_SYSFS"] = sysfs
    try:
        r = subprocess.run([binary, "caches", "--json"], capture_output=True, text=True,
                           timeout=60, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        raise ProfileError(f"cannot run {binary} caches: {e}")
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise ProfileError(why.removeprefix("locality: "))
    try:
        doc = json.loads(r.stdout)
        caches = [(int(c["level"]), str(c["type"]), int(c["size_bytes"]), int(c["ways"]),
                   int(c["line_bytes"])) for c in doc["caches"]]
        return caches, str(doc["source"])
    except (ValueError, KeyError, TypeError) as e:
        raise ProfileError(f"{binary} caches --json printed no cache list ({e})")


def power_of_two(x):
    return x > 0 and x & (x - 1) == 0


def checked(cache):
    """(size, ways, line) that cachegrind accepts, or the reason it would not."""
    level, kind, size, ways, line = cache
    what = f"L{level}{ {'Instruction': 'i', 'Data': 'd'}.get(kind, '')} ({size >> 10} KiB, {ways}-way, {line} B lines)"
    if size <= 0 or ways <= 0 or line <= 0 or size % (ways * line):
        return None, f"{what}: not a cache geometry"
    if not power_of_two(size // (ways * line)):
        return None, f"{what}: {size // (ways * line)} sets, not a power of two"
    return [size, ways, line], None


def geometry_from(caches, source):
    """cachegrind's I1, D1 and LL from a list of caches, each checked: the LL
    is the deepest cache below L1 that cachegrind can model. `blocks_for` is
    the L1d and L2 the rungs cut their blocks for, pinned for every profiled
    command, so that the counts depend on the recorded geometry alone."""
    def first(level, kind):
        return next((c for c in caches if c[0] == level and c[1] == kind), None)
    d1 = first(1, "Data")
    l2 = first(2, "Unified")
    d1_geometry, why = checked(d1) if d1 else (None, "no L1 data cache")
    if not d1_geometry:
        raise ProfileError(f"{source}: {why}")
    notes = []
    i1 = first(1, "Instruction")
    i1_geometry, why = checked(i1) if i1 else (None, "no L1 instruction cache")
    if not i1_geometry:
        # Instruction misses are not what the tables read; D1's shape stands in.
        i1_geometry = d1_geometry
        notes.append(f"I1 modelled as D1 ({why})")
    ll_geometry, skipped = None, []
    for c in sorted((c for c in caches if c[0] >= 2 and c[1] == "Unified"), key=lambda c: -c[0]):
        ll_geometry, why = checked(c)
        if ll_geometry:
            notes.insert(0, f"LL modelled as the L{c[0]}")
            break
        skipped.append(why)
    if not ll_geometry:
        raise ProfileError(f"{source}: no cache below L1 that cachegrind can model"
                           + (f" ({'; '.join(skipped)})" if skipped else ""))
    if skipped:
        notes.append("skipped " + "; ".join(skipped))
    blocks_for = [d1[2], l2[2] if l2 else ll_geometry[0]]
    return {"I1": i1_geometry, "D1": d1_geometry, "LL": ll_geometry, "note": "; ".join(notes),
            "source": source, "blocks_for": blocks_for}


def machine_geometry(binary, sysfs=None):
    """The geometry of this machine's caches, as the rungs read them."""
    try:
        caches, source = read_caches(binary, sysfs)
    except ProfileError as e:
        raise ProfileError(f"cannot read the cache geometry: {e}")
    return geometry_from(caches, source)


def blocks_sysfs(geometry, workdir):
    """A sysfs-like folder that tells the rungs the L1d and L2 the geometry
    records, so their blocks match the run that made it."""
    l1d, l2 = geometry.get("blocks_for", REFERENCE_BLOCKS_FOR)
    folder = os.path.join(workdir, "caches")
    for i, (level, kind, size) in enumerate([(1, "Data", l1d), (2, "Unified", l2)]):
        d = os.path.join(folder, f"index{i}")
        os.makedirs(d, exist_ok=True)
        for name, value in (("level", level), ("type", kind), ("size", size),
                            ("ways_of_associativity", 8), ("coherency_line_size", 64)):
            with open(os.path.join(d, name), "w", encoding="ascii") as f:
                f.write(f"{value}\n")
    return folder


def describe(geometry):
    def one(name):
        size, ways, line = geometry[name]
        return f"{name} {size >> 10} KiB {ways}-way {line} B lines"
    return ", ".join(one(n) for n in ("I1", "D1", "LL")) + f" ({geometry['note']})"


def host_cpu():
    """The CPU model of the machine that runs the simulation ("?" if unknown).
    The counts do not depend on it (the geometry and the blocks are given),
    but where the geometry came from another machine's file, the table says
    so."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split()) or "?"
    except OSError:
        pass
    return "?"


def rungs(binary):
    """{family: [(rung, variant)]} from `locality list`."""
    try:
        out = subprocess.run([binary, "list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise ProfileError(f"cannot run {binary} list: {e}")
    found = {}
    for line in out.splitlines()[1:]:
        parts = line.split()  # family, rung, variant, device, lesson
        if len(parts) >= 4 and parts[1].isdigit() and parts[3] == "cpu":
            found.setdefault(parts[0], []).append((int(parts[1]), parts[2]))
    if not found:
        raise ProfileError(f"{binary} list printed no rungs")
    return found


def cachegrind(binary, args, geometry, workdir, caches):
    """The summary counts of one command under cachegrind."""
    fd, out = tempfile.mkstemp(dir=workdir, prefix="cg.")
    os.close(fd)
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--cachegrind-out-file={out}"]
    cmd += [f"--{n}={','.join(str(x) for x in geometry[n])}" for n in ("I1", "D1", "LL")]
    cmd += [binary] + args
    env = dict(os.environ, LOCALITY_CACHE_SYSFS=caches)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = " ".join(r.stderr.strip().splitlines()[-2:])
        raise ProfileError(f"{' '.join(args[:3])}: valgrind exited {r.returncode}: {tail}")
    events, summary = None, None
    with open(out, encoding="utf-8") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                summary = [int(x) for x in line.split()[1:]]
    os.unlink(out)
    if not events or not summary or any(e not in events for e in EVENTS):
        raise ProfileError(f"{' '.join(args[:3])}: no cache simulation in cachegrind's output")
    return dict(zip(events, summary))


def profile_case(binary, geometry, family, rung, variant, label, flops, extra, workdir, caches):
    base = ["run", family, variant] + extra + ["--threads", "1", "--no-verify"]
    full = cachegrind(binary, base + ["--repeat", "1"], geometry, workdir, caches)
    setup = cachegrind(binary, base + ["--repeat", "0"], geometry, workdir, caches)
    row = {"family": family, "rung": rung, "variant": variant, "size": label, "flops": flops,
           "command": "locality " + " ".join(base + ["--repeat", "1"])}
    row.update({e: max(0, full[e] - setup[e]) for e in EVENTS})
    return row


def derived(row):
    data = row["Dr"] + row["Dw"]
    d1, ll = row["D1mr"] + row["D1mw"], row["DLmr"] + row["DLmw"]
    return {"d1_misses": d1, "ll_misses": ll,
            "d1_miss_rate": d1 / data if data else 0.0,
            "ll_miss_rate": ll / data if data else 0.0,
            "d1_misses_per_flop": d1 / row["flops"], "ll_misses_per_flop": ll / row["flops"]}


def table(doc):
    ctx = doc["context"]
    geometry = ctx["cache_geometry"]
    out = [f"Cachegrind, one call per rung, 1 thread ({ctx.get('build', '?')}; valgrind "
           f"{ctx.get('valgrind', '?')}; commit {ctx.get('git_commit', '?')}). Simulated caches: "
           f"{describe(geometry)}"
           + (f"; simulated on {ctx['host']}, the geometry from {geometry.get('source', '?')}"
              if "host" in ctx else "")
           + ". Counts are the kernel's alone (the run with --repeat 0 subtracted).", ""]
    groups = []
    for row in doc["profiles"]:
        key = (row["family"], row["size"])
        if key not in groups:
            groups.append(key)
    for family, size in groups:
        out += [f"{family} {size}:", "",
                "| rung | variant | instructions | data accesses | D1 misses | D1 miss rate | "
                "LL misses | LL miss rate | D1 misses / FLOP | LL misses / FLOP |",
                "|" + "---|" * 10]
        for row in doc["profiles"]:
            if (row["family"], row["size"]) != (family, size):
                continue
            d = derived(row)
            out.append(f"| {row['rung']} | {row['variant']} | {row['Ir'] / 1e6:,.1f} M | "
                       f"{(row['Dr'] + row['Dw']) / 1e6:,.1f} M | {d['d1_misses'] / 1e6:,.2f} M | "
                       f"{100 * d['d1_miss_rate']:.2f}% | {d['ll_misses'] / 1e3:,.1f} K | "
                       f"{100 * d['ll_miss_rate']:.3f}% | {d['d1_misses_per_flop']:.4f} | "
                       f"{d['ll_misses_per_flop']:.5f} |")
        out.append("")
    return "\n".join(out)


def load(path):
    """A profile file, checked enough for table() to read it."""
    try:
        doc = results.read_json(path)
    except results.ResultError as e:
        raise ProfileError(str(e))
    try:
        geometry = doc["context"]["cache_geometry"]
        describe(geometry)
        for r in doc["profiles"]:
            for key in EVENTS + ["flops", "rung"]:
                if isinstance(r[key], bool) or not isinstance(r[key], int) or r[key] < 0:
                    raise TypeError(f"{key} is not a whole number")
            if r["flops"] == 0:
                raise TypeError("flops is 0")
            for key in ("family", "variant", "size"):
                if not isinstance(r[key], str):
                    raise TypeError(f"{key} is not a string")
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ProfileError(f"{path} is not a bench/cachegrind.py file ({e})")
    return doc


def git_commit():
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        # The result files and README that the main job itself rewrites do not count.
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":!results", ":!README.md"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "profile", "bench", "locality"),
                        help="the locality driver from the profile preset")
    parser.add_argument("--set", choices=sorted(SETS), default="default",
                        help="sizes: default (matmul 256 and 512, attention seq 1024) or ci")
    parser.add_argument("--out", help="write the counts here (JSON)")
    parser.add_argument("--geometry-from", help="reuse the cache geometry of this result file")
    parser.add_argument("--cache-sysfs", metavar="DIR",
                        default=os.environ.get("LOCALITY_CACHE_SYSFS"),
                        help=f"where the kernel lists cpu0's caches (default {SYSFS_CACHE}, or "
                             "$LOCALITY_CACHE_SYSFS); sysconf answers where it is missing")
    parser.add_argument("--only", help="profile only variants whose name contains this")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--table", metavar="FILE", help="print the table of an earlier run")
    parser.add_argument("--readme", action="append", default=[],
                        help="with --table: write it between this README's cachegrind markers "
                             "(may be repeated)")
    args = parser.parse_args()
    try:
        if args.table:
            doc = load(args.table)
            print(table(doc))
            for readme in args.readme:
                results.update_readme(readme, table(doc), "cachegrind")
            return 0
        if args.jobs < 1:
            raise ProfileError("--jobs must be at least 1")
        if not os.access(args.binary, os.X_OK):
            raise ProfileError(f"{args.binary} is not an executable (build the profile preset)")
        if args.geometry_from:
            try:
                geometry = results.read_json(args.geometry_from)["context"]["cache_geometry"]
                for n in ("I1", "D1", "LL"):
                    if len(geometry[n]) != 3 or not all(isinstance(x, int) for x in geometry[n]):
                        raise ValueError(n)
                blocks_for = geometry.get("blocks_for", REFERENCE_BLOCKS_FOR)
                if len(blocks_for) != 2 or not all(isinstance(x, int) and 4096 <= x < 1 << 40
                                                   for x in blocks_for):
                    raise ValueError("blocks_for")
                geometry = dict(geometry, source=args.geometry_from)
            except results.ResultError as e:
                raise ProfileError(str(e))
            except (ValueError, KeyError, TypeError) as e:
                raise ProfileError(f"no cache geometry in {args.geometry_from} ({e})")
        else:
            geometry = machine_geometry(args.binary, args.cache_sysfs)
        ladder = rungs(args.binary)
        cases = []
        for family, label, flops, extra in SETS[args.set]:
            for rung, variant in ladder.get(family, []):
                if args.only and args.only not in variant:
                    continue
                cases.append((family, rung, variant, label, flops, extra))
        if not cases:
            raise ProfileError("no rung to profile")
        print(f"profile: {len(cases)} rungs under cachegrind; {describe(geometry)}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as work, \
                concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            # Written once, before any profiled command reads it.
            caches = blocks_sysfs(geometry, work)
            futures = [pool.submit(profile_case, args.binary, geometry, f, r, v, label, flops,
                                   extra, work, caches) for f, r, v, label, flops, extra in cases]
            rows = [fut.result() for fut in futures]
        version = subprocess.run(["valgrind", "--version"], capture_output=True,
                                 text=True).stdout.strip()
        doc = {"context": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "valgrind": version, "set": args.set,
            "build": "profile preset, -O3 -g -march=x86-64-v3",
            "binary": os.path.relpath(args.binary, ROOT), "host": host_cpu(),
            "cache_geometry": geometry},
            "profiles": rows}
        if args.out:  # first, so that a closed stdout (| head) does not lose the counts
            results.write_atomically(args.out, json.dumps(doc, indent=1) + "\n")
        print(table(doc))
    except (ProfileError, results.ResultError) as e:
        print(f"cachegrind.py: {results.one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

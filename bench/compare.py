#!/usr/bin/env python3
"""Did a change make a kernel slower? Two result files, side by side.

    python3 bench/compare.py timings OLD.json NEW.json [--threshold 5] [--alpha 0.05]
    python3 bench/compare.py timings NEW.json            # against NEW's baseline
    python3 bench/compare.py cachegrind OLD.json NEW.json [--threshold 1]
    python3 bench/compare.py cachegrind NEW.json
    python3 bench/compare.py gpu_profile OLD.json NEW.json [--threshold 5]

`timings` reads two locality_bench JSON files and hands them to Google
Benchmark's own comparison (compare.py's gbench package, Debian's
libbenchmark-tools, with python3-scipy for the Mann-Whitney U test); it
prints that table, then flags every benchmark whose median time grew by more
than the threshold (percent) with p < alpha. The U test needs repetitions:
with 3 against 3 no p-value can fall below 0.05, so compare runs of 5 or
more (`bench/run.sh --full`, or `-- --benchmark_repetitions=9`).

`cachegrind` reads two bench/cachegrind.py files (same cache geometry) and
flags every rung whose instructions, D1 misses or last-level misses grew by
more than the threshold (percent). The counts are a simulation, so unlike
timings they mean something on a busy machine.

`gpu_profile` reads two gpu/ncu_profile.py files (Nsight Compute on the GPU) and
flags every rung whose DRAM bytes, L2 bytes or instructions grew by more
than the threshold (percent): counts, not times, so a regression there is a
change in the kernel's traffic, whatever the clocks did.

Given one file, the baseline is the file of the same name in the baseline/
folder beside it (results/<machine>/baseline/). Exit status: 0 no
regression, 1 a regression, 2 bad input (a missing, empty, truncated or
foreign file, no benchmark in common), with one line on stderr.
"""

import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cachegrind  # noqa: E402  (the cachegrind-file reader)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "gpu"))
import ncu_profile as gpu_profile  # noqa: E402  (the Nsight Compute file reader)
import report  # noqa: E402  (the result-file reader)

GBENCH = "/usr/share/benchmark"  # Debian's libbenchmark-tools


class CompareError(Exception):
    pass


def baseline_of(path):
    return os.path.join(os.path.dirname(os.path.abspath(path)), "baseline", os.path.basename(path))


def load_timings(path):
    try:
        doc = report.load(path)
    except report.ReportError as e:
        raise CompareError(str(e))
    for b in doc["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            for field in ("real_time", "cpu_time"):
                value = b.get(field)
                # A time of zero (or less, or none) is not a measurement: a change
                # from it could never show as slower.
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value) or value <= 0:
                    raise CompareError(f"{path}: benchmark {b['name']} has no valid {field} "
                                       f"(a positive time), got {str(value)[:40]!r}")
            if not isinstance(b.get("time_unit"), str):
                raise CompareError(f"{path}: benchmark {b['name']} has no time_unit")
    return doc


def import_gbench():
    sys.path.insert(0, GBENCH)
    try:
        import gbench.report  # noqa: F401
        import scipy.stats  # noqa: F401
    except ImportError as e:
        raise CompareError(f"Google Benchmark's compare tools are missing ({e.name}) for "
                           f"{sys.executable}: apt-get install libbenchmark-tools python3-scipy, "
                           "and run Debian's /usr/bin/python3")
    return sys.modules["gbench.report"]


def compare_timings(old_path, new_path, threshold, alpha):
    old, new = load_timings(old_path), load_timings(new_path)
    gbench = import_gbench()
    # Only the repetitions go in: compare.py recomputes what it needs, and our
    # aggregates would otherwise be compared as benchmarks of their own.
    def iterations(doc):
        return {"context": doc["context"],
                "benchmarks": [b for b in doc["benchmarks"]
                               if b.get("run_type", "iteration") == "iteration"
                               and not b.get("error_occurred")]}
    json1, json2 = iterations(old), iterations(new)
    common = {b["name"] for b in json1["benchmarks"]} & {b["name"] for b in json2["benchmarks"]}
    if not common:
        raise CompareError(f"{old_path} and {new_path} have no benchmark in common")
    diff = gbench.get_difference_report(json1, json2, utest=True)
    for line in gbench.print_difference_report(diff, utest=True, utest_alpha=alpha,
                                               use_color=False):
        print(line)

    slower, untested = [], 0
    for entry in diff:
        if entry["name"] == "OVERALL_GEOMEAN" or not entry["measurements"]:
            continue
        before = statistics.median(m["real_time"] for m in entry["measurements"])
        after = statistics.median(m["real_time_other"] for m in entry["measurements"])
        change = after / before - 1 if before > 0 else 0.0
        utest = entry.get("utest") or {}
        p = utest.get("time_pvalue")
        if p is None:
            untested += 1
            continue
        if change * 100 > threshold and p < alpha:
            slower.append((entry["name"], change, p))
    print()
    if untested:
        print(f"compare: {untested} benchmark(s) had too few repetitions for the U test "
              "(need 2, and 4 or more to reach p < 0.05); they cannot be flagged")
    if slower:
        print(f"compare: {len(slower)} benchmark(s) slower by more than {threshold:g}% "
              f"with p < {alpha:g}:")
        for name, change, p in slower:
            print(f"  {name}: {100 * change:+.1f}% (p = {p:.4f})")
        return 1
    print(f"compare: no benchmark slower by more than {threshold:g}% with p < {alpha:g} "
          f"({len(common)} in common)")
    return 0


def load_cachegrind(path):
    try:
        doc = cachegrind.load(path)
    except cachegrind.ProfileError as e:
        raise CompareError(str(e))
    geometry = doc["context"]["cache_geometry"]
    rows = {(r["family"], r["variant"], r["size"]): r for r in doc["profiles"]}
    return [geometry[n] for n in ("I1", "D1", "LL")], rows, doc["context"]


def load_gpu_profile(path):
    try:
        doc = gpu_profile.load(path)
    except gpu_profile.ProfileError as e:
        raise CompareError(str(e))
    return doc["context"].get("device"), {(r["family"], r["variant"], r["size"]): r["metrics"]
                                          for r in doc["profiles"]}


def compare_gpu_profile(old_path, new_path, threshold):
    old_device, old = load_gpu_profile(old_path)
    new_device, new = load_gpu_profile(new_path)
    if old_device != new_device:
        raise CompareError(f"{old_path} and {new_path} were profiled on different devices "
                           f"({old_device} and {new_device}): counts are not comparable")
    measures = {
        "DRAM bytes": lambda m: m["dram_read_bytes"] + m["dram_write_bytes"],
        "L2 bytes": lambda m: m["l2_bytes"],
        "instructions": lambda m: m["instructions"],
    }
    return compare_counts(old, new, old_path, new_path, measures, threshold,
                          "DRAM or L2 bytes or instructions")


def compare_cachegrind(old_path, new_path, threshold):
    old_shape, old, old_ctx = load_cachegrind(old_path)
    new_shape, new, new_ctx = load_cachegrind(new_path)
    if old_shape != new_shape:
        raise CompareError(f"{old_path} and {new_path} simulate different caches "
                           f"({old_shape} and {new_shape}): counts are not comparable")
    measures = {
        "instructions": lambda c: c["Ir"],
        "D1 misses": lambda c: c["D1mr"] + c["D1mw"],
        "LL misses": lambda c: c["DLmr"] + c["DLmw"],
    }
    return compare_counts(old, new, old_path, new_path, measures, threshold,
                          "instructions or misses")


def compare_counts(old, new, old_path, new_path, measures, threshold, what):
    """The table of each count old and new, rung by rung; exit status 1 when
    one grew by more than `threshold` percent."""
    common = [k for k in old if k in new]
    if not common:
        raise CompareError(f"{old_path} and {new_path} have no rung in common")
    print(f"| rung | size | " + " | ".join(f"{m} old | new | change" for m in measures) + " |")
    print("|" + "---|" * (2 + 3 * len(measures)))
    grown = []
    for key in common:
        cells = []
        for name, get in measures.items():
            try:
                a, b = get(old[key]), get(new[key])
            except KeyError:
                cells += ["—", "—", "—"]  # a count this profiler did not have
                continue
            change = (b - a) / a if a else (0.0 if b == 0 else math.inf)
            # A count that small is noise from the driver around the kernel, not the kernel.
            if change * 100 > threshold and b - a > 1000:
                grown.append((key, name, a, b, change))
            cells += [f"{a:,}", f"{b:,}", f"{100 * change:+.2f}%"]
        print(f"| {key[0]}/{key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    missing = [k for k in old if k not in new]
    print()
    for k in missing:
        print(f"compare: {'/'.join(k[:2])} at {k[2]} is in {old_path} but not in {new_path}")
    if grown:
        print(f"compare: {len(grown)} count(s) grew by more than {threshold:g}%:")
        for key, name, a, b, change in grown:
            print(f"  {key[0]}/{key[1]} {key[2]}: {name} {a:,} -> {b:,} ({100 * change:+.2f}%)")
        return 1
    print(f"compare: no rung's {what} grew by more than {threshold:g}% "
          f"({len(common)} rungs in common)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["timings", "cachegrind", "gpu_profile"])
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="OLD NEW, or NEW alone (against baseline/NEW beside it)")
    parser.add_argument("--threshold", type=float,
                        help="percent growth that counts as a regression (timings 5, "
                             "cachegrind 1, gpu_profile 5)")
    parser.add_argument("--alpha", type=float, default=0.05, help="U test significance (timings)")
    args = parser.parse_args()
    try:
        if len(args.files) > 2:
            raise CompareError("give OLD NEW, or NEW alone")
        if len(args.files) == 1:
            old_path, new_path = baseline_of(args.files[0]), args.files[0]
            if not os.path.exists(old_path):
                raise CompareError(f"no baseline for {new_path} (looked for {old_path})")
        else:
            old_path, new_path = args.files
        threshold = args.threshold
        if threshold is None:
            threshold = 1.0 if args.kind == "cachegrind" else 5.0
        if not math.isfinite(threshold) or threshold < 0:
            raise CompareError("--threshold must be a non-negative number")
        if not 0 < args.alpha < 1:
            raise CompareError("--alpha must be between 0 and 1")
        if args.kind == "timings":
            return compare_timings(old_path, new_path, threshold, args.alpha)
        if args.kind == "gpu_profile":
            return compare_gpu_profile(old_path, new_path, threshold)
        return compare_cachegrind(old_path, new_path, threshold)
    except CompareError as e:
        print(f"compare.py: {report.one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

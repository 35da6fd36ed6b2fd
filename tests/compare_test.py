#!/usr/bin/env python3
"""bench/compare.py and bench/cachegrind.py's reader, on made-up files whose
answer is known: a clear slowdown must be flagged, noise and speed-ups must
not, and bad input must give one line and exit 2."""

import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARE = os.path.join(ROOT, "bench", "compare.py")
CACHEGRIND = os.path.join(ROOT, "bench", "cachegrind.py")


def timings(times_by_name, seed=0):
    """A locality_bench-like file: every repetition of every benchmark."""
    rng = random.Random(seed)
    benchmarks = []
    for name, times in times_by_name.items():
        for i, t in enumerate(times):
            t *= 1 + rng.uniform(-0.002, 0.002)
            benchmarks.append({"name": name, "run_name": name, "run_type": "iteration",
                               "repetitions": len(times), "repetition_index": i, "threads": 1,
                               "iterations": 10, "real_time": t, "cpu_time": t,
                               "time_unit": "ms", "flops": 1e9 / t, "peak_fraction": 0.5})
    return {"context": {"num_cpus": 2}, "benchmarks": benchmarks}


def profile(counts):
    rows = []
    for (family, variant), ir in counts.items():
        rows.append({"family": family, "rung": 0, "variant": variant, "size": "128x128x128",
                     "flops": 4194304, "command": "x", "Ir": ir, "I1mr": 0, "ILmr": 0,
                     "Dr": ir // 2, "D1mr": ir // 20, "DLmr": 1000, "Dw": ir // 8,
                     "D1mw": ir // 100, "DLmw": 10})
    return {"context": {"cache_geometry": {"I1": [32768, 8, 64], "D1": [49152, 12, 64],
                                           "LL": [2097152, 16, 64], "note": "test"}},
            "profiles": rows}


A = "cpu/matmul/packed/512x512x512/omp_threads:1/real_time"
B = "cpu/matmul/naive/512x512x512/omp_threads:1/real_time"


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, doc):
        path = os.path.join(self.dir.name, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def compare(self, *args):
        return subprocess.run([sys.executable, COMPARE, *args], capture_output=True, text=True)

    def assert_bad_input(self, r, message):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn(message, r.stderr)

    def test_a_clear_slowdown_is_flagged(self):
        old = self.write("old.json", timings({A: [10.0] * 9, B: [500.0] * 9}))
        new = self.write("new.json", timings({A: [11.0] * 9, B: [500.0] * 9}, seed=1))
        r = self.compare("timings", old, new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("packed/512x512x512", r.stdout.split("slower by more than")[1])
        self.assertNotIn("naive/512", r.stdout.split("slower by more than")[1])

    def test_noise_and_speedups_pass(self):
        old = self.write("old.json", timings({A: [10.0] * 9, B: [500.0] * 9}))
        new = self.write("new.json", timings({A: [10.2] * 9, B: [400.0] * 9}, seed=2))
        r = self.compare("timings", old, new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no benchmark slower by more than 5%", r.stdout)

    def test_the_threshold_is_an_option(self):
        old = self.write("old.json", timings({A: [10.0] * 9}))
        new = self.write("new.json", timings({A: [10.3] * 9}, seed=3))
        self.assertEqual(self.compare("timings", old, new).returncode, 0)
        self.assertEqual(self.compare("timings", old, new, "--threshold", "2").returncode, 1)

    def test_three_repetitions_cannot_be_significant(self):
        old = self.write("old.json", timings({A: [10.0] * 3}))
        new = self.write("new.json", timings({A: [20.0] * 3}, seed=4))
        r = self.compare("timings", old, new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("U Test, Repetitions: 3 vs 3", r.stdout)

    def test_one_file_is_compared_with_its_baseline(self):
        self.write("m/baseline/cpu_matmul.json", timings({A: [10.0] * 9}))
        new = self.write("m/cpu_matmul.json", timings({A: [12.0] * 9}, seed=5))
        self.assertEqual(self.compare("timings", new).returncode, 1)
        lonely = self.write("n/cpu_matmul.json", timings({A: [12.0] * 9}))
        self.assert_bad_input(self.compare("timings", lonely), "no baseline")

    def test_bad_timing_files(self):
        good = self.write("good.json", timings({A: [10.0] * 9}))
        self.assert_bad_input(self.compare("timings", good, os.path.join(self.dir.name, "no.json")),
                              "cannot read")
        self.assert_bad_input(self.compare("timings", good, self.write("e.json", "")), "is empty")
        self.assert_bad_input(self.compare("timings", good, self.write("t.json", '{"conte')),
                              "not valid JSON")
        self.assert_bad_input(self.compare("timings", good, self.write("x.json", {"a": 1})),
                              "not Google Benchmark JSON")
        other = self.write("o.json", timings({B: [1.0] * 9}))
        self.assert_bad_input(self.compare("timings", good, other), "no benchmark in common")
        broken = timings({A: [10.0] * 9})
        broken["benchmarks"][0]["real_time"] = "fast"
        self.assert_bad_input(self.compare("timings", good, self.write("b.json", broken)),
                              "no valid real_time")

    def test_a_time_of_zero_is_not_a_measurement(self):
        # Issue 21: 0 -> 100 ms over 6 repetitions reported "no benchmark slower", exit 0.
        for bad in (0.0, -1.0, None):
            old = timings({A: [1.0] * 6})
            for b in old["benchmarks"]:
                if bad is None:
                    del b["real_time"]
                else:
                    b["real_time"] = bad
            r = self.compare("timings", self.write("z.json", old),
                             self.write("n.json", timings({A: [100.0] * 6})))
            self.assert_bad_input(r, "no valid real_time (a positive time)")

    def test_cachegrind_growth_over_one_percent_fails(self):
        counts = {("matmul", "naive"): 9_000_000, ("matmul", "packed"): 700_000}
        old = self.write("old.json", profile(counts))
        same = self.write("same.json", profile(counts))
        self.assertEqual(self.compare("cachegrind", old, same).returncode, 0)
        grown = dict(counts)
        grown[("matmul", "packed")] = 720_000  # +2.9% instructions and D1 misses
        r = self.compare("cachegrind", old, self.write("grown.json", profile(grown)))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("matmul/packed 128x128x128: instructions 700,000 -> 720,000", r.stdout)

    def test_cachegrind_bad_input(self):
        counts = {("matmul", "naive"): 9_000_000}
        old = self.write("old.json", profile(counts))
        other = profile(counts)
        other["context"]["cache_geometry"]["LL"] = [1048576, 16, 64]
        self.assert_bad_input(self.compare("cachegrind", old, self.write("g.json", other)),
                              "simulate different caches")
        moved = profile({("attention", "flash"): 5})
        self.assert_bad_input(self.compare("cachegrind", old, self.write("m.json", moved)),
                              "no rung in common")
        broken = profile(counts)
        broken["profiles"][0]["Ir"] = -3
        self.assert_bad_input(self.compare("cachegrind", old, self.write("b.json", broken)),
                              "not a bench/cachegrind.py file")
        self.assert_bad_input(self.compare("cachegrind", old, self.write("e.json", "")),
                              "is empty")
        # Issue 21: a huge count was "integer division result too large", a traceback.
        huge = profile(counts)
        huge["profiles"][0]["Ir"] = 10 ** 400
        r = subprocess.run([sys.executable, CACHEGRIND, "--table", self.write("h.json", huge)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("an integer of 401 digits", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assert_bad_input(self.compare("cachegrind", old, self.write("h.json", huge)),
                              "an integer of 401 digits")
        self.assert_bad_input(self.compare("cachegrind", old,
                                           self.write("d.json", "[" * 5000 + "]" * 5000)),
                              "levels deep")
        r = subprocess.run([sys.executable, CACHEGRIND, "--table", self.write("x.json", [1])],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a bench/cachegrind.py file", r.stderr)


if __name__ == "__main__":
    unittest.main()

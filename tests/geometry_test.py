#!/usr/bin/env python3
"""bench/cachegrind.py's cache geometry, read through `locality caches --json`
(the reader the rungs cut their blocks by) on machines that do not expose
what it first looks for: sysfs present, sysfs empty (sysconf answers), a
bogus L3 as an EPYC VM's sysconf reports it, and neither (a clear error, and
the main job's profile step can say why it skipped).

    python3 tests/geometry_test.py <path to the locality binary>
"""

import os
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHEGRIND = os.path.join(ROOT, "bench", "cachegrind.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import cachegrind  # noqa: E402

BINARY = None  # set from the command line

# What sysconf (and `getconf -a`) reported on an AMD EPYC virtual machine with
# no sysfs cache folder: no L1i associativity, and an L3 of associativity 0.
EPYC_SYSCONF = [(1, "Instruction", 32768, 0, 64), (1, "Data", 49152, 12, 64),
                (2, "Unified", 1048576, 8, 64), (3, "Unified", 532676608, 0, 64)]


class Geometry(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def sysfs(self, entries):
        root = os.path.join(self.dir, "cache")
        for i, (level, kind, size, ways, line) in enumerate(entries):
            d = os.path.join(root, f"index{i}")
            os.makedirs(d)
            for name, value in (("level", level), ("type", kind), ("size", size),
                                ("ways_of_associativity", ways),
                                ("coherency_line_size", line)):
                with open(os.path.join(d, name), "w", encoding="ascii") as f:
                    f.write(f"{value}\n")
        return root

    def empty(self):
        root = os.path.join(self.dir, "empty")
        os.makedirs(root)
        return root

    def failing_binary(self):
        """A `locality` whose reader finds neither source, as the real one says it."""
        script = os.path.join(self.dir, "locality")
        with open(script, "w", encoding="ascii") as f:
            f.write("#!/bin/sh\necho 'locality: cannot read the cache geometry: /x lists no "
                    "caches; sysconf reports no cache sizes' >&2\nexit 2\n")
        os.chmod(script, stat.S_IRWXU)
        return script

    def test_sysfs_first_and_an_odd_l3_skipped(self):
        root = self.sysfs([(1, "Data", "48K", 12, 64), (1, "Instruction", "32K", 8, 64),
                           (2, "Unified", "2048K", 16, 64), (3, "Unified", "16896K", 11, 64)])
        g = cachegrind.machine_geometry(BINARY, root)
        self.assertEqual(g["D1"], [48 << 10, 12, 64])
        self.assertEqual(g["I1"], [32 << 10, 8, 64])
        self.assertEqual(g["LL"], [2 << 20, 16, 64])
        self.assertEqual(g["blocks_for"], [48 << 10, 2 << 20])
        self.assertEqual(g["source"], f"sysfs ({root})")
        self.assertIn("LL modelled as the L2", g["note"])
        self.assertIn("not a power of two", g["note"])

    def test_empty_or_missing_sysfs_falls_back_to_sysconf(self):
        for folder in (self.empty(), os.path.join(self.dir, "no-such-folder")):
            g = cachegrind.machine_geometry(BINARY, folder)
            self.assertEqual(g["source"], "sysconf")
            self.assertGreater(g["D1"][0], 0)

    def test_epyc_sysconf_is_checked(self):
        g = cachegrind.geometry_from(EPYC_SYSCONF, "sysconf")
        self.assertEqual(g["D1"], [48 << 10, 12, 64])
        self.assertEqual(g["LL"], [1 << 20, 8, 64])  # the bogus L3 is not the LL
        self.assertEqual(g["I1"], g["D1"])           # no L1i associativity reported
        self.assertEqual(g["blocks_for"], [48 << 10, 1 << 20])
        self.assertIn("I1 modelled as D1", g["note"])
        self.assertIn("L3", g["note"])

    def test_blocks_sysfs_tells_the_rungs_the_recorded_caches(self):
        g = cachegrind.geometry_from(EPYC_SYSCONF, "sysconf")
        folder = cachegrind.blocks_sysfs(g, self.dir)
        caches, source = cachegrind.read_caches(BINARY, folder)
        self.assertEqual(source, f"sysfs ({folder})")
        self.assertEqual([(c[0], c[1], c[2]) for c in caches],
                         [(1, "Data", 48 << 10), (2, "Unified", 1 << 20)])
        # A result file from before blocks_for was recorded: the reference machine's.
        legacy = {k: v for k, v in g.items() if k != "blocks_for"}
        caches, _ = cachegrind.read_caches(BINARY, cachegrind.blocks_sysfs(legacy, self.empty()))
        self.assertEqual([c[2] for c in caches], [48 << 10, 2 << 20])

    def test_the_table_names_the_host_and_where_the_geometry_came_from(self):
        g = cachegrind.geometry_from(EPYC_SYSCONF, "sysconf")
        doc = {"context": {"build": "b", "valgrind": "v", "git_commit": "c", "host": "Some CPU",
                           "cache_geometry": g}, "profiles": []}
        self.assertIn("; simulated on Some CPU, the geometry from sysconf.", cachegrind.table(doc))
        doc["context"]["cache_geometry"] = dict(g, source="results/x/cachegrind.json")
        self.assertIn("; simulated on Some CPU, the geometry from results/x/cachegrind.json.",
                      cachegrind.table(doc))
        del doc["context"]["host"]  # a file from before the host was recorded
        self.assertNotIn("simulated on", cachegrind.table(doc))
        self.assertNotEqual(cachegrind.host_cpu(), "")

    def test_neither_source_is_one_clear_error(self):
        with self.assertRaises(cachegrind.ProfileError) as e:
            cachegrind.machine_geometry(self.failing_binary())
        self.assertIn("cannot read the cache geometry", str(e.exception))
        self.assertIn("lists no caches", str(e.exception))
        self.assertIn("sysconf", str(e.exception))

    def test_neither_source_exits_2_with_one_line(self):
        r = subprocess.run([sys.executable, CACHEGRIND, "--binary", self.failing_binary(),
                            "--out", os.path.join(self.dir, "o")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot read the cache geometry", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "o")))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: geometry_test.py <path to the locality binary>")
    BINARY = sys.argv.pop(1)
    unittest.main()

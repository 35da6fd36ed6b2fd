#!/usr/bin/env python3
"""bench/cachegrind.py's cache-geometry reader on machines that do not expose
what it first looks for: sysfs present, sysfs empty (getconf answers),
getconf with a bogus L3, and neither (a clear error, and the main job's
profile step can say why it skipped)."""

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

# What `getconf -a` printed on an AMD EPYC virtual machine with no sysfs cache
# folder: no L1i associativity, and an L3 of associativity 0.
EPYC_GETCONF = """LEVEL1_ICACHE_SIZE                 32768
LEVEL1_ICACHE_ASSOC
LEVEL1_ICACHE_LINESIZE             64
LEVEL1_DCACHE_SIZE                 49152
LEVEL1_DCACHE_ASSOC                12
LEVEL1_DCACHE_LINESIZE             64
LEVEL2_CACHE_SIZE                  1048576
LEVEL2_CACHE_ASSOC                 8
LEVEL2_CACHE_LINESIZE              64
LEVEL3_CACHE_SIZE                  532676608
LEVEL3_CACHE_ASSOC                 0
LEVEL3_CACHE_LINESIZE              64
LEVEL4_CACHE_SIZE
"""


class Geometry(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.path = os.environ.get("PATH", "")

    def tearDown(self):
        os.environ["PATH"] = self.path
        self.tmp.cleanup()

    def fake_getconf(self, output):
        """A getconf earlier on PATH that prints `output`."""
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir, exist_ok=True)
        script = os.path.join(bindir, "getconf")
        with open(script, "w", encoding="ascii") as f:
            f.write("#!/bin/sh\ncat <<'EOF'\n" + output + "EOF\n")
        os.chmod(script, stat.S_IRWXU)
        os.environ["PATH"] = bindir + os.pathsep + self.path

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

    def test_sysfs_first_and_an_odd_l3_skipped(self):
        root = self.sysfs([(1, "Data", "48K", 12, 64), (1, "Instruction", "32K", 8, 64),
                           (2, "Unified", "2048K", 16, 64), (3, "Unified", "16896K", 11, 64)])
        self.fake_getconf("")  # must not be needed
        g = cachegrind.machine_geometry(root)
        self.assertEqual(g["D1"], [48 << 10, 12, 64])
        self.assertEqual(g["I1"], [32 << 10, 8, 64])
        self.assertEqual(g["LL"], [2 << 20, 16, 64])
        self.assertTrue(g["source"].startswith("sysfs"))
        self.assertIn("LL modelled as the L2", g["note"])
        self.assertIn("not a power of two", g["note"])

    def test_empty_sysfs_falls_back_to_getconf_and_checks_it(self):
        self.fake_getconf(EPYC_GETCONF)
        g = cachegrind.machine_geometry(self.empty())
        self.assertEqual(g["source"], "getconf")
        self.assertEqual(g["D1"], [48 << 10, 12, 64])
        self.assertEqual(g["LL"], [1 << 20, 8, 64])  # the bogus L3 is not the LL
        self.assertEqual(g["I1"], g["D1"])           # no L1i associativity reported
        self.assertIn("I1 modelled as D1", g["note"])
        self.assertIn("L3", g["note"])

    def test_missing_sysfs_folder_falls_back_too(self):
        self.fake_getconf(EPYC_GETCONF)
        g = cachegrind.machine_geometry(os.path.join(self.dir, "no-such-folder"))
        self.assertEqual(g["source"], "getconf")

    def test_neither_source_is_one_clear_error(self):
        self.fake_getconf("")
        with self.assertRaises(cachegrind.ProfileError) as e:
            cachegrind.machine_geometry(self.empty())
        self.assertIn("cannot read the cache geometry", str(e.exception))
        self.assertIn("lists no caches", str(e.exception))
        self.assertIn("getconf", str(e.exception))

    def test_neither_source_exits_2_with_one_line(self):
        self.fake_getconf("")
        binary = os.path.join(self.dir, "bin", "getconf")  # any executable will do
        r = subprocess.run([sys.executable, CACHEGRIND, "--binary", binary,
                            "--cache-sysfs", self.empty(), "--out", os.path.join(self.dir, "o")],
                           capture_output=True, text=True, env=os.environ)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot read the cache geometry", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "o")))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""gpu/ncu_profile.py and compare.py's gpu_profile without a GPU: a stand-in
`ncu` (it answers --query-metrics, --version, a profile run and the raw
page of its report as the real one does, from numbers this test chose) and
a stand-in `locality list`. The profile sums a rung's launches and weights
its rates, leaves out the metrics this ncu lacks and names them, names a
rung whose profile failed and goes on (exit 1), stops one that never
finishes (its program too) and goes on, leaves out and names the rungs
--skip names; the tables show the lesson
numbers (sectors per request, bytes per FLOP); compare.py flags DRAM growth
and not noise; bad files exit 2 with one line."""

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gpu", "ncu_profile.py")
COMPARE = os.path.join(ROOT, "bench", "compare.py")
sys.path.insert(0, os.path.join(ROOT, "gpu"))
import ncu_profile  # noqa: E402

LOCALITY = """#!/bin/sh
[ "$1" = list ] || exit 3
echo "family     rung  variant          device lesson"
echo "matmul     0     naive            cpu    a CPU rung, not profiled"
echo "matmul     0     naive            gpu    one thread per element"
echo "matmul     1     coalesced        gpu    a warp along a row"
echo "attention  1     tiled            gpu    head by head"
echo "attention  3     flash2           gpu    fused"
"""

# The stand-in ncu: launches per variant (kernel name, {metric: value}); the
# metric stall_barrier's base name is "unknown" to it.
NCU = textwrap.dedent("""\
    #!/usr/bin/env python3
    import csv, json, os, sys
    args = sys.argv[1:]
    LAUNCHES = {LAUNCHES}
    if args == ["--query-metrics"]:
        print("Device NVIDIA Test")
        print("Metric Name   Metric Type   Metric Unit   Metric Description")
        for name in {KNOWN}:
            print(name + "   Counter   byte   something")
        sys.exit(0)
    if args == ["--version"]:
        print("NVIDIA (R) Nsight Compute Command Line Profiler")
        print("Version 2099.1.0.0 (test)")
        sys.exit(0)
    if args[0] == "--import":
        launches = json.load(open(args[1]))
        names = sorted({{m for _, v in launches for m in v}})
        w = csv.writer(sys.stdout, quoting=csv.QUOTE_ALL)
        w.writerow(["ID", "Process ID", "Kernel Name"] + names)
        w.writerow(["", "", ""] + ["byte"] * len(names))
        for i, (kernel, values) in enumerate(launches):
            w.writerow([str(i), "1", kernel] + ["{{:,}}".format(values.get(n, 0)) for n in names])
        sys.exit(0)
    metrics = args[args.index("--metrics") + 1].split(",")
    for m in metrics:
        if m.split(".")[0] not in {KNOWN}:
            print("==ERROR== Failed to find metric " + m, file=sys.stderr)
            sys.exit(1)
    report = args[args.index("--export") + 1]
    variant = args[args.index("run") + 2]
    if variant == os.environ.get("NCU_HANG"):  # its program never finishes
        import subprocess
        child = subprocess.Popen(["sleep", "600"])
        open(os.environ["NCU_HANG_PID"], "w").write(str(child.pid))
        child.wait()
    if variant not in LAUNCHES:
        print("==ERROR== The application returned an error code (2)", file=sys.stderr)
        sys.exit(1)
    launches = [(k, {{m: v for m, v in values.items() if m in metrics}})
                for k, values in LAUNCHES[variant]]
    json.dump(launches, open(report + ".ncu-rep", "w"))
""")


def launch(kernel, dram, l2, sectors, requests, duration, occupancy, inst=1000):
    return [kernel, {"gpu__time_duration.sum": duration, "dram__bytes_read.sum": dram,
                     "dram__bytes_write.sum": dram / 4, "lts__t_bytes.sum": l2,
                     "lts__t_sector_hit_rate.pct": 50.0,
                     "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum": sectors,
                     "l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum": requests,
                     "sm__warps_active.avg.pct_of_peak_sustained_active": occupancy,
                     "smsp__inst_executed.sum": inst,
                     "dram__bytes.sum.peak_sustained": 1000.0,
                     "dram__cycles_elapsed.avg.per_second": 2e9}]


LAUNCHES = {
    "naive": [launch("void locality::gpu::naive_kernel<true>(const float *)", 8e9, 3e10, 32e6,
                     1e6, 1e7, 90.0)],
    "coalesced": [launch("coalesced_kernel(const float *)", 4e9, 1e10, 4e6, 1e6, 2e6, 80.0)],
    # Two launches: counts add, the occupancy averages by duration (3:1).
    "tiled": [launch("transpose_kernel", 1e8, 2e8, 4e5, 1e5, 3e5, 40.0),
              launch("softmax_rows_kernel", 3e8, 6e8, 4e5, 1e5, 1e5, 80.0)],
    # flash2 is missing: its profile fails.
}
KNOWN = sorted({m.split(".")[0] for v in LAUNCHES.values() for _, ms in v for m in ms} |
               {"smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active"})


class NcuProfile(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        self.locality, self.ncu = os.path.join(d, "locality"), os.path.join(d, "ncu")
        with open(self.locality, "w") as f:
            f.write(LOCALITY)
        with open(self.ncu, "w") as f:
            f.write(NCU.replace("{{", "{").replace("}}", "}")
                    .replace("{LAUNCHES}", repr(LAUNCHES)).replace("{KNOWN}", repr(KNOWN)))
        for p in (self.locality, self.ncu):
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        self.out = os.path.join(d, "gpu_profile.json")

    def tearDown(self):
        self.dir.cleanup()

    def profile(self, *extra):
        return subprocess.run([sys.executable, SCRIPT, "--locality", self.locality, "--ncu",
                               self.ncu, "--out", self.out, *extra],
                              capture_output=True, text=True, timeout=300)

    def test_profile_sums_weights_and_goes_on_past_a_failure(self):
        r = self.profile()
        self.assertEqual(r.returncode, 1, r.stderr)  # flash2 failed
        with open(self.out, encoding="utf-8") as f:
            doc = json.load(f)
        ctx = doc["context"]
        self.assertEqual(ctx["ncu"], "Version 2099.1.0.0 (test)")
        self.assertIn("smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
                      ctx["missing_metrics"])
        self.assertEqual(len(ctx["failed"]), 1)
        self.assertIn("attention/flash2 1x4x4096x4096x64", ctx["failed"][0])
        rows = {(r["variant"], r["size"]): r for r in doc["profiles"]}
        self.assertEqual(set(rows), {("naive", "2048"), ("naive", "4096"), ("coalesced", "2048"),
                                     ("coalesced", "4096"), ("tiled", "1x4x4096x4096x64")})
        tiled = rows[("tiled", "1x4x4096x4096x64")]
        self.assertEqual(tiled["launches"], 2)
        self.assertEqual(tiled["kernels"], ["transpose_kernel", "softmax_rows_kernel"])
        self.assertAlmostEqual(tiled["metrics"]["dram_read_bytes"], 4e8)
        self.assertAlmostEqual(tiled["metrics"]["occupancy_pct"], 50.0)  # (3 x 40 + 80) / 4
        self.assertEqual(rows[("naive", "2048")]["kernels"], ["naive_kernel"])
        self.assertEqual(rows[("naive", "2048")]["command"],
                         "locality run matmul naive --device gpu --repeat 1 --no-verify "
                         "--size 2048")

        page = os.path.join(self.dir.name, "README.md")
        with open(page, "w") as f:
            f.write("x\n<!-- gpu-profile:begin -->\nold\n<!-- gpu-profile:end -->\n")
        plot = os.path.join(self.dir.name, "roofline.png")
        try:
            import matplotlib  # noqa: F401
            plotting = ["--plot", plot]
        except ImportError:  # the tables only, on a Python without it
            plotting = []
        t = subprocess.run([sys.executable, SCRIPT, "--table", self.out, "--readme", page,
                            *plotting], capture_output=True, text=True, timeout=300)
        self.assertEqual(t.returncode, 0, t.stderr)
        with open(page, encoding="utf-8") as f:
            text = f.read()
        # Coalescing in numbers: 32 sectors per load request, then 4.
        self.assertRegex(text, r"\| 0 \| naive \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| 50% \| 32\.0 \|")
        self.assertRegex(text, r"\| 1 \| coalesced \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| 50% \| 4\.0 \|")
        self.assertIn("DRAM 2.00 TB/s", text)
        self.assertIn("attention/flash2", text)
        if plotting:
            self.assertGreater(os.path.getsize(plot), 0)

    def test_a_rung_that_never_finishes_is_stopped_and_skip_leaves_out(self):
        pid_file = os.path.join(self.dir.name, "hung.pid")
        os.environ.update(NCU_HANG="coalesced", NCU_HANG_PID=pid_file)
        try:
            r = self.profile("--case-timeout", "2", "--skip", "attention/flash2,attention/tiled")
        finally:
            del os.environ["NCU_HANG"], os.environ["NCU_HANG_PID"]
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(self.out, encoding="utf-8") as f:
            doc = json.load(f)
        failed = doc["context"]["failed"]
        self.assertEqual(len(failed), 2, failed)  # both of coalesced's sizes
        self.assertTrue(all(f.startswith("matmul/coalesced") and "stopped after 2 s" in f
                            for f in failed), failed)
        self.assertEqual({(r["variant"], r["size"]) for r in doc["profiles"]},
                         {("naive", "2048"), ("naive", "4096")})
        self.assertEqual(doc["context"]["not_profiled"],
                         ["attention/flash2: left out (--skip)",
                          "attention/tiled: left out (--skip)"])
        # The stopped profile's program went with it.
        with open(pid_file, encoding="utf-8") as f:
            pid = int(f.read())
        with self.assertRaises(ProcessLookupError):
            for _ in range(50):  # a moment for the kill to land
                os.kill(pid, 0)
                time.sleep(0.1)

    def test_compare_flags_dram_growth(self):
        self.assertEqual(self.profile().returncode, 1)
        with open(self.out, encoding="utf-8") as f:
            doc = json.load(f)
        grown = os.path.join(self.dir.name, "grown.json")
        doc["profiles"][0]["metrics"]["dram_read_bytes"] *= 1.2
        doc["profiles"][1]["metrics"]["instructions"] *= 1.01  # under the 5% default
        with open(grown, "w") as f:
            json.dump(doc, f)
        same = subprocess.run([sys.executable, COMPARE, "gpu_profile", self.out, self.out],
                              capture_output=True, text=True)
        self.assertEqual(same.returncode, 0, same.stdout + same.stderr)
        r = subprocess.run([sys.executable, COMPARE, "gpu_profile", self.out, grown],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("1 count(s) grew", r.stdout)
        self.assertIn("DRAM bytes", r.stdout)

    def test_bad_input_exits_2_with_one_line(self):
        bad = os.path.join(self.dir.name, "bad.json")
        with open(bad, "w") as f:
            json.dump({"context": {}, "profiles": [{"family": "matmul"}]}, f)
        for cmd in ([sys.executable, SCRIPT, "--table", bad],
                    [sys.executable, COMPARE, "gpu_profile", bad, bad],
                    [sys.executable, SCRIPT, "--locality", self.locality, "--ncu",
                     os.path.join(self.dir.name, "no-ncu"), "--out", self.out]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertNotIn("Traceback", r.stderr)

    def test_raw_page_parsing(self):
        text = ('"ID","Kernel Name","dram__bytes_read.sum"\n"","","byte"\n'
                '"0","k(int)","1,024"\n"1","k(int)","n/a"\n')
        self.assertEqual(ncu_profile.parse_raw(text, ["dram__bytes_read.sum"]),
                         [("k(int)", {"dram__bytes_read.sum": 1024.0}), ("k(int)", {})])


if __name__ == "__main__":
    unittest.main()

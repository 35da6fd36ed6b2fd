#!/usr/bin/env python3
"""gpu/torch_sdpa.py without a GPU: it takes its shapes from the ladder's
own benchmark list, says why it left torch out (exit 0, no rows) where
torch or a device is missing, refuses a bad filter with exit 2; and, where
torch itself is importable, its check-and-time loop on the CPU: a right
backend gets timed rows with its label and flops, a wrong one an error row,
and the math backend stays out past its largest sequence."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gpu", "torch_sdpa.py")
sys.path.insert(0, os.path.join(ROOT, "gpu"))
import torch_sdpa  # noqa: E402

LISTING = """gpu/matmul/naive/256x256x256/manual_time
gpu/attention/naive/32x32x512x512x64/causal:0/manual_time
gpu/attention/flash/32x32x512x512x64/causal:0/manual_time
gpu/attention/cublas/32x32x512x512x64/causal:1/manual_time
gpu/attention/flash2/1x16x16384x16384x128/causal:0/manual_time
gpu/attention_bf16/flash2_mma/32x32x512x512x64/causal:1/manual_time
"""

try:
    import torch
except ImportError:
    torch = None


class Shapes(unittest.TestCase):
    def test_each_shape_once_in_listed_order(self):
        import re
        self.assertEqual(torch_sdpa.parse_shapes(LISTING, re.compile("")),
                         [(32, 32, 512, 512, 64, 0), (32, 32, 512, 512, 64, 1),
                          (1, 16, 16384, 16384, 128, 0)])
        self.assertEqual(torch_sdpa.parse_shapes(LISTING, re.compile(r"x16384x")),
                         [(1, 16, 16384, 16384, 128, 0)])
        self.assertEqual(torch_sdpa.parse_shapes(LISTING, re.compile(""), "attention_bf16"),
                         [(32, 32, 512, 512, 64, 1)])

    def test_row_names_follow_the_ladder(self):
        self.assertEqual(torch_sdpa.row_name("efficient", (2, 4, 8, 9, 16, 1)),
                         "gpu/attention/torch_sdpa_efficient/2x4x8x9x16/causal:1/manual_time")
        self.assertEqual(torch_sdpa.row_name("flash", (2, 4, 8, 9, 16, 0), "attention_bf16"),
                         "gpu/attention_bf16/torch_sdpa_flash/2x4x8x9x16/causal:0/manual_time")


class WithoutADevice(unittest.TestCase):
    def run_script(self, *args):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "peers.json")
            done = subprocess.run([sys.executable, SCRIPT, "--out", out, *args],
                                  capture_output=True, text=True, timeout=300)
            doc = None
            if os.path.exists(out):
                with open(out, encoding="utf-8") as f:
                    doc = json.load(f)
        return done, doc

    def test_left_out_with_the_reason(self):
        if torch is not None and torch.cuda.is_available():
            self.skipTest("a GPU is present")
        done, doc = self.run_script()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(doc["benchmarks"], [])
        self.assertRegex(doc["context"]["torch_sdpa_left_out"],
                         "not importable|sees no CUDA device")
        self.assertIn("left out", done.stderr)

    def test_bad_filter_exits_2_with_one_line(self):
        done, doc = self.run_script("--filter", "(")
        self.assertEqual(done.returncode, 2)
        self.assertIsNone(doc)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)


@unittest.skipIf(torch is None, "torch is not importable (it is an opt-in peer)")
class OnTheCpu(unittest.TestCase):
    """The loop of measure() with torch's CPU backends standing in for the
    GPU's: the same check, rows and limits, a wall clock instead of events."""

    class CpuTorch(torch_sdpa.Torch):
        device = "cpu"

        def __init__(self, wrong=0.0, dtype="float32"):  # wrong: a factor O is off by
            import torch as t
            from torch.nn.attention import SDPBackend, sdpa_kernel
            self.torch, self.backend_enum, self.sdpa_kernel = t, SDPBackend, sdpa_kernel
            self.dtype_name, self.dtype = dtype, getattr(t, dtype)
            self.wrong = wrong

        def call(self, backend, q, k, v, causal):
            o = super().call(backend, q, k, v, causal)
            return o * self.wrong if self.wrong else o

        def time_ms(self, backend, q, k, v, causal):
            t0 = time.perf_counter()
            self.call(backend, q, k, v, causal)
            return (time.perf_counter() - t0) * 1e3

    def setUp(self):
        import numpy as np
        self.data = [np.ascontiguousarray(x.reshape(-1))
                     for x in torch_sdpa.fused_peers.inputs(1, 1, 4 * 96 * 64, 4 * 96 * 64, 1, 3)]

    def test_right_backend_timed_wrong_one_refused(self):
        shapes = [(2, 2, 96, 96, 16, 0), (2, 2, 96, 96, 16, 1)]
        rows = torch_sdpa.measure(self.CpuTorch(), "math", shapes, 2, 0.001, self.data)
        self.assertEqual(len(rows), 4)
        for row in rows:
            self.assertFalse(row.get("error_occurred"), row)
            self.assertEqual(row["label"], "math")
            self.assertGreater(row["flops"], 0)
            self.assertLessEqual(row["max_error_over_bound"], 1.0)
        self.assertEqual(rows[2]["name"],
                         "gpu/attention/torch_sdpa_math/2x2x96x96x16/causal:1/manual_time")
        bad = torch_sdpa.measure(self.CpuTorch(wrong=1.001), "math", shapes[:1], 2, 0.001,
                                 self.data)
        self.assertEqual(len(bad), 1)
        self.assertTrue(bad[0]["error_occurred"])
        self.assertIn("wrong result", bad[0]["error_message"])

    def test_bf16_rows_checked_with_the_bf16_bound(self):
        shapes = [(2, 2, 96, 96, 64, 0), (2, 2, 96, 96, 64, 1)]
        rows = torch_sdpa.measure(self.CpuTorch(dtype="bfloat16"), "flash", shapes, 1, 0.001,
                                  self.data)
        self.assertEqual(len(rows), 2)
        for row in rows:
            self.assertFalse(row.get("error_occurred"), row)
            self.assertLessEqual(row["max_error_over_bound"], 1.0)
        self.assertTrue(rows[0]["name"].startswith("gpu/attention_bf16/torch_sdpa_flash/"))
        # A few percent: bf16's own rounding is 0.4%.
        bad = torch_sdpa.measure(self.CpuTorch(wrong=1.03, dtype="bfloat16"), "flash",
                                 shapes[:1], 1, 0.001, self.data)
        self.assertTrue(bad[0]["error_occurred"])

    def test_math_stays_out_past_its_largest_sequence(self):
        big = (1, 1, torch_sdpa.LARGEST["math"] * 2, 4, 1, 0)
        self.assertEqual(torch_sdpa.measure(self.CpuTorch(), "math", [big], 1, 0.001,
                                            self.data), [])


if __name__ == "__main__":
    unittest.main()

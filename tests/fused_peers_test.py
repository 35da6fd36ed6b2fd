#!/usr/bin/env python3
"""bench/fused_peers.py's check, helper and merge: the bound accepts a
float32 answer computed the honest way and refuses one off by a little,
causal rows included; the helper answers a timing with the peer's speed,
calls, error and kernel path, a wrong peer with an error instead of a
timing, and a bad request with an error, going on after each; merging into a
result file replaces the peer's rows and keeps everything else; bad input
exits 2 with one line."""

import io

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "fused_peers.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fused_peers  # noqa: E402


def float32_attention(q, k, v, causal):
    """Attention in float32 throughout, as a peer computes it."""
    b, h, sq, d = q.shape
    o = np.empty_like(q)
    scale = np.float32(1 / np.sqrt(d))
    for bi in range(b):
        for hi in range(h):
            s = (q[bi, hi] @ k[bi, hi].T) * scale
            if causal:
                s = np.where(np.tril(np.ones(s.shape, dtype=bool)), s, -np.inf).astype(np.float32)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            o[bi, hi] = (p / p.sum(axis=1, keepdims=True)) @ v[bi, hi]
    return o


class Check(unittest.TestCase):
    def test_float32_answers_pass_and_small_errors_fail(self):
        for causal in (0, 1):
            q, k, v = fused_peers.inputs(2, 3, 37, 37, 24, 5)
            o = float32_attention(q, k, v, causal)
            ok, worst = fused_peers.check(q, k, v, o, causal, 1 / np.sqrt(24))
            self.assertTrue(ok, f"causal={causal}: {worst} of the bound")
            self.assertGreater(worst, 0)
            bad = o.copy()
            bad[1, 2, 36, 5] += 1e-3  # the last row of the last head: a row the check reads
            self.assertFalse(fused_peers.check(q, k, v, bad, causal, 1 / np.sqrt(24))[0])

    def test_a_causal_answer_is_not_a_full_one(self):
        q, k, v = fused_peers.inputs(1, 1, 16, 16, 8, 9)
        full = float32_attention(q, k, v, 0)
        self.assertFalse(fused_peers.check(q, k, v, full, 1, 1 / np.sqrt(8))[0])

    def test_nan_fails(self):
        q, k, v = fused_peers.inputs(1, 2, 8, 8, 8, 3)
        o = float32_attention(q, k, v, 0)
        o[0, 0, 0, 0] = np.nan
        self.assertFalse(fused_peers.check(q, k, v, o, 0, 1 / np.sqrt(8))[0])


class NumpyPeer:
    """A peer in numpy, to run measure() without a library."""
    name = "numpy"

    def __init__(self, wrong=False):
        self.wrong = wrong

    def run_once(self, q, k, v, causal, threads):
        o = float32_attention(q, k, v, causal)
        if self.wrong:
            o[-1, -1, -1, -1] += 1e-2
        return o

    def time(self, q, k, v, causal, threads, calls):
        return 1e-3

    def kernel_path(self, q, k, v, causal):
        return "NUMPY"


def serve(peers, requests):
    """The helper's answers to `requests` (lines), split into fields."""
    answers = io.StringIO()
    fused_peers.serve(peers, {"numpy": "v"}, io.StringIO("".join(r + "\n" for r in requests)),
                      answers)
    return [line.split("\t") for line in answers.getvalue().splitlines()]


class Serve(unittest.TestCase):
    def test_answers_carry_the_speed_calls_error_and_kernel_path(self):
        lines = serve({"numpy": NumpyPeer()}, ["time\tnumpy\t1\t2\t16\t24\t8\t1\t1\t0.01"] * 2)
        self.assertEqual(lines[:2], [["context", "numpy", "v"], ["ready", "numpy"]])
        self.assertEqual(len(lines), 4)
        for fields in lines[2:]:
            self.assertEqual(fields[0], "ok", fields)
            self.assertEqual(float(fields[1]), 1e-3)
            self.assertEqual(int(fields[2]), 10)  # 0.01 s of calls at 1 ms each
            self.assertLess(float(fields[3]), 1.0)
            self.assertEqual(fields[4], "NUMPY")

    def test_a_wrong_peer_or_a_bad_request_gets_an_error_and_the_helper_goes_on(self):
        lines = serve({"numpy": NumpyPeer(wrong=True), "right": NumpyPeer()},
                      ["time\tnumpy\t1\t1\t16\t16\t8\t0\t1\t0.01",
                       "time\tnumpy\t1\t1\t16\t16\t8\t0\t1\t0.01",
                       "time\tnone\t1\t1\t16\t16\t8\t0\t1\t0.01",
                       "time\tright\t1\t1\t0\t16\t8\t0\t1\t0.01",
                       "time\tright\t1\t1\tx\t16\t8\t0\t1\t0.01",
                       "hello",
                       "time\tright\t1\t1\t16\t16\t8\t0\t1\t0.01"])
        self.assertEqual(lines[1], ["ready", "numpy", "right"])
        answers = lines[2:]
        self.assertEqual(len(answers), 7)
        for fields in answers[:2]:
            self.assertEqual(fields[0], "error")
            self.assertIn("wrong result", fields[1])
        for fields in answers[2:6]:
            self.assertEqual(fields[0], "error", fields)
        self.assertEqual(answers[6][0], "ok")

    def test_the_helper_process_reports_a_peer_that_does_not_load(self):
        # torch is opt-in and usually absent; where it is installed, it loads.
        r = subprocess.run([sys.executable, SCRIPT, "--serve", "--peer", "torch"],
                           input="", capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [line.split("\t") for line in r.stdout.splitlines()]
        self.assertEqual(lines[-1][0], "ready")
        if lines[-1] == ["ready"]:
            self.assertTrue(any(f[:2] == ["context", "torch_left_out"] for f in lines), lines)


class Merge(unittest.TestCase):
    def test_merge_replaces_the_peer_rows_and_keeps_the_rest(self):
        with tempfile.TemporaryDirectory() as tmp:
            main = os.path.join(tmp, "cpu_attention.json")
            peers = os.path.join(tmp, "peers.json")
            old = {"name": "cpu/attention/onnxruntime/1x1x8x8x8/causal:0/omp_threads:1/real_time",
                   "real_time": 9.0}
            rung = {"name": "cpu/attention/flash/1x1x8x8x8/causal:0/omp_threads:1/real_time",
                    "real_time": 1.0}
            with open(main, "w") as f:
                json.dump({"context": {"cpu_model": "x"}, "benchmarks": [rung, old]}, f)
            new = dict(old, real_time=2.0)
            with open(peers, "w") as f:
                json.dump({"context": {"onnxruntime": "v"}, "benchmarks": [new]}, f)
            r = subprocess.run([sys.executable, SCRIPT, "--merge-into", main, peers],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(main) as f:
                doc = json.load(f)
            self.assertEqual(doc["context"], {"cpu_model": "x", "onnxruntime": "v"})
            self.assertEqual(doc["benchmarks"], [rung, new])
            self.assertEqual(sorted(os.listdir(tmp)), ["cpu_attention.json", "peers.json"])

    def test_bad_input_exits_2_with_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "none.json")
            for args in (["--merge-into", missing, missing], ["--serve", "extra"], [],
                         ["--peer", "nobody"]):
                r = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)
                self.assertEqual(r.returncode, 2, (args, r.stderr))
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, (args, r.stderr))


if __name__ == "__main__":
    unittest.main()

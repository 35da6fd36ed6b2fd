#!/usr/bin/env python3
"""The result-file reader (bench/report.py) on bad and odd input.

Each bad file must give one line on stderr and exit status 2, and leave the
README it was asked to update exactly as it was. The cases named after a
seed are what tests/fuzz/report_fuzz.py found in the reader before it
checked its input (replay: --seed N --runs 1 against that reader).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "bench", "report.py")
RESULTS = os.path.join(ROOT, "bench", "results.py")

MATMUL = {
    "context": {"cpu_model": "test cpu", "num_cpus": 2, "fma_peak_flops_omp_threads_1": "2e11"},
    "benchmarks": [
        {"name": f"cpu/matmul/{v}/1024x1024x1024/omp_threads:1/real_time",
         "run_name": f"cpu/matmul/{v}/1024x1024x1024/omp_threads:1/real_time",
         "run_type": "iteration", "repetitions": 1, "flops": flops, "peak_fraction": flops / 2e11}
        for v, flops in (("naive", 1e9), ("reordered", 1e10), ("parallel", 1.5e11))
    ],
}

ATTENTION = {
    "context": {"cpu_model": "test cpu", "num_cpus": 2},
    "benchmarks": [
        {"name": f"cpu/attention/{v}/1x1x4096x4096x64/causal:0/omp_threads:1/real_time",
         "run_type": "iteration", "repetitions": 1, "flops": flops, "peak_fraction": 0.5,
         "workspace_bytes": 1 << 20}
        for v, flops in (("tiled", 6e10), ("parallel_flash", 1.4e11), ("onednn", 7e10))
    ],
}

GPU = {
    "context": {"gpu_name": "test gpu", "gpu_sm_count": "132", "cuda_runtime": "13.0"},
    "benchmarks": [
        {"name": f"gpu/matmul/{v}/{n}x{n}x{n}/manual_time", "run_type": "iteration",
         "repetitions": 1, "flops": flops, "cublas_fraction": 0.5}
        for v, flops in (("naive", 1e12), ("warp_tiled", 4.5e13), ("cublas", 5e13))
        for n in (4096, 8192)
    ],
}

GPU_BF16 = {
    "context": {"gpu_name": "test gpu", "gpu_sm_count": "132"},
    "benchmarks": [
        {"name": f"gpu/matmul_bf16/{v}/4096x4096x4096/manual_time", "run_type": "iteration",
         "repetitions": 1, "flops": flops, **({"rung": rung} if rung else {})}
        for v, rung, flops in (("wmma", 1, 2e14), ("mma_sync", 2, 5e14), ("cublas", None, 6.25e14))
    ],
}

# Rung counters as locality_bench writes them; peers have none. torch's
# efficient backend ran, its flash backend was left out.
GPU_ATTENTION = {
    "context": {"gpu_name": "test gpu", "gpu_sm_count": "132", "torch_sdpa": "PyTorch 9",
                "torch_sdpa_flash_left_out": "no float32"},
    "benchmarks": [
        {"name": f"gpu/attention/{v}/{16384 // s}x32x{s}x{s}x64/causal:{c}/manual_time",
         "run_type": "iteration", "repetitions": 1, "flops": flops * (s / 4096),
         **({"rung": rung, "workspace_bytes": ws} if rung is not None else {})}
        for v, rung, flops, ws in (("naive", 0, 1e12, 1 << 30), ("flash2", 3, 2e13, 0),
                                   ("cublas", None, 1e13, None),
                                   ("torch_sdpa_efficient", None, 1.6e13, None))
        for s in (4096, 8192) for c in (0, 1) if not (v == "naive" and s > 4096)
    ],
}

GPU_ATTENTION_BF16 = {
    "context": {"gpu_name": "test gpu", "gpu_sm_count": "132", "torch_sdpa": "PyTorch 9 bf16"},
    "benchmarks": [
        {"name": f"gpu/attention_bf16/{v}/{16384 // s}x16x{s}x{s}x128/causal:{c}/manual_time",
         "run_type": "iteration", "repetitions": 1, "flops": flops,
         **({"rung": rung} if rung is not None else {})}
        for v, rung, flops in (("flash2_mma", 1, 3e14), ("torch_sdpa_flash", None, 3.5e14),
                               ("torch_sdpa_cudnn", None, 6e14))
        for s in (4096, 8192) for c in (0, 1)
    ],
}

README = ("# r\n\n<!-- cpu-matmul-ladder:begin -->\nold\n<!-- cpu-matmul-ladder:end -->\n"
          "<!-- cpu-attention-ladder:begin -->\nold\n<!-- cpu-attention-ladder:end -->\n"
          "<!-- gpu-matmul-ladder:begin -->\nold\n<!-- gpu-matmul-ladder:end -->\n"
          "<!-- gpu-attention-ladder:begin -->\nold\n<!-- gpu-attention-ladder:end -->\n"
          "<!-- gpu-matmul-bf16-ladder:begin -->\nold\n<!-- gpu-matmul-bf16-ladder:end -->\n"
          "<!-- gpu-attention-bf16-ladder:begin -->\nold\n<!-- gpu-attention-bf16-ladder:end -->\n")


def two_turns(name, variants):
    """A result file of two turns (bench/run.sh's): for each (variant, its
    flops in turn 0 and turn 1, its other counters), one row per turn."""
    doc = {"context": {"cpu_model": "test cpu", "num_cpus": 2,
                       "locality_turns": "2 runs combined, taking turns"}, "benchmarks": []}
    for v, flops, extra in variants:
        for r, f in enumerate(flops):
            doc["benchmarks"].append({"name": name.format(v), "run_type": "iteration",
                                      "repetitions": 2, "repetition_index": r, "flops": f,
                                      "peak_fraction": 0.5, **extra})
    return doc


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.readme = os.path.join(self.dir.name, "README.md")
        with open(self.readme, "w", encoding="utf-8") as f:
            f.write(README)

    def tearDown(self):
        self.dir.cleanup()

    def run_report(self, content, binary=False):
        path = os.path.join(self.dir.name, "result.json")
        if content is not None:
            with open(path, "wb" if binary else "w") as f:
                f.write(content)
        return subprocess.run([sys.executable, REPORT, path, "--readme", self.readme],
                              capture_output=True, text=True)

    def assert_refused(self, content, message, binary=False):
        r = self.run_report(content, binary)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn(message, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            self.assertEqual(f.read(), README, "README changed by a refused file")

    def test_good_files_fill_their_own_section(self):
        for doc, section, other in ((MATMUL, "cpu-matmul", "cpu-attention"),
                                    (ATTENTION, "cpu-attention", "cpu-matmul")):
            r = self.run_report(json.dumps(doc))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(self.readme, encoding="utf-8") as f:
                text = f.read()
            inside = text.split(f"<!-- {section}-ladder:begin -->")[1].split("<!-- ")[0]
            self.assertIn("GFLOP/s", inside)
            self.assertIn(f"<!-- {other}-ladder:begin -->\nold\n", text)
            with open(self.readme, "w", encoding="utf-8") as f:
                f.write(README)

    def test_gpu_file_fills_the_gpu_section(self):
        r = self.run_report(json.dumps(GPU))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            text = f.read()
        inside = text.split("<!-- gpu-matmul-ladder:begin -->")[1].split("<!-- ")[0]
        self.assertIn("| 5 | warp_tiled | 45000 | 45000 |", inside)
        self.assertIn("| 5 | warp_tiled | 0.90 | 0.90 |", inside)
        self.assertIn("test gpu (132 SMs", inside)
        self.assertIn("<!-- cpu-matmul-ladder:begin -->\nold\n", text)

    def test_gpu_attention_file_fills_its_section(self):
        r = self.run_report(json.dumps(GPU_ATTENTION))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            text = f.read()
        inside = text.split("<!-- gpu-attention-ladder:begin -->")[1].split("<!-- ")[0]
        # At seq 4096: GFLOP/s and x cublas per case, workspace beside them.
        self.assertIn("| 3 | flash2 | 20000 | 2.00 | 20000 | 2.00 | 0 B |", inside)
        self.assertIn("| 0 | naive | 1000 | 0.10 | 1000 | 0.10 | 1.0 GiB |", inside)
        # The top rung against cublas, the best torch backend and naive.
        self.assertIn("| 4096 | 64 | no | 20000 | 2.00 | efficient | 16000 | 1.25 | 20.0 |", inside)
        self.assertIn("| 8192 | 64 | yes | 40000 | 2.00 | efficient | 32000 | 1.25 | — |", inside)
        self.assertIn("torch_sdpa_flash (no float32)", inside)
        self.assertIn("<!-- gpu-matmul-ladder:begin -->\nold\n", text)

    def test_gpu_bf16_file_fills_its_section(self):
        r = self.run_report(json.dumps(GPU_BF16))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            text = f.read()
        inside = text.split("<!-- gpu-matmul-bf16-ladder:begin -->")[1].split("<!-- ")[0]
        self.assertIn("| 2 | mma_sync | 0.80 |", inside)
        self.assertIn("| 1 | wmma | 0.32 |", inside)
        self.assertIn("cublasLtMatmul", inside)
        self.assertIn("<!-- gpu-matmul-ladder:begin -->\nold\n", text)

    def test_gpu_attention_bf16_file_fills_its_section(self):
        r = self.run_report(json.dumps(GPU_ATTENTION_BF16))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            text = f.read()
        inside = text.split("<!-- gpu-attention-bf16-ladder:begin -->")[1].split("<!-- ")[0]
        # At seq 4096 against torch's flash backend, then against the best backend.
        self.assertIn("| 1 | flash2_mma | 300000 | 0.86 | 300000 | 0.86 | — |", inside)
        self.assertIn("| 8192 | 128 | yes | 300000 | 0.86 | cudnn | 600000 | 0.50 |", inside)
        self.assertIn("bf16", inside)
        self.assertIn("<!-- gpu-attention-ladder:begin -->\nold\n", text)

    def test_missing_file(self):
        self.assert_refused(None, "cannot read")

    def test_empty_file(self):
        self.assert_refused("", "is empty")

    def test_truncated_file(self):
        self.assert_refused(json.dumps(MATMUL)[:200], "not valid JSON")

    def test_not_benchmark_json(self):
        self.assert_refused(json.dumps({"hello": [1, 2]}), "not Google Benchmark JSON")
        self.assert_refused(json.dumps([1, 2, 3]), "not Google Benchmark JSON")

    def test_no_benchmark_of_ours(self):
        doc = {"context": {}, "benchmarks": [{"name": "BM_Other/8"}]}
        self.assert_refused(json.dumps(doc), "no cpu/matmul, cpu/attention, gpu/matmul, gpu/attention, gpu/matmul_bf16 or gpu/attention_bf16 benchmark")

    def test_non_utf8_bytes_seed_5(self):
        data = json.dumps(MATMUL).encode()
        self.assert_refused(data[:40] + b"\xed\xa0" + data[40:], "not UTF-8", binary=True)

    def test_name_that_is_an_object_seed_6008(self):
        doc = json.loads(json.dumps(MATMUL))
        doc["benchmarks"][1]["name"] = {"a": 1}
        doc["benchmarks"][1].pop("run_name")
        self.assert_refused(json.dumps(doc), "benchmark entry 1 is not an object with a string name")

    def test_name_that_is_a_number_seed_11007(self):
        doc = json.loads(json.dumps(ATTENTION))
        doc["benchmarks"][0]["name"] = 0
        self.assert_refused(json.dumps(doc), "benchmark entry 0 is not an object with a string name")

    def test_benchmark_entry_not_an_object(self):
        doc = json.loads(json.dumps(MATMUL))
        doc["benchmarks"].append([1, 2])
        self.assert_refused(json.dumps(doc), "benchmark entry 3")

    def test_counter_not_a_finite_number(self):
        for bad in ("fast", None, [1], "NaN", float("inf"), -5.0, True):
            doc = json.loads(json.dumps(MATMUL))
            doc["benchmarks"][2]["flops"] = bad
            self.assert_refused(json.dumps(doc), "flops")

    def test_counter_missing(self):
        doc = json.loads(json.dumps(ATTENTION))
        del doc["benchmarks"][1]["workspace_bytes"]
        self.assert_refused(json.dumps(doc), "lacks a workspace_bytes counter")
        doc = json.loads(json.dumps(ATTENTION))
        del doc["benchmarks"][1]["flops"]
        self.assert_refused(json.dumps(doc), "lacks a flops counter")

    def test_a_misconfigured_peer_is_left_out_and_named(self):
        doc = json.loads(json.dumps(MATMUL))
        for v, flops in (("openblas", 3e10), ("onednn", 1.6e11)):
            row = json.loads(json.dumps(doc["benchmarks"][0]))
            row.update(name=row["name"].replace("/naive/", f"/{v}/"),
                       run_name=row["run_name"].replace("/naive/", f"/{v}/"), flops=flops)
            doc["benchmarks"].append(row)
        doc["context"].update(openblas_corename="Prescott",
                              locality_microkernel="microkernel_avx512_12x32")
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("| peer | openblas |", r.stdout)
        self.assertIn("| peer | onednn |", r.stdout)
        self.assertIn("Left out: openblas (OpenBLAS ran its Prescott kernels", r.stdout)
        self.assertIn("| 1024 | 1 | 150.0 | onednn | 0.94 |", r.stdout)  # the best peer, named
        # Where locality_bench already left it out (and said why), it is named once.
        doc["context"]["openblas_left_out"] = "OpenBLAS runs its Prescott kernels"
        out = self.run_report(json.dumps(doc)).stdout
        self.assertIn("Left out: openblas (OpenBLAS runs its Prescott kernels).", out)
        self.assertEqual(out.count("openblas (OpenBLAS ran"), 0)
        del doc["context"]["openblas_left_out"]
        # The same core on a machine whose kernel is portable is not called misconfigured.
        doc["context"]["locality_microkernel"] = "microkernel_portable_4x16"
        self.assertIn("| peer | openblas |", self.run_report(json.dumps(doc)).stdout)

    def test_mkl_is_described_in_a_few_words(self):
        doc = json.loads(json.dumps(MATMUL))
        doc["context"]["mkl"] = ("Intel(R) oneAPI Math Kernel Library Version 2026.2-Product Build "
                                 "20260915; code path avx512_e1 (branch 14); its verbose mode "
                                 "says: long text; GNU OpenMP threading layer; /x/libmkl_rt.so.3")
        self.assertIn("MKL: 2026.2, code path avx512_e1, GNU OpenMP threading;",
                      self.run_report(json.dumps(doc)).stdout)
        doc["context"]["mkl"] = "a build that says something else"  # passed on whole
        self.assertIn("MKL: a build that says something else;",
                      self.run_report(json.dumps(doc)).stdout)

    def test_fused_peer_needs_no_workspace(self):
        doc = json.loads(json.dumps(ATTENTION))
        peer = json.loads(json.dumps(doc["benchmarks"][1]))
        del peer["workspace_bytes"]
        peer.pop("rung", None)
        for key in ("name", "run_name"):
            if key in peer:
                peer[key] = peer[key].replace("/parallel_flash/", "/onnxruntime/")
        doc["benchmarks"].append(peer)
        doc["context"]["onnxruntime"] = "ONNX Runtime x"
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| peer | onnxruntime |", r.stdout)
        self.assertIn("best fused peer", r.stdout)

    def test_fused_peers_in_turns_are_compared_turn_by_turn(self):
        # Two turns: the rung at 100 then 200 GFLOP/s, the peer at 90 then 250.
        # Medians give 150 / 170 = 0.88; turn by turn 100/90 and 200/250 give
        # a median of (1.11 + 0.80) / 2 = 0.96.
        ws = {"workspace_bytes": 1 << 20}
        doc = two_turns("cpu/attention/{}/1x1x4096x4096x64/causal:0/omp_threads:1/real_time",
                        [("parallel_flash", (1e11, 2e11), dict(ws, rung=4)),
                         ("onnxruntime", (9e10, 2.5e11), {}), ("onednn", (5e10, 5e10), ws)])
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| best fused peer | GFLOP/s | × by turn |", r.stdout)
        self.assertIn("| onnxruntime | 170.0 | 0.96 | onednn | 50.0 | 3.00 |", r.stdout)
        del doc["context"]["locality_turns"]  # not in turns: the ratio of the medians
        r = self.run_report(json.dumps(doc))
        self.assertIn("| onnxruntime | 170.0 | 0.88 | onednn | 50.0 | 3.00 |", r.stdout)

    def test_combine_keeps_every_turn_and_numbers_the_repetitions(self):
        rung = "cpu/attention/flash/1x1x8x8x8/causal:0/omp_threads:1/real_time"
        peer = "cpu/attention/onnxruntime/1x1x8x8x8/causal:0/omp_threads:1/real_time"

        def row(name, t):
            return {"name": name, "run_type": "iteration", "repetitions": 1,
                    "repetition_index": 0, "real_time": t}
        probe = "fma_peak_flops_omp_threads_1"
        turns = [{"context": {"cpu_model": "x", "git_commit": "a", probe: "1.5e11"},
                  "benchmarks": [row(rung, 1.0)]},
                 {"context": {"onnxruntime": "v", probe: "2e11"}, "benchmarks": [row(peer, 2.0)]},
                 {"context": {"cpu_model": "y", probe: "1e11"},
                  "benchmarks": [row(rung, 3.0), dict(row(rung, 2.0), run_type="aggregate")]},
                 {"context": {}, "benchmarks": [row(peer, 4.0)]}]
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for i, doc in enumerate(turns):
                files.append(os.path.join(tmp, f"turn_{i}.json"))
                with open(files[-1], "w") as f:
                    json.dump(doc, f)
            out = os.path.join(tmp, "cpu_attention.json")
            r = subprocess.run([sys.executable, RESULTS, "combine", out] + files,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                doc = json.load(f)
        self.assertEqual(doc["context"]["cpu_model"], "x")  # the first turn's
        self.assertEqual(doc["context"]["onnxruntime"], "v")
        self.assertEqual(doc["context"][probe], "2e11")  # the best turn's
        self.assertIn("4 runs", doc["context"]["locality_turns"])
        got = [(b["name"], b["real_time"], b["repetition_index"], b["repetitions"])
               for b in doc["benchmarks"]]
        self.assertEqual(got, [(rung, 1.0, 0, 2), (peer, 2.0, 0, 2), (rung, 3.0, 1, 2),
                               (peer, 4.0, 1, 2)])

    def test_combine_refuses_bad_input_in_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.json")
            bad = os.path.join(tmp, "bad.json")
            with open(bad, "w") as f:
                f.write("[1, 2]")
            for args in (["combine", out], ["merge", out, bad], ["combine", out, bad],
                         ["combine", out, os.path.join(tmp, "missing.json")]):
                r = subprocess.run([sys.executable, RESULTS] + args, capture_output=True, text=True)
                self.assertEqual(r.returncode, 2, (args, r.stderr))
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, (args, r.stderr))
            self.assertFalse(os.path.exists(out))

    def test_matmul_runs_in_turns_are_compared_turn_by_turn(self):
        # parallel at 100 then 200 GFLOP/s, mkl at 90 then 250: medians give
        # 0.88, turn by turn (1.11 + 0.80) / 2 = 0.96.
        doc = two_turns("cpu/matmul/{}/1024x1024x1024/omp_threads:1/real_time",
                        [("naive", (1e9, 1e9), {"rung": 0}), ("parallel", (1e11, 2e11), {"rung": 5}),
                         ("mkl", (9e10, 2.5e11), {})])
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| 1024 | 1 | 150.0 | mkl | 0.96 | 170.0 | 0.96 |", r.stdout)
        self.assertIn("median of the turn-by-turn ratios", r.stdout)
        del doc["context"]["locality_turns"]
        r = self.run_report(json.dumps(doc))
        self.assertIn("| 1024 | 1 | 150.0 | mkl | 0.88 | 170.0 | 0.88 |", r.stdout)

    def test_call_by_call_pairs_get_their_own_table(self):
        doc = json.loads(json.dumps(MATMUL))
        for peer, ratios in (("mkl", (0.97, 0.9, 1.02)), ("onednn", (1.01, 0.95, 1.1))):
            name = f"cpu/pairs/matmul/parallel_vs_{peer}/1024x1024x1024/omp_threads:1/iterations:1/manual_time"
            doc["benchmarks"].append({"name": name, "run_name": name, "run_type": "iteration",
                                      "repetitions": 1, "real_time": 5.0, "ratio": ratios[0],
                                      "ratio_low": ratios[1], "ratio_high": ratios[2], "pairs": 10})
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("parallel against each peer call by call", r.stdout)
        self.assertIn("| 1024 | 1 | 10 | mkl | 0.97 | 0.97 [0.90, 1.02] | 1.01 [0.95, 1.10] |",
                      r.stdout)
        # The ladder's own tables do not take the pairs for variants.
        self.assertNotIn("parallel_vs_mkl", r.stdout)
        with open(self.readme, "w", encoding="utf-8") as f:
            f.write(README)
        doc["benchmarks"][-1]["ratio"] = "x"
        self.assert_refused(json.dumps(doc), "ratio")

    def test_repetitions_not_a_whole_number(self):
        for bad in ("3", 0, 2.5, None):
            doc = json.loads(json.dumps(ATTENTION))
            doc["benchmarks"][0]["repetitions"] = bad
            self.assert_refused(json.dumps(doc), "repetitions")

    def test_fma_peak_is_the_best_probe_in_the_file(self):
        # The run's start measured 200 GFLOP/s, a cpu/probe/fma row 300 and
        # another 250: the peak is 300, so the parallel rung's 150 is 50%.
        doc = json.loads(json.dumps(MATMUL))
        doc["benchmarks"] += [{"name": "cpu/probe/fma/omp_threads:1/real_time",
                               "run_type": "iteration", "repetitions": 2, "flops": f}
                              for f in (3e11, 2.5e11)]
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the best FMA probe of the run", r.stdout)
        self.assertIn("300 GFLOP/s with 1 thread (lowest probe 200)", r.stdout)
        row = next(line for line in r.stdout.splitlines() if line.startswith("| 5 | parallel |"))
        self.assertEqual(row.split("|")[6].strip(), "50", row)
        # No probe at all: the column says so rather than guessing.
        del doc["context"]["fma_peak_flops_omp_threads_1"]
        doc["benchmarks"] = doc["benchmarks"][:3]
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("FMA peak: not measured", r.stdout)
        row = next(line for line in r.stdout.splitlines() if line.startswith("| 5 | parallel |"))
        self.assertEqual(row.split("|")[6].strip(), "—", row)

    def test_peak_in_context_not_a_number(self):
        doc = json.loads(json.dumps(MATMUL))
        doc["context"]["fma_peak_flops_omp_threads_1"] = "fast"
        self.assert_refused(json.dumps(doc), "fma_peak_flops_omp_threads_1 is not a number")

    def test_odd_context_values_still_report(self):
        doc = json.loads(json.dumps(MATMUL))
        doc["context"]["cpu_model"] = {"nested": True}
        doc["context"]["compiler_flags"] = ["-O3"]
        doc["context"]["git_commit"] = "abc\ndef"
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Measured on ? (2 cores)", r.stdout)
        self.assertIn("commit abc def,", r.stdout)

    def test_name_with_a_trailing_newline_is_not_ours(self):
        doc = json.loads(json.dumps(MATMUL))
        for b in doc["benchmarks"]:
            b["name"] += "\n"
            b["run_name"] = b["name"]
        self.assert_refused(json.dumps(doc), "no cpu/matmul, cpu/attention, gpu/matmul, gpu/attention, gpu/matmul_bf16 or gpu/attention_bf16 benchmark")

    # Found by a hostile but fair reading of the README's promises (issue 21):
    # each was a Python traceback with exit 1 before the reader checked it.
    def test_json_nested_thousands_deep(self):
        self.assert_refused("[" * 5000 + "]" * 5000, "levels deep")
        doc = json.loads(json.dumps(MATMUL))
        text = json.dumps(doc).replace('"flops": 150000000000.0',
                                       '"flops": ' + "[" * 3000 + "1" + "]" * 3000)
        self.assert_refused(text, "levels deep")

    def test_integer_of_more_than_4300_digits(self):
        text = json.dumps(MATMUL).replace('"repetitions": 1', '"repetitions": ' + "7" * 5000, 1)
        self.assert_refused(text, "an integer of 5000 digits")

    def test_integers_too_large_for_a_float(self):
        huge = "9" * 400  # under Python's digit limit, over a double's range
        for old in ('"flops": 150000000000.0', '"repetitions": 1'):
            self.assert_refused(json.dumps(MATMUL).replace(old, old.split(":")[0] + ": " + huge, 1),
                                "an integer of 400 digits")
        self.assert_refused(json.dumps(MATMUL).replace("150000000000.0", "1e999", 1),
                            "does not fit a float")
        doc = json.loads(json.dumps(MATMUL))
        for b in doc["benchmarks"]:  # a size no benchmark of ours has
            b["name"] = b["run_name"] = b["name"].replace("1024x1024x1024", huge + "x1x1")
        self.assert_refused(json.dumps(doc), "no cpu/matmul, cpu/attention, gpu/matmul, gpu/attention, gpu/matmul_bf16 or gpu/attention_bf16 benchmark")

    def test_readme_not_utf8(self):
        with open(self.readme, "wb") as f:
            f.write(b"# r\n\xff\xfe <!-- cpu-matmul-ladder:begin -->\n<!-- cpu-matmul-ladder:end -->\n")
        r = self.run_report(json.dumps(MATMUL))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("is not UTF-8 text", r.stderr)

    def test_plots_pointing_at_an_existing_file(self):
        path = os.path.join(self.dir.name, "result.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(MATMUL, f)
        target = os.path.join(self.dir.name, "a-file")
        with open(target, "w", encoding="utf-8") as f:
            f.write("keep me\n")
        r = subprocess.run([sys.executable, REPORT, path, "--plots", target],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("--plots", r.stderr)
        with open(target, encoding="utf-8") as f:
            self.assertEqual(f.read(), "keep me\n")

    def test_messages_quoting_the_input_stay_one_line(self):
        doc = json.loads(json.dumps(ATTENTION))
        doc["benchmarks"][1]["flops"] = "fast\nand\rloose"
        self.assert_refused(json.dumps(doc), "not a number")

    def test_rungs_come_from_the_rung_counter_not_its_aggregates(self):
        # Found by the full fresh-machine run: with 3 repetitions, Google
        # Benchmark's aggregate rows carry the counter too (stddev 0, mean 1).
        doc = json.loads(json.dumps(MATMUL))
        for i, b in enumerate(doc["benchmarks"]):
            b["rung"] = [0, 1, 5][i]
        rows = []
        for b in doc["benchmarks"]:
            for agg, value in (("mean", b["rung"]), ("stddev", 0.0), ("cv", 0.0)):
                rows.append(dict(b, run_type="aggregate", aggregate_name=agg, rung=value,
                                 name=b["name"] + "_" + agg))
        doc["benchmarks"] += rows
        doc["benchmarks"].append(dict(doc["benchmarks"][0], name=doc["benchmarks"][0]["name"]
                                      .replace("naive", "dummy"), run_name=doc["benchmarks"][0]
                                      ["run_name"].replace("naive", "dummy"), rung=7))
        r = self.run_report(json.dumps(doc))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| 5 | parallel |", r.stdout)
        self.assertIn("| 7 | dummy |", r.stdout)  # a rung no list names, placed by its counter

    def test_readme_without_markers_is_left_alone(self):
        with open(self.readme, "w", encoding="utf-8") as f:
            f.write("no markers here\n")
        r = self.run_report(json.dumps(MATMUL))
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs exactly one", r.stderr)
        with open(self.readme, encoding="utf-8") as f:
            self.assertEqual(f.read(), "no markers here\n")


if __name__ == "__main__":
    unittest.main()

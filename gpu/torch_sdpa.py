#!/usr/bin/env python3
"""The GPU attention ladders' PyTorch peer: scaled_dot_product_attention on
the GPU in float32 (or bf16), each backend pinned in its own row, on the
shapes the ladder is timed at, written as Google Benchmark JSON to merge
beside it.

    python3 gpu/torch_sdpa.py --bench .gpu-carry/bin/locality_bench --out peers.json
    python3 bench/fused_peers.py --merge-into OUTDIR/gpu_attention.json peers.json

(gpu/run_on_device.sh runs both, and again with --dtype bfloat16.) Rows are
named gpu/attention/torch_sdpa_<backend>/<B>x<H>x<seq>x<seq>x<d>/causal:<0|1>/manual_time
(gpu/attention_bf16/... with --dtype bfloat16), for the backends efficient
(memory-efficient attention), math (the unfused composite: S in device
memory, so only up to seq 8192; float32 only), and flash and cudnn where
this torch build runs them in that dtype (in float32 they may not: a
backend that refuses is recorded as left out, with torch's reason).

bf16 means Q, K and V rounded to bf16 (to nearest even) from the same
float32 inputs, O in bf16, checked with the bf16 ladder's bound against the
float64 reference of the rounded inputs.

Float32 means float32: TF32 is switched off for matmuls and cuDNN, and
float32_matmul_precision is "highest", so the math backend's products are
the same strict FP32 as the cublas peer's. Each backend is first checked
on every shape against a float64 reference of the same inputs, with
bench/fused_peers.py's bound (the CPU ladder's, the exponential's error
allowed 8 times the rungs'), on rows spread over the heads; a backend that
fails gets an error row, and the run goes on.

Timing as the ladder's: CUDA events around each call, each call after a
write of twice the L2's size (so K and V come from device memory), the mean
of the calls in a repetition as its time. The torch, CUDA and cuDNN
versions and the TF32 settings go into the context. Where torch cannot be
imported or sees no GPU, the script says so, records it as
torch_sdpa_left_out and writes a file with no rows (exit 0); bad arguments
exit 2 with one line.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fused_peers  # noqa: E402  (the reference check and the inputs)
import results  # noqa: E402

NAME = re.compile(r"^gpu/(?P<family>attention|attention_bf16)/[^/]+/(?P<b>\d+)x(?P<h>\d+)x(?P<sq>\d+)x(?P<skv>\d+)x(?P<d>\d+)"
                  r"/causal:(?P<causal>[01])(?:/manual_time)?$")
# The backends, as named in the rows, and torch's names for them.
BACKENDS = {"efficient": "EFFICIENT_ATTENTION", "math": "MATH", "flash": "FLASH_ATTENTION",
            "cudnn": "CUDNN_ATTENTION"}
# The longest sequence each backend is timed at: the math backend keeps S and
# its softmax in device memory (2 B H seq^2 floats and more).
LARGEST = {"math": 8192}
# The ladder each dtype's rows join, and the backends it runs.
FAMILY = {"float32": "attention", "bfloat16": "attention_bf16"}
DTYPE_BACKENDS = {"float32": list(BACKENDS), "bfloat16": ["efficient", "flash", "cudnn"]}


class PeerError(Exception):
    pass


def shapes(bench, pattern, family="attention"):
    """[(b, h, sq, skv, d, causal)] the `family` ladder's rungs are timed at,
    in the order locality_bench lists them, those whose names match `pattern`."""
    try:
        out = subprocess.run([bench, "--locality_family=gpu", "--benchmark_list_tests"],
                             capture_output=True, text=True, check=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise PeerError(f"cannot list the GPU benchmarks with {bench}: {e}")
    return parse_shapes(out, pattern, family)


def parse_shapes(listing, pattern, family="attention"):
    found = []
    for line in listing.splitlines():
        m = NAME.fullmatch(line.strip())
        if m and m["family"] == family and pattern.search(line.strip()):
            key = tuple(int(m[g]) for g in ("b", "h", "sq", "skv", "d", "causal"))
            if key not in found:
                found.append(key)
    return found


def row_name(backend, shape, family="attention"):
    b, h, sq, skv, d, causal = shape
    return (f"gpu/{family}/torch_sdpa_{backend}/{b}x{h}x{sq}x{skv}x{d}/causal:{causal}"
            "/manual_time")


def error_row(name, repetitions, message):
    return {"name": name, "run_name": name, "run_type": "iteration", "repetitions": repetitions,
            "repetition_index": 0, "threads": 1, "error_occurred": True,
            "error_message": message}


def timing_row(name, r, repetitions, calls, seconds, flops, worst, backend):
    return {"name": name, "run_name": name, "run_type": "iteration", "repetitions": repetitions,
            "repetition_index": r, "threads": 1, "iterations": calls,
            "real_time": seconds * 1e3, "cpu_time": seconds * 1e3, "time_unit": "ms",
            "flops": flops / seconds, "max_error_over_bound": worst, "label": backend}


class Torch:
    device = "cuda"

    def __init__(self, dtype="float32"):
        try:
            import torch
            from torch.nn.attention import SDPBackend, sdpa_kernel
        except ImportError as e:
            raise PeerError(f"torch is not importable here ({e})")
        if not torch.cuda.is_available():
            raise PeerError(f"torch {torch.__version__} sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        self.torch, self.backend_enum, self.sdpa_kernel = torch, SDPBackend, sdpa_kernel
        self.dtype_name, self.dtype = dtype, getattr(torch, dtype)
        l2 = torch.cuda.get_device_properties(0).L2_cache_size
        self.flush = torch.empty(max(1, 2 * l2 // 4), dtype=torch.float32, device="cuda")

    def context(self):
        t = self.torch
        return {"torch_sdpa": f"PyTorch {t.__version__}, CUDA {t.version.cuda}, cuDNN "
                f"{t.backends.cudnn.version()}, scaled_dot_product_attention in "
                f"{self.dtype_name} on "
                f"{t.cuda.get_device_name(0)}, each backend pinned with sdpa_kernel; TF32 off "
                f"(matmul.allow_tf32={t.backends.cuda.matmul.allow_tf32}, "
                f"cudnn.allow_tf32={t.backends.cudnn.allow_tf32}, "
                f"float32_matmul_precision={t.get_float32_matmul_precision()}); CUDA events "
                "after an L2 flush"}

    def call(self, backend, q, k, v, causal):
        f = self.torch.nn.functional.scaled_dot_product_attention
        with self.sdpa_kernel([getattr(self.backend_enum, BACKENDS[backend])]):
            return f(q, k, v, is_causal=bool(causal))

    def refusal(self, backend):
        """Why this backend cannot run attention in this dtype here, or None."""
        t = self.torch
        x = t.ones(1, 1, 64, 64, dtype=self.dtype, device=self.device)
        try:
            with t.no_grad():
                self.call(backend, x, x, x, 0)
            return None
        except RuntimeError as e:
            return " ".join(str(e).split())[:300] or type(e).__name__

    def time_ms(self, backend, q, k, v, causal):
        t = self.torch
        start, end = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
        self.flush.zero_()
        start.record()
        self.call(backend, q, k, v, causal)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)


def measure(peer, backend, shape_list, repetitions, min_time, data):
    """Rows for one backend over the shapes (Google Benchmark's JSON)."""
    t = peer.torch
    bf16 = peer.dtype_name == "bfloat16"
    rows = []
    for shape in shape_list:
        b, h, sq, skv, d, causal = shape
        name = row_name(backend, shape, FAMILY[peer.dtype_name])
        if sq > LARGEST.get(backend, sq) or skv > LARGEST.get(backend, skv):
            continue
        q, k, v = (x[:b * h * s * d].reshape(b, h, s, d)
                   for x, s in zip(data, (sq, skv, skv)))
        with t.no_grad():
            tq, tk, tv = (t.from_numpy(x).to(peer.device, peer.dtype) for x in (q, k, v))
            if bf16:  # the reference sees the values torch computes with
                q, k, v = (x.float().cpu().numpy() for x in (tq, tk, tv))
            try:
                o = peer.call(backend, tq, tk, tv, causal).float().cpu().numpy()
            except RuntimeError as e:
                rows.append(error_row(name, repetitions, " ".join(str(e).split())[:300]))
                continue
            ok, worst = fused_peers.check(q, k, v, o, causal, 1.0 / math.sqrt(d), bf16)
            if not ok:
                rows.append(error_row(name, repetitions, f"wrong result: {worst:.3g} of the bound"))
                print(f"torch_sdpa: {name}: wrong result ({worst:.3g} of the bound)", file=sys.stderr)
                continue
            flops = 4.0 * b * h * sq * skv * d * (0.5 if causal else 1.0)
            first = peer.time_ms(backend, tq, tk, tv, causal) * 1e-3
            calls = max(1, min(1000, math.ceil(min_time / max(first, 1e-7))))
            for r in range(repetitions):
                seconds = sum(peer.time_ms(backend, tq, tk, tv, causal)
                              for _ in range(calls)) * 1e-3 / calls
                rows.append(timing_row(name, r, repetitions, calls, seconds, flops, worst, backend))
            print(f"torch_sdpa: {name}: {flops / seconds / 1e9:.0f} GFLOP/s", file=sys.stderr)
            del tq, tk, tv
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default=os.path.join(ROOT, "build", "gpu", "bench",
                                                        "locality_bench"))
    parser.add_argument("--filter", default="", help="only the ladder's benchmarks this regex finds")
    parser.add_argument("--backend", action="append", choices=sorted(BACKENDS),
                        help="a backend to run (may be repeated; default: all the dtype's)")
    parser.add_argument("--dtype", choices=sorted(FAMILY), default="float32",
                        help="float32 (the attention ladder's peer) or bfloat16 (attention_bf16's)")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--out", required=True, help="write the rows here (JSON, atomically)")
    args = parser.parse_args()
    try:
        if args.repetitions < 1 or not 0 < args.min_time <= 60:
            raise PeerError("--repetitions must be at least 1 and --min-time in (0, 60]")
        try:
            pattern = re.compile(args.filter)
        except re.error as e:
            raise PeerError(f"--filter is not a regular expression: {e}")
        rows, context = [], {}
        try:
            peer = Torch(args.dtype)
        except PeerError as e:
            peer = None
            context["torch_sdpa_left_out"] = str(e)
            print(f"torch_sdpa: left out: {e}", file=sys.stderr)
        if peer is not None:
            shape_list = shapes(args.bench, pattern, FAMILY[args.dtype])
            if not shape_list:
                raise PeerError(f"{args.bench} lists no gpu/{FAMILY[args.dtype]} benchmark "
                                f"matching {args.filter!r}")
            context.update(peer.context())
            # One set of inputs serves every shape: they all hold the same
            # number of elements (batch x seq and heads x head_dim are fixed).
            size = max(b * h * max(sq, skv) * d for b, h, sq, skv, d, _ in shape_list)
            data = [x.reshape(-1) for x in fused_peers.inputs(1, 1, size, size, 1, 17)]
            for backend in args.backend or DTYPE_BACKENDS[args.dtype]:
                why = peer.refusal(backend)
                if why:
                    context[f"torch_sdpa_{backend}_left_out"] = why
                    print(f"torch_sdpa: {backend} left out: {why}", file=sys.stderr)
                    continue
                rows += measure(peer, backend, shape_list, args.repetitions, args.min_time, data)
        results.write_atomically(args.out, json.dumps({"context": context, "benchmarks": rows},
                                                      indent=2) + "\n")
        return 0
    except (PeerError, results.ResultError) as e:
        print(f"torch_sdpa.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

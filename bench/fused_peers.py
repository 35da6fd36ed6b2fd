#!/usr/bin/env python3
"""Fused attention peers: libraries whose attention is one fused kernel, as
the flash rungs are, timed on the attention ladder's shapes by
locality_bench, which runs this script beside it as a helper:

    locality_bench --locality_family=attention --locality_fused_peers=onnxruntime \
        --locality_python=.venv/bin/python

Each attention problem's fused peers then take their turn among its rungs
and other peers, seconds apart, and their rows sit in the same Google
Benchmark JSON. The helper's side (--serve, on stdin and stdout) is one
line per request and per answer, fields separated by tabs:

    at start   context<TAB>KEY<TAB>VALUE ... then ready[<TAB>PEER ...] (the peers that load)
    request    time<TAB>PEER<TAB>B<TAB>H<TAB>SQ<TAB>SKV<TAB>D<TAB>CAUSAL<TAB>THREADS<TAB>MIN_TIME
    answer     ok<TAB>SECONDS_PER_CALL<TAB>CALLS<TAB>MAX_ERROR_OVER_BOUND<TAB>KERNEL_PATH
               or error<TAB>MESSAGE

    .venv/bin/python bench/fused_peers.py --merge-into results/<machine>/gpu_attention.json peers.json

(--merge-into adds a peers file, as gpu/torch_sdpa.py writes, to a results file.)

Peers:
  onnxruntime  ONNX Runtime's CPU MultiHeadAttention (com.microsoft), float32,
               causal through its `unidirectional` attribute (PyPI onnxruntime,
               the model built with onnx); on by default in bench/run.sh.
  torch        PyTorch's scaled_dot_product_attention on the CPU, float32,
               is_causal. Opt-in (LOCALITY_FUSED_PEERS="onnxruntime torch"):
               the default Linux wheel on PyPI carries CUDA libraries (torch
               2.15.0 with its dependencies took 5.4 GB in a virtual
               environment), so the default run never downloads it; install
               it into the virtual environment yourself (.venv/bin/pip
               install torch).

Each peer is first checked against a float64 reference of the same inputs
(the CPU ladder's derived bound, with the exponential's error allowed to be
8 times the rungs' own: the peer's exp is not ours), on every shape it is
timed at, on rows spread over the heads. A peer that fails the check
answers an error for that shape; one that cannot load is reported in the
context (<peer>_left_out) and left out; the run goes on.

Timing leaves Python out: ONNX Runtime's profiler gives each kernel's own
time (the node's "_kernel_time" event), and the binding's overhead around it
is measured and recorded (onnxruntime_call_overhead_us in the context).
PyTorch is timed around the call with the inputs already made, after a
warm-up; its overhead (a call on a 1-element problem) is recorded likewise.
A request times as many calls as fill MIN_TIME (after one to estimate) and
answers their mean. The kernel path: PyTorch is asked which backend
scaled_dot_product_attention picks for each shape (torch._fused_sdp_choice),
written as the row's label; ONNX Runtime does not say (see
ORT_DISABLE_FLASH_ATTENTION in the context). Exit status 2 with one line
for bad input.
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import results  # noqa: E402

UF, UD = 2.0 ** -24, 2.0 ** -53
PEER_EXP_ERROR = 8 * 2.0 ** -23  # 8x the rungs' exp2 bound (verify.hpp's kExp2MaxRelError)


class PeerError(Exception):
    pass


def gamma(n, u):
    return n * u / (1 - n * u) if n * u < 1 else math.inf


def check(q, k, v, o, causal, scale, bf16=False):
    """The CPU ladder's bound (cpu/verify_attention.cpp) on rows spread over
    [B, H, S, D] tensors; returns (ok, worst error / bound). With bf16: the
    bf16 ladder's bound (verify_attention_bf16_rows; q, k, v and o hold bf16
    values), P's rounding allowed in the row sum as well, since a peer may
    sum the rounded weights."""
    import numpy as np
    b, h, sq, d = q.shape
    skv = k.shape[2]
    ub, flushed = 2.0 ** -8, 2.0 ** -126
    score_gamma = (gamma(1.5 * d + 3, 2 * UF) if bf16 else gamma(d + 2, UF)) + gamma(d + 2, UD)
    score_floor = d * (flushed if bf16 else np.finfo(np.float32).smallest_subnormal)
    worst = 0.0
    rows = sorted({int(x) for x in np.linspace(0, sq - 1, min(sq, 24))})
    for bi in range(b):
        for hi in {0, h - 1}:
            kd, vd = k[bi, hi].astype(np.float64), v[bi, hi].astype(np.float64)
            for i in rows:
                n = min(i + 1, skv) if causal else skv
                qd = q[bi, hi, i].astype(np.float64)
                s = scale * (kd[:n] @ qd)
                a = abs(scale) * (np.abs(kd[:n]) @ np.abs(qd))
                p = np.exp(s - s.max())
                p /= p.sum()
                keys = n + 2.0
                rho = (score_gamma * a + score_floor +
                       keys * (PEER_EXP_ERROR + 2 * UF) + 6 * (UF + UD) * np.abs(s).max())
                phi = np.expm1(rho)
                if bf16:
                    phi = (1 + phi) * (1 + ub) - 1
                g = gamma(keys, UF) + gamma(keys + d, UD)
                g_num = gamma(2 * n + 2, 2 * UF) + gamma(keys + d, UD) if bf16 else g
                phibar = float((p * phi).sum())
                want = vd[:n].T @ p
                numer = np.abs(vd[:n]).T @ (p * (phi + g_num))
                vmax = np.abs(vd[:n]).max(axis=0)
                denom = 1 - phibar - g
                if denom <= 0:
                    continue
                bound = (numer + np.abs(want) * (phibar + g) / denom + 2 * UF * np.abs(want) +
                         n * 2.0 ** -125 * vmax +
                         (2 * n + 1) * 0.5 * np.finfo(np.float32).smallest_subnormal)
                if bf16:
                    bound = bound + n * flushed
                    bound = bound + ub * (np.abs(want) + bound) + 2.0 ** -134
                got = o[bi, hi, i].astype(np.float64)
                if not np.all(np.isfinite(got)):
                    return False, math.inf
                worst = max(worst, float((np.abs(got - want) / bound).max()))
    return worst <= 1.0, worst


def inputs(b, h, sq, skv, d, seed):
    """Q, K, V in [B, H, S, D], uniform in [-1, -1/64] U [1/64, 1] as the rungs' tests."""
    import numpy as np
    rng = np.random.default_rng(seed)

    def draw(shape):
        x = rng.uniform(1 / 64, 1, size=shape).astype(np.float32)
        return np.where(rng.random(shape) < 0.5, -x, x).astype(np.float32)
    return draw((b, h, sq, d)), draw((b, h, skv, d)), draw((b, h, skv, d))


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise PeerError(f"not installed ({e}); bench/deps.sh installs it into .venv")
        self.ort = onnxruntime
        self.sessions = {}

    def context(self):
        return {"onnxruntime": f"ONNX Runtime {self.ort.__version__}, com.microsoft "
                "MultiHeadAttention on CPUExecutionProvider, float32, [B, S, H*D] inputs "
                "(transposed outside the timing); timed by its profiler's kernel time; "
                f"ORT_DISABLE_FLASH_ATTENTION={os.environ.get('ORT_DISABLE_FLASH_ATTENTION', 'unset')}"}

    def session(self, b, h, sq, skv, d, causal, threads, profile):
        import onnx
        from onnx import TensorProto, helper
        key = (h, d, causal, threads, profile)
        if key in self.sessions:
            return self.sessions[key]
        hd = h * d
        node = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["o"], domain="com.microsoft",
                                num_heads=h, scale=1.0 / math.sqrt(d), unidirectional=causal)
        graph = helper.make_graph(
            [node], "attention",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", s, hd])
             for n, s in (("q", "SQ"), ("k", "SKV"), ("v", "SKV"))],
            [helper.make_tensor_value_info("o", TensorProto.FLOAT, ["B", "SQ", hd])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("com.microsoft", 1)])
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), "locality_ort")
        sess = self.ort.InferenceSession(model.SerializeToString(), opts,
                                         providers=["CPUExecutionProvider"])
        if not profile:
            self.sessions[key] = sess
        return sess

    @staticmethod
    def to_bsh(x):
        b, h, s, d = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, s, h * d).copy()

    def run_once(self, q, k, v, causal, threads):
        b, h, sq, d = q.shape
        sess = self.session(b, h, sq, k.shape[2], d, causal, threads, profile=False)
        o = sess.run(None, {"q": self.to_bsh(q), "k": self.to_bsh(k), "v": self.to_bsh(v)})[0]
        return o.reshape(b, sq, h, d).transpose(0, 2, 1, 3)

    def time(self, q, k, v, causal, threads, calls):
        """Seconds per call, from the profiler's kernel time, over `calls` calls."""
        b, h, sq, d = q.shape
        sess = self.session(b, h, sq, k.shape[2], d, causal, threads, profile=True)
        feeds = {"q": self.to_bsh(q), "k": self.to_bsh(k), "v": self.to_bsh(v)}
        sess.run(None, feeds)  # warm-up
        for _ in range(calls):
            sess.run(None, feeds)
        path = sess.end_profiling()
        try:
            with open(path, encoding="utf-8") as f:
                events = json.load(f)
        finally:
            os.unlink(path)
        kernel = [e["dur"] for e in events if e.get("cat") == "Node" and
                  e.get("name", "").endswith("_kernel_time") and
                  e.get("args", {}).get("op_name") == "MultiHeadAttention"]
        if len(kernel) < calls:
            raise PeerError("the profiler recorded no MultiHeadAttention kernel time")
        return statistics.mean(kernel[-calls:]) * 1e-6

    def overhead(self):
        """Microseconds a call spends outside the kernel, on a 1-key problem."""
        q, k, v = inputs(1, 1, 1, 1, 8, 1)
        sess = self.session(1, 1, 1, 1, 8, 0, 1, profile=False)
        feeds = {"q": self.to_bsh(q), "k": self.to_bsh(k), "v": self.to_bsh(v)}
        sess.run(None, feeds)
        t0 = time.perf_counter()
        for _ in range(200):
            sess.run(None, feeds)
        return (time.perf_counter() - t0) / 200 * 1e6


class Torch:
    name = "torch"

    def __init__(self):
        try:
            import torch
        except ImportError as e:
            raise PeerError(f"not installed ({e}); opt-in: .venv/bin/pip install torch "
                            "(several GB with its CUDA libraries)")
        self.torch = torch

    def context(self):
        t = self.torch
        info = [line.strip() for line in
                (t.__config__.parallel_info() + t.__config__.show()).splitlines()
                if "parallel backend" in line or "CPU capability" in line]
        return {"torch": f"PyTorch {t.__version__}, scaled_dot_product_attention on the CPU, "
                f"float32; " + "; ".join(line.lstrip("- ") for line in info)}

    def kernel_path(self, q, k, v, causal):
        """The backend scaled_dot_product_attention picks for these inputs."""
        t = self.torch
        choice = t._fused_sdp_choice(t.from_numpy(q), t.from_numpy(k), t.from_numpy(v),
                                     is_causal=bool(causal))
        return t.nn.attention.SDPBackend(choice).name

    def run_once(self, q, k, v, causal, threads):
        t = self.torch
        t.set_num_threads(threads)
        with t.no_grad():
            return t.nn.functional.scaled_dot_product_attention(
                t.from_numpy(q), t.from_numpy(k), t.from_numpy(v), is_causal=bool(causal)).numpy()

    def time(self, q, k, v, causal, threads, calls):
        t = self.torch
        t.set_num_threads(threads)
        tq, tk, tv = t.from_numpy(q), t.from_numpy(k), t.from_numpy(v)
        f = t.nn.functional.scaled_dot_product_attention
        with t.no_grad():
            f(tq, tk, tv, is_causal=bool(causal))
            t0 = time.perf_counter()
            for _ in range(calls):
                f(tq, tk, tv, is_causal=bool(causal))
        return (time.perf_counter() - t0) / calls

    def overhead(self):
        q, k, v = inputs(1, 1, 1, 1, 8, 1)
        self.run_once(q, k, v, 0, 1)
        t0 = time.perf_counter()
        for _ in range(200):
            self.run_once(q, k, v, 0, 1)
        return (time.perf_counter() - t0) / 200 * 1e6


PEERS = {"onnxruntime": OnnxRuntime, "torch": Torch}


class WrongResult(PeerError):
    pass


def repetition(peer, shape, min_time, checked):
    """One timing of `peer` on shape (b, h, sq, skv, d, causal, threads):
    (seconds per call, calls, max error over the bound, kernel path or "").
    The first on a problem checks the peer's output against the reference
    (`checked` remembers the verdicts); WrongResult if it fails."""
    b, h, sq, skv, d, causal, threads = shape
    q, k, v = inputs(b, h, sq, skv, d, 7 + sq + d)
    key = shape[:6]
    if key not in checked:
        checked[key] = check(q, k, v, peer.run_once(q, k, v, causal, threads), causal,
                             1.0 / math.sqrt(d))
    ok, worst = checked[key]
    if not ok:
        raise WrongResult(f"wrong result: {worst:.3g} of the bound")
    path = peer.kernel_path(q, k, v, causal) if hasattr(peer, "kernel_path") else ""
    first = peer.time(q, k, v, causal, threads, 1)
    calls = max(1, min(1000, math.ceil(min_time / max(first, 1e-7))))
    return peer.time(q, k, v, causal, threads, calls), calls, worst, path


def load(names):
    """({name: peer} of those that load, context lines) for the peer names."""
    peers, context = {}, {}
    for name in names:
        try:
            peer = PEERS[name]()
            context.update(peer.context())
            context[f"{name}_call_overhead_us"] = f"{peer.overhead():.1f}"
            peers[name] = peer
        except PeerError as e:
            context[f"{name}_left_out"] = results.one_line(e)
        except Exception as e:  # a peer's own failure is its own, not the run's
            context[f"{name}_left_out"] = results.one_line(f"{type(e).__name__}: {e}")
        if f"{name}_left_out" in context:
            print(f"fused_peers: {name} left out: {context[f'{name}_left_out']}", file=sys.stderr)
    return peers, context


def serve(peers, context, requests, answers):
    """Answers timing requests, one per line, until the input ends (the
    protocol is in this file's docstring)."""
    def say(*fields):
        answers.write("\t".join(results.one_line(f) for f in fields) + "\n")
        answers.flush()

    for key, value in context.items():
        say("context", key, value)
    say("ready", *peers)
    checked = {name: {} for name in peers}
    for line in requests:
        fields = line.rstrip("\n").split("\t")
        try:
            if len(fields) != 10 or fields[0] != "time":
                raise PeerError(f"not a request: {line.strip()[:100]!r}")
            if fields[1] not in peers:
                raise PeerError(f"no peer {fields[1]!r} here")
            shape = tuple(int(x) for x in fields[2:9])
            min_time = float(fields[9])
            if min(shape[:5]) < 1 or shape[5] not in (0, 1) or shape[6] < 1 or \
                    not 0 < min_time <= 60:
                raise PeerError(f"bad request: {line.strip()[:100]!r}")
            seconds, calls, worst, path = repetition(peers[fields[1]], shape, min_time,
                                                     checked[fields[1]])
            say("ok", f"{seconds:.9g}", calls, f"{worst:.6g}", path)
        except ValueError:
            say("error", f"bad request: {line.strip()[:100]!r}")
        except PeerError as e:
            say("error", e)
        except Exception as e:  # the peer's own failure: this request's answer
            say("error", f"{type(e).__name__}: {e}")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every other bad input
        print(f"fused_peers.py: {message}", file=sys.stderr)
        sys.exit(2)


def main():
    parser = Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true",
                        help="answer locality_bench's timing requests on stdin and stdout")
    parser.add_argument("--peer", action="append", choices=sorted(PEERS),
                        help="a peer to load with --serve (may be repeated; default: onnxruntime)")
    parser.add_argument("--merge-into", metavar="FILE",
                        help="with one PEERS file: add its benchmarks and context to FILE")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    try:
        if args.merge_into:
            if len(args.files) != 1:
                raise PeerError("--merge-into takes one peers file")
            doc = results.read_json(args.merge_into)
            extra = results.read_json(args.files[0])
            names = {b.get("name") for b in extra["benchmarks"]}
            doc["benchmarks"] = [b for b in doc["benchmarks"] if b.get("name") not in names]
            doc["benchmarks"] += extra["benchmarks"]
            doc["context"].update(extra["context"])
            results.write_atomically(args.merge_into, json.dumps(doc, indent=2) + "\n")
            return 0
        if not args.serve or args.files:
            raise PeerError("give --serve, or --merge-into FILE PEERS")
        # The answers go to the real stdout; anything a library prints goes to stderr.
        answers = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        serve(*load(args.peer or ["onnxruntime"]), sys.stdin, answers)
        return 0
    except (PeerError, results.ResultError) as e:
        print(f"fused_peers.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

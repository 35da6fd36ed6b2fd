#!/usr/bin/env python3
"""Turns a locality_bench JSON file into the ladder tables.

    python3 bench/report.py results/<machine>/cpu_matmul.json
    python3 bench/report.py results/<machine>/cpu_attention.json --readme README.md
    python3 bench/report.py results/<machine>/cpu_matmul.json --plots results/<machine> \
        --profile results/<machine>/cachegrind.json
    python3 bench/report.py results/<gpu>/gpu_attention.json --readme README.md

The first prints the tables (Markdown). The second also rewrites the part of
README.md between the family's markers (<!-- cpu-matmul-ladder:begin --> and
<!-- cpu-matmul-ladder:end -->, or cpu-attention-ladder, gpu-matmul-ladder,
gpu-attention-ladder, gpu-matmul-bf16-ladder, gpu-attention-bf16-ladder, and
the -headline: pairs for the first table), atomically
(temporary file, then rename). The family is read from the benchmark names.
--plots writes the family's pictures there (bench/plots.py; matplotlib).

Exit status 2, with one line on stderr, for a missing, empty, truncated or
non-benchmark file; nothing is written then.
"""

import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cachegrind  # noqa: E402  (the profile reader, for the rooflines)
from results import (MARKERS, HEADLINE_MARKERS, ResultError as ReportError,  # noqa: E402,F401
                     fma_peaks, fmt_bytes, headline, headline_size, number, one_line, read_json,
                     update_readme, write_atomically)

NAME = re.compile(r"^cpu/matmul/(?P<variant>[^/]+)/(?P<m>\d{1,9})x(?P<n>\d{1,9})x(?P<k>\d{1,9})"
                  r"/omp_threads:(?P<threads>\d{1,9})(?:/real_time)?$")
ATTENTION = re.compile(r"^cpu/attention/(?P<variant>[^/]+)/(?P<b>\d{1,9})x(?P<h>\d{1,9})x(?P<sq>\d{1,9})"
                       r"x(?P<skv>\d{1,9})x(?P<d>\d{1,9})/causal:(?P<causal>[01])"
                       r"/omp_threads:(?P<threads>\d{1,9})"
                       r"(?:/real_time|/iterations:\d{1,9}/manual_time)?$")  # rungs; fused peers
# The top matmul rung against each peer, call by call (locality_bench --locality_pairs).
PAIRS = re.compile(r"^cpu/pairs/matmul/(?P<rung>[^/]+)_vs_(?P<peer>[^/]+)/(?P<m>\d{1,9})"
                   r"x(?P<n>\d{1,9})x(?P<k>\d{1,9})/omp_threads:(?P<threads>\d{1,9})"
                   r"(?:/iterations:\d{1,9}/manual_time)?$")
GPU = re.compile(r"^gpu/matmul/(?P<variant>[^/]+)/(?P<m>\d{1,9})x(?P<n>\d{1,9})x(?P<k>\d{1,9})(?:/manual_time)?$")
GPU_BF16 = re.compile(r"^gpu/matmul_bf16/(?P<variant>[^/]+)/(?P<m>\d{1,9})x(?P<n>\d{1,9})"
                      r"x(?P<k>\d{1,9})(?:/manual_time)?$")
GPU_ATTENTION = re.compile(r"^gpu/attention/(?P<variant>[^/]+)/(?P<b>\d{1,9})x(?P<h>\d{1,9})"
                           r"x(?P<sq>\d{1,9})x(?P<skv>\d{1,9})x(?P<d>\d{1,9})"
                           r"/causal:(?P<causal>[01])(?:/manual_time)?$")
GPU_ATTENTION_BF16 = re.compile(GPU_ATTENTION.pattern.replace("attention/", "attention_bf16/", 1))
ATTENTION_HEADLINE_SEQ = 4096
# The rungs and their order come from the benchmark JSON itself: each rung's
# benchmarks carry a `rung` counter (its place in the registry), a peer's
# none. Files written before that counter existed name their rungs in this
# order; it is frozen: a new rung arrives with its number and needs no entry.
LEGACY_LADDERS = {
    "matmul": ["naive", "reordered", "tiled", "register_blocked", "packed", "parallel"],
    "attention": ["naive", "reordered", "tiled", "flash", "parallel_flash"],
    "gpu": ["naive", "coalesced", "smem_tiled", "register_1d", "register_2d", "warp_tiled",
            "pipelined"],
    "gpu_attention": [],  # every file of these has the counter
    "gpu_bf16": [],
    "gpu_attention_bf16": [],
}
HEADLINE_SIZE = 1024  # every rung runs at this size, the slowest included


def load(path):
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) \
            or not isinstance(doc.get("context"), dict):
        raise ReportError(f"{path} is not Google Benchmark JSON (no context and benchmarks)")
    for i, b in enumerate(doc["benchmarks"]):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) \
                or not isinstance(b.get("run_name", ""), str):
            raise ReportError(f"{path}: benchmark entry {i} is not an object with a string name")
    return doc


def ladder(doc, pattern, which):
    """({variant: rung number} for the rungs, [peers]) among the benchmarks
    `pattern` names: a benchmark with a `rung` counter is that rung, one
    without is a peer (peers in name order)."""
    numbers, seen = {}, set()
    # The repetitions only: an aggregate's counters are statistics of theirs
    # (a rung's stddev is 0), and a benchmark that stopped has no numbers.
    for b, name, match in repetitions(doc, pattern, []):
        variant = match["variant"]
        seen.add(variant)
        if "rung" in b:
            rung = number(b["rung"], f"benchmark {name}: rung")
            if rung != int(rung) or numbers.get(variant, rung) != rung:
                raise ReportError(f"benchmark {name}: rung {b['rung']!r} is not one whole number "
                                  "per variant")
            numbers[variant] = int(rung)
    if not numbers:  # a file from before the rung counter
        numbers = {v: LEGACY_LADDERS[which].index(v) for v in seen if v in LEGACY_LADDERS[which]}
    rungs = dict(sorted(numbers.items(), key=lambda item: (item[1], item[0])))
    return rungs, sorted(seen - set(rungs))


def repetitions_of(b, name):
    reps = b.get("repetitions", 1)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ReportError(f"benchmark {name}: repetitions must be a positive whole number")
    return reps


def text(ctx, key):
    """A context value for the header line, '?' when missing or not a scalar."""
    value = ctx.get(key)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return " ".join(str(value).split()) or "?"
    return "?"


def peaks_text(peaks):
    """The header's account of the FMA peak the "% of FMA peak" columns use."""
    if not peaks:
        return "FMA peak: not measured"

    def one(t):
        best, lowest = (f"{x / 1e9:.0f}" for x in peaks[t])
        return (f"{best} GFLOP/s with {t} thread{'s' if t > 1 else ''}"
                + (f" (lowest probe {lowest})" if lowest != best else ""))
    return ('FMA peak (the best FMA probe of the run; "% of FMA peak" divides by it): '
            + ", ".join(one(t) for t in sorted(peaks)))


def peak_percent(gflops, peaks, threads):
    """GFLOP/s as a percentage of the FMA peak with that many threads."""
    if gflops is None or threads not in peaks:
        return None
    return 100 * gflops * 1e9 / peaks[threads][0]


def error_line(name, b):
    return f"{name}: {' '.join(str(b.get('error_message', 'error')).split())}"


def repetitions(doc, pattern, errors):
    """(benchmark, name, match) for each repetition of the benchmarks `pattern`
    names; benchmarks that stopped with an error go to `errors` instead, and
    aggregates are skipped (medians are recomputed from the repetitions)."""
    for b in doc["benchmarks"]:
        name = b.get("run_name") or b.get("name", "")
        match = pattern.fullmatch(name)
        if not match:
            continue
        if b.get("error_occurred"):
            errors.append(error_line(name, b))
        elif b.get("run_type") != "aggregate":
            yield b, name, match


def medians(doc, pattern, key, counters):
    """The one collect-and-median step of every table: for the benchmarks
    `pattern` names, keyed by key(match), the median over repetitions of each
    counter. Returns ([{key: median} per counter], errors, repetitions); a
    benchmark lacking one of the counters is refused."""
    samples = [{} for _ in counters]
    errors, reps = [], set()
    for b, name, match in repetitions(doc, pattern, errors):
        reps.add(repetitions_of(b, name))
        if any(c not in b for c in counters):
            names = ", ".join(counters[:-1]) + (" or " if len(counters) > 1 else "") + counters[-1]
            raise ReportError(f"benchmark {name} lacks a {names} counter")
        for counter, values in zip(counters, samples):
            values.setdefault(key(match), []).append(number(b[counter], f"{name} {counter}"))
    return ([{k: statistics.median(v) for k, v in values.items()} for values in samples], errors,
            max(reps, default=1))


def matmul_key(m):
    """A CPU matmul benchmark's table key: (variant, n, threads)."""
    return m["variant"], int(m["n"]), int(m["threads"])


def attention_key(m):
    """A CPU attention benchmark's table key: (variant, seq, d, causal, threads)."""
    return m["variant"], int(m["sq"]), int(m["d"]), int(m["causal"]), int(m["threads"])


def collect(doc):
    """{(variant, n, threads): median GFLOP/s}."""
    (flops,), errors, reps = medians(doc, NAME, matmul_key, ["flops"])
    if not flops and not errors:
        raise ReportError("no cpu/matmul benchmark in the file")
    return {k: v / 1e9 for k, v in flops.items()}, errors, reps


def family(doc):
    names = [b.get("run_name") or b.get("name", "") for b in doc["benchmarks"]]
    if any(NAME.fullmatch(n) for n in names):
        return "matmul"
    if any(ATTENTION.fullmatch(n) for n in names):
        return "attention"
    if any(GPU.fullmatch(n) for n in names):
        return "gpu"
    if any(GPU_ATTENTION.fullmatch(n) for n in names):
        return "gpu_attention"
    if any(GPU_BF16.fullmatch(n) for n in names):
        return "gpu_bf16"
    if any(GPU_ATTENTION_BF16.fullmatch(n) for n in names):
        return "gpu_attention_bf16"
    raise ReportError("no cpu/matmul, cpu/attention, gpu/matmul, gpu/attention, gpu/matmul_bf16 or "
                      "gpu/attention_bf16 benchmark in the file")


# Peers whose attention is one fused kernel (bench/fused_peers.py); they
# report no workspace.
FUSED_PEERS = {"onnxruntime", "torch"}


def collect_attention(doc):
    """{(variant, seq, d, causal, threads): median GFLOP/s}, workspace bytes."""
    (flops,), errors, reps = medians(doc, ATTENTION, attention_key, ["flops"])
    unfused = re.compile(r"^cpu/attention/(?!(?:" + "|".join(sorted(FUSED_PEERS)) + r")/).*")
    (workspace,), _, _ = medians(
        {"benchmarks": [b for b in doc["benchmarks"]
                        if unfused.match(b.get("run_name") or b.get("name", ""))]},
        ATTENTION, attention_key, ["workspace_bytes"])
    return {k: v / 1e9 for k, v in flops.items()}, workspace, errors, reps


def pairs_table(doc, bad):
    """Lines of the call-by-call table (cpu/pairs/ rows), or none."""
    rows, errors = {}, []
    for b, name, m in repetitions(doc, PAIRS, errors):
        if m["peer"] in bad or "ratio" not in b:
            continue
        key = (int(m["n"]), int(m["threads"]))
        rows.setdefault(key, {})[m["peer"]] = (
            number(b["ratio"], f"{name} ratio"), number(b["ratio_low"], f"{name} ratio_low"),
            number(b["ratio_high"], f"{name} ratio_high"), int(number(b["pairs"], f"{name} pairs")))
    if not rows:
        return []
    rung = next(PAIRS.fullmatch(b.get("run_name") or b.get("name", ""))["rung"]
                for b in doc["benchmarks"] if PAIRS.fullmatch(b.get("run_name") or b.get("name", "")))
    peers = sorted({p for r in rows.values() for p in r})
    out = [f"{rung} against each peer call by call (locality_bench --locality_pairs: rounds of one "
           f"call of each, the order alternating; the median [lowest, highest] over the rounds of "
           f"the peer's time over {rung}'s, so above 1 is faster than the peer; the lowest of "
           "the medians is the closest peer):", "",
           "| n | threads | rounds | closest peer | × | " + " | ".join(f"×{p}" for p in peers) + " |",
           "|" + "---|" * (5 + len(peers))]
    for (n, t), r in sorted(rows.items()):
        closest = min(r, key=lambda p: r[p][0])
        cells = [f"{fmt(r[p][0], 2)} [{fmt(r[p][1], 2)}, {fmt(r[p][2], 2)}]" if p in r else "—"
                 for p in peers]
        out.append(f"| {n} | {t} | {r[closest][3]} | {closest} | {fmt(r[closest][0], 2)} | "
                   + " | ".join(cells) + " |")
    return out + [""] + (["Comparisons that stopped with an error:", ""]
                         + [f"- {e}" for e in errors] + [""] if errors else [])


def by_turn(doc, pattern, key):
    """{key(match): {repetition_index: GFLOP/s}} for the benchmarks `pattern`
    names, from a file whose runs took turns (bench/run.sh; the context's
    locality_turns says so), where repetition r of every benchmark comes from
    turn r."""
    out = {}
    for b, name, m in repetitions(doc, pattern, []):
        if "flops" not in b:
            continue
        r = b.get("repetition_index", 0)
        if isinstance(r, bool) or not isinstance(r, int):
            raise ReportError(f"benchmark {name}: repetition_index must be a whole number")
        out.setdefault(key(m), {})[r] = number(b["flops"], f"{name} flops") / 1e9
    return out


def turn_ratio(turns, a, b):
    """Median over the turns both ran in of a's GFLOP/s over b's; None if none."""
    ta, tb = turns.get(a, {}), turns.get(b, {})
    pairs = [ta[r] / tb[r] for r in ta.keys() & tb.keys() if tb[r] > 0]
    return statistics.median(pairs) if pairs else None


def attention_tables(doc):
    med, workspace, errors, repetitions = collect_attention(doc)
    ctx = doc["context"]
    in_turns = "locality_turns" in ctx
    threads = sorted({k[4] for k in med})
    seqs = sorted({k[1] for k in med})
    dims = sorted({k[2] for k in med})
    rungs, peers = ladder(doc, ATTENTION, "attention")
    variants = [v for v in list(rungs) + peers if any(k[0] == v for k in med)]
    out = []
    peaks = fma_peaks(doc)
    out.append(f"Measured on {text(ctx, 'cpu_model')} ({text(ctx, 'num_cpus')} cores), "
               f"{text(ctx, 'compiler')}, commit {text(ctx, 'git_commit')}, "
               f"{text(ctx, 'date')}; micro-kernel {text(ctx, 'locality_microkernel')}. "
               f"{peaks_text(peaks)}. Medians of {repetitions} interleaved repetitions. "
               f"FLOPs counted as 4 B H seq_q seq_kv d (half with the causal mask). Unfused "
               f"peers (S materialized per head, the rungs' softmax): oneDNN "
               f"{text(ctx, 'onednn_version')} sgemm, Eigen {text(ctx, 'eigen_version')}."
               + "".join(f" Fused peer: {text(ctx, p)} (a call's overhead outside the kernel: "
                         f"{text(ctx, p + '_call_overhead_us')} µs)." for p in sorted(FUSED_PEERS)
                         if p in ctx)
               + "".join(f" Left out: {p} ({text(ctx, p + '_left_out')})."
                         for p in sorted(FUSED_PEERS) if p + "_left_out" in ctx))
    out.append("")

    s0 = ATTENTION_HEADLINE_SEQ if ATTENTION_HEADLINE_SEQ in seqs else (seqs[-1] if seqs else 0)
    for d in dims:
        for causal in (0, 1):
            if not any(k[1] == s0 and k[2] == d and k[3] == causal for k in med):
                continue
            here = [v for v in variants if any(k[0] == v and k[1] == s0 and k[2] == d and
                                               k[3] == causal for k in med)]
            absent = [v for v in variants if v not in here]
            out += [f"The ladder at seq {s0}, head_dim {d}{', causal' if causal else ''} "
                    f"(GFLOP/s" + (f"; not run at this size: {', '.join(absent)}, see the "
                                   "tables by sequence length" if absent else "") + "):", ""]
            # Workspace can grow with the thread count (per-thread buffers), so
            # each thread count gets its own workspace column.
            out.append("| rung | variant | " + " | ".join(
                f"{t} thr | % of FMA peak | workspace, {t} thr" for t in threads) + " |")
            out.append("|" + "---|" * (2 + 3 * len(threads)))
            for v in here:
                rung = str(rungs[v]) if v in rungs else "peer"
                cells = []
                for t in threads:
                    key = (v, s0, d, causal, t)
                    cells += [fmt(med.get(key)), fmt(peak_percent(med.get(key), peaks, t), 0),
                              fmt_bytes(workspace.get(key))]
                out.append(f"| {rung} | {v} | " + " | ".join(cells) + " |")
            out.append("")

    top = list(rungs)[-1] if rungs else None
    peers = [p for p in peers if any(k[0] == p for k in med)]
    kinds = [(kind, [p for p in peers if (p in FUSED_PEERS) == (kind == "fused")])
             for kind in ("fused", "unfused")]
    kinds = [(kind, ps) for kind, ps in kinds if ps]
    if top and any(k[0] == top for k in med) and kinds:
        turns = by_turn(doc, ATTENTION, attention_key) if in_turns else {}
        out += [f"Top rung against the best fused and the best unfused peer at each size "
                f"(× = {top} / peer" + ("; against the fused peers, the median of the "
                                        "turn-by-turn ratios"
                                        if in_turns else "") + "):", ""]
        out.append("| seq | head_dim | causal | threads | " + top + " GFLOP/s | " + " | ".join(
            f"best {kind} peer | GFLOP/s | "
            + ("× by turn" if in_turns and kind == "fused" else "×") for kind, _ in kinds) + " |")
        out.append("|" + "---|" * (5 + 3 * len(kinds)))
        for s in seqs:
            for d in dims:
                for causal in (0, 1):
                    for t in threads:
                        g = med.get((top, s, d, causal, t))
                        if g is None:
                            continue
                        cells = []
                        for kind, ps in kinds:
                            best = max(ps, key=lambda p: med.get((p, s, d, causal, t)) or 0)
                            pg = med.get((best, s, d, causal, t))
                            x = (turn_ratio(turns, (top, s, d, causal, t), (best, s, d, causal, t))
                                 if in_turns and kind == "fused" else ratio(g, pg))
                            cells += [best if pg else "—", fmt(pg), fmt(x, 2)]
                        out.append(f"| {s} | {d} | {'yes' if causal else 'no'} | {t} | {fmt(g)} | "
                                   + " | ".join(cells) + " |")
        out.append("")

    for t in threads:
        for d in dims:
            out += [f"GFLOP/s by sequence length, head_dim {d}, not causal, {t} thread(s):", ""]
            out.append("| variant | " + " | ".join(str(s) for s in seqs) + " |")
            out.append("|" + "---|" * (1 + len(seqs)))
            for v in variants:
                out.append(f"| {v} | " +
                           " | ".join(fmt(med.get((v, s, d, 0, t))) for s in seqs) + " |")
            out.append("")
    if errors:
        out += ["Benchmarks that stopped with an error:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def fmt(x, digits=1):
    return "—" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


# OpenBLAS's kernels for cores without AVX2: on a CPU with AVX2 (every CPU
# this suite's micro-kernels run their AVX2 or AVX-512 kernel on), a peer run
# on them is misconfigured, not measured at its best.
OLD_OPENBLAS_CORES = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                      "coppermine", "northwood", "banias", "barcelona", "opteron", "bobcat",
                      "unknown"}


def misconfigured_peers(ctx):
    """{peer: why} for the peers a result file shows running below their best
    (older files, from before locality_bench left such peers out itself)."""
    out = {}
    core = str(ctx.get("openblas_corename", "")).lower()
    kernel = str(ctx.get("locality_microkernel", ""))
    if core in OLD_OPENBLAS_CORES and ("avx2" in kernel or "avx512" in kernel):
        out["openblas"] = (f"OpenBLAS ran its {ctx['openblas_corename']} kernels on a CPU with "
                           "AVX2; its row is left out as misconfigured")
    return out


def mkl_text(described):
    """MKL's version, code path and threading layer out of the long text
    locality_bench records (the JSON keeps the whole of it)."""
    version = re.search(r"Library Version ([0-9.]+)", str(described))
    path = re.search(r"code path (\S+)", str(described))
    layer = re.search(r"(\S+ OpenMP) threading layer", str(described))
    if not version or not path:
        return str(described)
    return f"{version.group(1)}, code path {path.group(1)}" + (
        f", {layer.group(1)} threading" if layer else "")


def peers_text(ctx):
    """How each peer ran, from the context locality_bench recorded."""
    left_out = {k.removesuffix("_left_out"): ctx[k] for k in ctx if k.endswith("_left_out")}
    for peer, why in misconfigured_peers(ctx).items():
        left_out.setdefault(peer, why)  # said once, by locality_bench where it did
    parts = [f"oneDNN {text(ctx, 'onednn_version')} ({text(ctx, 'onednn_isa')})"]
    if "openblas" not in left_out:
        parts.append(f"OpenBLAS (Debian) core {text(ctx, 'openblas_corename')} "
                     f"(OPENBLAS_CORETYPE {text(ctx, 'openblas_coretype_env')})")
    for key, name in (("scipy_openblas", "OpenBLAS (PyPI)"), ("mkl", "MKL"), ("blis", "BLIS")):
        if key in ctx:
            parts.append(f"{name}: {mkl_text(ctx[key]) if key == 'mkl' else text(ctx, key)}")
    parts.append(f"Eigen {text(ctx, 'eigen_version')}")
    left_out = [f"{peer} ({why})" for peer, why in sorted(left_out.items())]
    return "; ".join(parts) + (". Left out: " + "; ".join(left_out) if left_out else "")


def tables(doc):
    med, errors, repetitions = collect(doc)
    ctx = doc["context"]
    bad = misconfigured_peers(ctx)
    med = {k: v for k, v in med.items() if k[0] not in bad}
    threads = sorted({t for (_, _, t) in med})
    sizes = sorted({n for (_, n, _) in med})
    rungs, peers = ladder(doc, NAME, "matmul")
    peers = [p for p in peers if p not in bad]
    present = [v for v in rungs if any(k[0] == v for k in med)]
    variants = present + [p for p in peers if any(k[0] == p for k in med)]
    out = []

    peaks = fma_peaks(doc)
    out.append(f"Measured on {text(ctx, 'cpu_model')} ({text(ctx, 'num_cpus')} cores), "
               f"{text(ctx, 'compiler')}, `{text(ctx, 'compiler_flags')}`, "
               f"commit {text(ctx, 'git_commit')}, {text(ctx, 'date')}; "
               f"micro-kernel {text(ctx, 'locality_microkernel')}. "
               f"{peaks_text(peaks)}. Medians of {repetitions} interleaved repetitions. "
               f"Peers: {peers_text(ctx)}.")
    out.append("")

    n0 = headline_size(HEADLINE_SIZE, [n for n in sizes if all((v, n, t) in med for v in present
                                                                for t in threads)])
    head = "| rung | variant | " + " | ".join(
        f"GFLOP/s, {t} thr | × naive | × rung below | % of FMA peak" for t in threads) + " |"
    out += [f"The ladder at n = {n0} (square, float32):", "", head,
            "|" + "---|" * (2 + 4 * len(threads))]
    for v in variants:
        index = present.index(v) if v in present else None
        rung = "peer" if index is None else str(rungs[v])
        cells = []
        for t in threads:
            g = med.get((v, n0, t))
            below = med.get((present[index - 1], n0, t)) if index else None
            naive = med.get(("naive", n0, t))
            cells += [fmt(g), fmt(ratio(g, naive)) if v != "naive" else "1.0",
                      fmt(ratio(g, below), 2) if below else "—",
                      fmt(peak_percent(g, peaks, t), 0)]
        out.append(f"| {rung} | {v} | " + " | ".join(cells) + " |")
    out.append("")

    top = present[-1] if present else None
    if top:
        in_turns = "locality_turns" in ctx
        turns = by_turn(doc, NAME, matmul_key) if in_turns else {}

        def x(g, p, n, t):  # the top rung over peer p, turn by turn where the runs took turns
            if in_turns:
                return turn_ratio(turns, (top, n, t), (p, n, t))
            return ratio(g, med.get((p, n, t)))
        out += [f"Top rung against the peers (ratio = {top} / peer, same run" +
                ("; the runs took turns, and each ratio is the median of the turn-by-turn ratios"
                 if in_turns else "") + "):", ""]
        peers = [p for p in peers if any(k[0] == p for k in med)]
        out.append("| n | threads | " + top + " GFLOP/s | best peer | ×best | " +
                   " | ".join(f"{p} GFLOP/s | ×{p}" for p in peers) + " |")
        out.append("|" + "---|" * (5 + 2 * len(peers)))
        for n in [s for s in sizes if s >= n0]:
            for t in threads:
                g = med.get((top, n, t))
                cells = []
                for p in peers:
                    pg = med.get((p, n, t))
                    cells += [fmt(pg), fmt(x(g, p, n, t) if pg else None, 2)]
                ran = [(med[(p, n, t)], p) for p in peers if med.get((p, n, t))]
                best = max(ran) if ran else (None, "—")
                out.append(f"| {n} | {t} | {fmt(g)} | {best[1]} | "
                           f"{fmt(x(g, best[1], n, t) if ran else None, 2)} | "
                           + " | ".join(cells) + " |")
        out.append("")

    out += pairs_table(doc, bad)

    for t in threads:
        out += [f"GFLOP/s by size, {t} thread(s) (— : not run at that size):", ""]
        out.append("| variant | " + " | ".join(str(n) for n in sizes) + " |")
        out.append("|" + "---|" * (1 + len(sizes)))
        for v in variants:
            out.append(f"| {v} | " + " | ".join(fmt(med.get((v, n, t))) for n in sizes) + " |")
        out.append("")

    if errors:
        out += ["Benchmarks that stopped with an error:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def load_profile(path):
    """A bench/cachegrind.py file, read by that script's own reader."""
    try:
        return cachegrind.load(path)
    except cachegrind.ProfileError as e:
        raise ReportError(str(e))


def write_plots(doc, which, outdir, profile):
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise ReportError(f"--plots {outdir}: cannot make a folder there ({e.strerror})")
    if not os.path.isdir(outdir):
        raise ReportError(f"--plots {outdir}: not a folder")
    try:
        import plots
    except ImportError as e:
        raise ReportError(f"plots need matplotlib ({e.name} is missing for {sys.executable}): "
                          "apt-get install python3-matplotlib, and run Debian's /usr/bin/python3")
    try:
        if which == "matmul":
            med, _, _ = collect(doc)
            threads = sorted({k[2] for k in med})
            rungs, peers = ladder(doc, NAME, "matmul")
            return plots.matmul_plots(doc, outdir, med, list(rungs), [p for p in peers if
                                      any(k[0] == p for k in med)], threads, profile)
        med, _, _, _ = collect_attention(doc)
        threads = sorted({k[4] for k in med})
        rungs, peers = ladder(doc, ATTENTION, "attention")
        return plots.attention_plots(doc, outdir, med, list(rungs),
                                     [p for p in peers if any(k[0] == p for k in med)],
                                     threads, profile)
    except OSError as e:
        raise ReportError(f"--plots {outdir}: cannot write a plot there ({e.strerror})")


GPU_PEERS = {
    "gpu": "cuBLAS is cublasSgemm in FP32 (pedantic math: no tensor cores)",
    "gpu_bf16": "bf16 A and B, float accumulation and C; cuBLAS is cublasLtMatmul on the same "
                "types with tensor cores, the fastest of cuBLASLt's heuristic candidates for "
                "each shape (the algorithm is each cublas row's label in the file)",
}


def gpu_tables(doc, pattern=GPU, which="gpu"):
    """A CUDA matmul ladder: GFLOP/s per shape, and each rung against cuBLAS (same run)."""
    (flops,), errors, reps = medians(doc, pattern,
                                     lambda m: (m["variant"], f"{m['m']}x{m['n']}x{m['k']}"),
                                     ["flops"])
    med = {k: v / 1e9 for k, v in flops.items()}
    ctx = doc["context"]
    shapes = sorted({k[1] for k in med}, key=lambda x: [int(v) for v in x.split("x")])
    rungs, peers = ladder(doc, pattern, which)
    variants = [v for v in list(rungs) + peers if any(k[0] == v for k in med)]
    out = [f"Measured on {text(ctx, 'gpu_name')} ({text(ctx, 'gpu_sm_count')} SMs, compute "
           f"capability {text(ctx, 'gpu_compute_capability')}), CUDA {text(ctx, 'cuda_runtime')}, "
           f"driver {text(ctx, 'cuda_driver')}, cuBLAS {text(ctx, 'cublas_version')}, commit "
           f"{text(ctx, 'git_commit')}, {text(ctx, 'date')}. Medians of {reps} "
           f"interleaved repetitions, CUDA events around each call after an L2 flush; "
           f"{GPU_PEERS[which]}.", "",
           "Against cuBLAS (rung / cublas, same run; m x n x k):", "",
           "| rung | variant | " + " | ".join(shapes) + " |", "|" + "---|" * (2 + len(shapes))]
    for v in [v for v in variants if v in rungs]:
        cells = [fmt(ratio(med.get((v, s)), med.get(("cublas", s))), 2) for s in shapes]
        out.append(f"| {rungs[v]} | {v} | " + " | ".join(cells) + " |")
    out += ["", "GFLOP/s by shape (m x n x k):", "",
            "| rung | variant | " + " | ".join(shapes) + " |", "|" + "---|" * (2 + len(shapes))]
    for v in variants:
        rung = str(rungs[v]) if v in rungs else "peer"
        out.append(f"| {rung} | {v} | " + " | ".join(fmt(med.get((v, s)), 0) for s in shapes) + " |")
    out.append("")
    if errors:
        out += ["Benchmarks that stopped with an error:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


# What each GPU attention ladder is measured in, and the peer every rung is
# set against in its first table.
GPU_ATTENTION_LADDERS = {
    "gpu_attention": (GPU_ATTENTION, "cublas",
                      "float32 throughout. Shapes: batch x seq = 16384, heads x head_dim = 2048; "
                      "FLOPs counted as 4 B H seq^2 d (half with the causal mask). Peers: cublas "
                      "is unfused attention on cublasSgemmStridedBatched in FP32 (pedantic math: "
                      "no tensor cores) with the tiled rung's softmax"),
    "gpu_attention_bf16": (GPU_ATTENTION_BF16, "torch_sdpa_flash",
                           "Q, K, V and O in bf16, scores, softmax and sums in float. Shapes: "
                           "batch x seq = 16384, heads x head_dim = 2048; FLOPs counted as "
                           "4 B H seq^2 d (half with the causal mask). Peers: PyTorch's "
                           "scaled_dot_product_attention in bf16, one row per backend"),
}


def gpu_attention_tables(doc, which="gpu_attention"):
    """A CUDA attention ladder: each rung at seq 4096 against its reference
    peer, the top rung against every peer at each size, GFLOP/s by length."""
    pattern, reference, what = GPU_ATTENTION_LADDERS[which]
    ref = reference.removeprefix("torch_sdpa_")
    key = lambda m: (m["variant"], int(m["sq"]), int(m["d"]), int(m["causal"]))
    (flops,), errors, reps = medians(doc, pattern, key, ["flops"])
    med = {k: v / 1e9 for k, v in flops.items()}
    (workspace,), _, _ = medians(
        {"benchmarks": [b for b in doc["benchmarks"] if "workspace_bytes" in b]},
        pattern, key, ["workspace_bytes"])
    ctx = doc["context"]
    rungs, peers = ladder(doc, pattern, which)
    variants = [v for v in list(rungs) + peers if any(k[0] == v for k in med)]
    peers = [p for p in peers if p in variants]
    seqs = sorted({k[1] for k in med})
    dims = sorted({k[2] for k in med})
    cases = [(d, c) for d in dims for c in (0, 1) if any(k[2:] == (d, c) for k in med)]
    torch_rows = [p for p in peers if p.startswith("torch_sdpa_")]
    left_out = [f"{k.removesuffix('_left_out')} ({ctx[k]})" for k in sorted(ctx)
                if k.startswith("torch_sdpa") and k.endswith("_left_out")]
    out = [f"Measured on {text(ctx, 'gpu_name')} ({text(ctx, 'gpu_sm_count')} SMs, compute "
           f"capability {text(ctx, 'gpu_compute_capability')}), CUDA {text(ctx, 'cuda_runtime')}, "
           f"driver {text(ctx, 'cuda_driver')}, cuBLAS {text(ctx, 'cublas_version')}, commit "
           f"{text(ctx, 'git_commit')}, {text(ctx, 'date')}. Medians of {reps} interleaved "
           f"repetitions, CUDA events around each call after an L2 flush; {what}"
           + (f"; torch_sdpa_*: {text(ctx, 'torch_sdpa')}" if "torch_sdpa" in ctx else "")
           + (". Left out: " + "; ".join(left_out) if left_out else "") + ".", ""]

    s0 = ATTENTION_HEADLINE_SEQ if ATTENTION_HEADLINE_SEQ in seqs else (seqs[-1] if seqs else 0)
    label = lambda d, c: f"d {d}{' causal' if c else ''}"
    out += [f"The ladder at seq {s0} (GFLOP/s, and × the {reference} peer; workspace: device "
            f"memory a rung needs beyond Q, K, V and O, at head_dim {max(dims, default=0)}):", "",
            "| rung | variant | " + " | ".join(f"{label(d, c)} | ×{ref}" for d, c in cases)
            + " | workspace |", "|" + "---|" * (3 + 2 * len(cases))]
    for v in variants:
        cells = []
        for d, c in cases:
            g = med.get((v, s0, d, c))
            cells += [fmt(g, 0), fmt(ratio(g, med.get((reference, s0, d, c))), 2)]
        ws = workspace.get((v, s0, max(dims, default=0), 0))
        out.append(f"| {rungs[v] if v in rungs else 'peer'} | {v} | " + " | ".join(cells) +
                   f" | {fmt_bytes(ws) if v in rungs else '—'} |")
    out.append("")

    top = list(rungs)[-1] if rungs else None
    if top and any(k[0] == top for k in med):
        naive = "naive" if "naive" in rungs and top != "naive" else None
        out += [f"Top rung against the peers at each size (× = {top} / peer, same run):", "",
                f"| seq | head_dim | causal | {top} GFLOP/s | ×{ref} | best torch_sdpa | "
                "GFLOP/s | ×torch" + (" | ×naive" if naive else "") + " |",
                "|" + "---|" * (8 + (1 if naive else 0))]
        for s in seqs:
            for d, c in cases:
                g = med.get((top, s, d, c))
                if g is None:
                    continue
                ran = [(med[(p, s, d, c)], p) for p in torch_rows if med.get((p, s, d, c))]
                best = max(ran) if ran else (None, "—")
                cells = [fmt(g, 0), fmt(ratio(g, med.get((reference, s, d, c))), 2),
                         best[1].removeprefix("torch_sdpa_"), fmt(best[0], 0),
                         fmt(ratio(g, best[0]), 2)]
                if naive:
                    cells.append(fmt(ratio(g, med.get((naive, s, d, c))), 1))
                out.append(f"| {s} | {d} | {'yes' if c else 'no'} | " + " | ".join(cells) + " |")
        out.append("")

    for d, c in cases:
        out += [f"GFLOP/s by sequence length, head_dim {d}{', causal' if c else ''} "
                "(— : not run at that length):", "",
                "| variant | " + " | ".join(str(s) for s in seqs) + " |",
                "|" + "---|" * (1 + len(seqs))]
        for v in variants:
            out.append(f"| {v} | " + " | ".join(fmt(med.get((v, s, d, c)), 0) for s in seqs) + " |")
        out.append("")
    if errors:
        out += ["Benchmarks that stopped with an error:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="locality_bench JSON (--benchmark_out)")
    parser.add_argument("--readme", action="append", default=[],
                        help="rewrite the ladder section of this README (may be repeated)")
    parser.add_argument("--plots", metavar="DIR", help="write the family's plots (PNG) here")
    parser.add_argument("--profile", metavar="FILE",
                        help="cachegrind counts (bench/cachegrind.py) for the roofline's intensities")
    args = parser.parse_args()
    try:
        doc = load(args.results)
        which = family(doc)
        body = {"matmul": tables, "attention": attention_tables, "gpu": gpu_tables,
                "gpu_attention": gpu_attention_tables,
                "gpu_attention_bf16": lambda d: gpu_attention_tables(d, "gpu_attention_bf16"),
                "gpu_bf16": lambda d: gpu_tables(d, GPU_BF16, "gpu_bf16")}[which](doc)
        profile = load_profile(args.profile) if args.profile else None
        print(body)
        for readme in args.readme:
            update_readme(readme, body, which)
        if args.plots and which in ("matmul", "attention"):
            for path in write_plots(doc, which, args.plots, profile):
                print(f"report.py: wrote {path}", file=sys.stderr)
    except ReportError as e:
        print(f"report.py: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ladder as pictures, from the same result files as the tables.

Called by report.py (--plots DIR); needs matplotlib (Debian's
python3-matplotlib). For each family it writes:

  <family>_ladder.png    the rungs as bars (GFLOP/s, log scale), one panel per
                         thread count, the peers and the FMA peak (the best
                         FMA probe) as lines;
  <family>_sizes.png     GFLOP/s against size for every rung (1 thread), with
                         the sizes where the working set outgrows L1, L2, L3;
  <family>_roofline.png  the roofs (FMA peak; STREAM triad bandwidth of L2,
                         L3 and memory) and each rung at two arithmetic
                         intensities: FLOPs per byte moved into L1 and past
                         L2, from cachegrind's misses (bench/cachegrind.py);
                         written only when a profile is given.
"""

import math
import os
import re
import statistics

import matplotlib

from results import fma_peaks, fmt_bytes, headline_size

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

LINE_BYTES = 64
PEER_STYLES = {"onednn": "tab:red", "openblas": "tab:purple", "eigen": "tab:brown"}
STREAM = re.compile(r"^cpu/probe/stream/triad/(?P<size>\d{1,9})(?P<unit>KiB|MiB)/omp_threads:(?P<t>\d{1,9})")


def save(fig, path):
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)  # atomically, as every result file


def caches(ctx):
    """[(label, bytes)] for L1d, L2, L3 from Google Benchmark's context."""
    out = []
    for c in ctx.get("caches") or []:
        if not isinstance(c, dict) or c.get("type") == "Instruction":
            continue
        try:
            level, size = int(c["level"]), int(c["size"])
        except (KeyError, TypeError, ValueError):
            continue
        out.append((f"L{level}{'d' if level == 1 else ''}", size))
    return sorted(out, key=lambda x: x[1])


def stream_bandwidths(doc, threads=1):
    """{bytes per array: bytes/s} from the STREAM probe's repetitions (medians)."""
    samples = {}
    for b in doc["benchmarks"]:
        m = STREAM.match(b.get("name", ""))
        if not m or int(m["t"]) != threads or b.get("run_type") == "aggregate":
            continue
        value = b.get("bytes_per_second")
        if isinstance(value, (int, float)) and value > 0:
            size = int(m["size"]) << (10 if m["unit"] == "KiB" else 20)
            samples.setdefault(size, []).append(float(value))
    return {k: statistics.median(v) for k, v in samples.items()}


def fma_peak(doc, threads):
    """The FMA peak in GFLOP/s (results.fma_peaks: the best probe), or None."""
    best = fma_peaks(doc).get(threads)
    return best[0] / 1e9 if best else None


def ladder_bars(path, title, rungs, peers, med, key, threads, doc):
    fig, axes = plt.subplots(1, len(threads), figsize=(5.5 * len(threads), 4.2), squeeze=False)
    for ax, t in zip(axes[0], threads):
        values = [med.get(key(v, t)) for v in rungs]
        ax.bar(range(len(rungs)), [v or 0 for v in values], color="tab:blue")
        for i, v in enumerate(values):
            if v:
                ax.text(i, v * 1.08, f"{v:.0f}" if v >= 10 else f"{v:.1f}", ha="center",
                        fontsize=8)
        ax.set_xticks(range(len(rungs)))
        ax.set_xticklabels([f"{i}\n{v}" for i, v in enumerate(rungs)], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("GFLOP/s (log scale)")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        peak = fma_peak(doc, t)
        if peak:
            ax.axhline(peak, color="black", linestyle=":", label=f"FMA peak {peak:.0f}")
        for p in peers:
            g = med.get(key(p, t))
            if g:
                ax.axhline(g, color=PEER_STYLES.get(p, "gray"), linestyle="--",
                           label=f"{p} {g:.0f}")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylim(bottom=min([v for v in values if v] + [1.0]) / 2,
                    top=max([v for v in values if v] + [peak or 1]) * 3)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def sizes_plot(path, title, xlabel, series, crossings):
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for name, points, style in series:
        if points:
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, style, marker="o", markersize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("GFLOP/s, 1 thread (log scale)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    lo, hi = ax.get_xlim()
    for label, x in crossings:
        if lo <= x <= hi:
            ax.axvline(x, color="gray", linestyle=":")
            ax.text(x, ax.get_ylim()[0], f" {label} ", rotation=90, va="bottom", ha="right",
                    fontsize=7, color="dimgray", backgroundcolor="white")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title, fontsize=10)
    save(fig, path)


# How a rung's point at each level is drawn: marker, filled, legend (the CPU
# ladders' cachegrind levels by default).
CACHEGRIND_LEVELS = {"L1": ("o", False, "rung: bytes into L1 (cachegrind D1 misses)"),
                     "L2": ("s", True, "rung: bytes past L2 (cachegrind LL misses)")}


def roofline(path, title, points, peak, roofs, peak_label="FMA peak", levels=CACHEGRIND_LEVELS,
             xlabel="arithmetic intensity: FLOPs per byte moved at that level (64 B per miss)",
             ylabel="GFLOP/s, 1 thread"):
    """points: [(rung, {level: intensity}, GFLOP/s)]; roofs: [(label, bytes/s)]."""
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [x for _, levels, _ in points for x in levels.values()] or [1.0]
    x_lo, x_hi = min(xs + [0.1]) / 3, max(xs + [100.0]) * 3
    grid = [x_lo * (x_hi / x_lo) ** (i / 200) for i in range(201)]
    if peak:
        ax.plot(grid, [peak] * len(grid), "k-", linewidth=1)
        ax.text(x_hi, peak * 1.06, f"{peak_label} {peak:.0f} GFLOP/s", ha="right", fontsize=8)
    for (label, bw), style in zip(roofs, (":", "-.", "--")):
        ys = [min(bw * x / 1e9, peak or math.inf) for x in grid]
        ax.plot(grid, ys, "k" + style, linewidth=1, label=f"{label}: {bw / 1e9:.0f} GB/s")
    for i, (name, at, y) in enumerate(points):
        color = f"C{i}"
        ordered = sorted(at.items())
        if len(ordered) > 1:
            ax.plot([x for _, x in ordered], [y] * len(ordered), "-", color=color, linewidth=0.8)
        for level, x in ordered:
            marker, filled, _ = levels.get(level, ("o", False, ""))
            ax.plot([x], [y], marker, color=color, fillstyle="full" if filled else "none")
        x_label = min(x for _, x in ordered)
        # Rungs often share a speed: alternate the labels above and below.
        ax.annotate(name, (x_label, y), textcoords="offset points",
                    xytext=(-6, 5 if i % 2 == 0 else -11), ha="right", fontsize=8, color=color)
    for marker, filled, label in levels.values():
        ax.plot([], [], "k" + marker, fillstyle="full" if filled else "none", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    save(fig, path)


def profile_rows(profile, family, size):
    if not profile:
        return {}
    return {r["variant"]: r for r in profile.get("profiles", [])
            if r.get("family") == family and r.get("size") == size}


def roof_list(doc):
    names = {256 << 10: "L2", 8 << 20: "L3", 128 << 20: "memory"}
    return [(f"{names.get(size, fmt_bytes(size, 0))} (STREAM triad, 3 x {fmt_bytes(size, 0)})", bw)
            for size, bw in sorted(stream_bandwidths(doc).items())]


def intensity_points(rungs, med_at, rows, flops):
    """[(rung, {"L1": FLOPs/byte into L1, "L2": FLOPs/byte past L2}, GFLOP/s)]."""
    points = []
    for v in rungs:
        g, row = med_at(v), rows.get(v)
        if g is None or row is None:
            continue
        d1, ll = row["D1mr"] + row["D1mw"], row["DLmr"] + row["DLmw"]
        points.append((v, {"L1": flops / (max(d1, 1) * LINE_BYTES),
                           "L2": flops / (max(ll, 1) * LINE_BYTES)}, g))
    return points


def matmul_plots(doc, outdir, med, rungs, peers, threads, profile=None):
    ctx = doc["context"]
    written = []
    n0 = headline_size(1024, sorted({k[1] for k in med if all(any(j[0] == r and j[1] == k[1]
                                                                  for j in med) for r in rungs)}))
    path = os.path.join(outdir, "matmul_ladder.png")
    ladder_bars(path, f"The matmul ladder at n = {n0} (float32), {ctx.get('cpu_model', '')}",
                [r for r in rungs if any(k[0] == r and k[1] == n0 for k in med)], peers, med,
                lambda v, t: (v, n0, t), threads, doc)
    written.append(path)

    crossings = [(f"3n² floats = {label} ({fmt_bytes(size, 0)})", math.sqrt(size / 12))
                 for label, size in caches(ctx)]
    series = [(v, [(n, g) for (w, n, t), g in med.items() if w == v and t == 1],
               "-" if v in rungs else "--") for v in rungs + peers]
    path = os.path.join(outdir, "matmul_sizes.png")
    sizes_plot(path, "GFLOP/s against n: where the working set leaves each cache", "n (square)",
               series, crossings)
    written.append(path)

    n1 = 512
    rows = profile_rows(profile, "matmul", f"{n1}x{n1}x{n1}")
    if rows:
        path = os.path.join(outdir, "matmul_roofline.png")
        roofline(path, f"Roofline, matmul n = {n1}, 1 thread: each rung at two cache levels",
                 intensity_points(rungs, lambda v: med.get((v, n1, 1)), rows, 2 * n1 ** 3),
                 fma_peak(doc, 1), roof_list(doc))
        written.append(path)
    return written


def attention_plots(doc, outdir, med, rungs, peers, threads, profile=None):
    ctx = doc["context"]
    written = []
    d0 = 64 if any(k[2] == 64 for k in med) else min((k[2] for k in med), default=64)
    s0 = headline_size(1024, sorted({k[1] for k in med if k[2] == d0 and all(
        any(j[0] == r and j[1] == k[1] and j[2] == d0 for j in med) for r in rungs)}))
    path = os.path.join(outdir, "attention_ladder.png")
    ladder_bars(path, f"The attention ladder at seq {s0}, head_dim {d0} (float32), "
                f"{ctx.get('cpu_model', '')}",
                [r for r in rungs if any(k[0] == r and k[1] == s0 and k[2] == d0 for k in med)],
                peers, med, lambda v, t: (v, s0, d0, 0, t), threads, doc)
    written.append(path)

    crossings = [(f"seq² scores = {label} ({fmt_bytes(size, 0)})", math.sqrt(size / 4))
                 for label, size in caches(ctx)]
    series = [(v, [(s, g) for (w, s, d, c, t), g in med.items()
                   if w == v and d == d0 and c == 0 and t == 1],
               "-" if v in rungs else "--") for v in rungs + peers]
    path = os.path.join(outdir, "attention_sizes.png")
    sizes_plot(path, f"GFLOP/s against seq (head_dim {d0}): the score matrix outgrows the caches",
               "seq", series, crossings)
    written.append(path)

    rows = profile_rows(profile, "attention", f"1x1x{s0}x{s0}x{d0}")
    if rows:
        path = os.path.join(outdir, "attention_roofline.png")
        roofline(path, f"Roofline, attention seq {s0}, head_dim {d0}, 1 thread: each rung at two "
                 "cache levels",
                 intensity_points(rungs, lambda v: med.get((v, s0, d0, 0, 1)), rows,
                                  4 * s0 * s0 * d0),
                 fma_peak(doc, 1), roof_list(doc))
        written.append(path)
    return written

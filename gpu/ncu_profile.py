#!/usr/bin/env python3
"""The GPU ladders under Nsight Compute: each rung's memory traffic and
pipe use, measured, beside its speed (what bench/cachegrind.py is for the
CPU ladders).

    python3 gpu/ncu_profile.py --locality .gpu-carry/bin/locality --out OUTDIR/gpu_profile.json \
        [--skip FAMILY/VARIANT,...] [--case-timeout SECONDS]
    python3 gpu/ncu_profile.py --table results/<gpu>/gpu_profile.json [--readme README.md] \
        [--plot results/<gpu>/gpu_roofline.png]

The first runs on the GPU machine (gpu/run_on_device.sh calls it): every
GPU rung that `locality list` names, once per shape (both matmul ladders at
2048 and 4096; attention at seq 4096, head_dim 64, batch 1 x 4 heads), each as its
own process, `locality run <family> <rung> --device gpu --repeat 1
--no-verify`, so the launches ncu sees are the rung's alone (the L2 flush
before the call is a memset, not a kernel). ncu replays each launch for a
fixed set of metrics (METRICS) with its caches flushed before each replay
and the clocks left alone; the counts of a rung's launches are summed, and
its rates averaged over them by the count they are rates of. Metrics this
ncu does not know (`ncu --query-metrics`) are left out and named in the
context, with the ncu version and the device. A rung whose profile fails
is named with the reason; the others go on. One that runs past
--case-timeout seconds (120) is stopped, its program with it; --skip
leaves rungs out (those whose tests failed or hung) and names them.

The second prints the tables "Reading the GPU ladders" from such a file,
writes them between a page's <!-- gpu-profile:begin/end --> markers, and
draws the roofline: each rung at its measured FLOPs per DRAM byte and per
L2 byte, under the roofs ncu reports for the device (its peak sustained
rates at the clocks of the run: specified, not measured by a benchmark).
Exit status 2 with one line for bad input; 1 when some rung's profile failed.
"""

import argparse
import csv
import datetime
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import results  # noqa: E402

# key: (ncu metric, how launches combine: "sum", or the key whose count
# weights a rate's average).
METRICS = {
    "duration_ns": ("gpu__time_duration.sum", "sum"),
    "dram_read_bytes": ("dram__bytes_read.sum", "sum"),
    "dram_write_bytes": ("dram__bytes_write.sum", "sum"),
    "l2_bytes": ("lts__t_bytes.sum", "sum"),
    "l2_hit_pct": ("lts__t_sector_hit_rate.pct", "l2_bytes"),
    "l1_bytes": ("l1tex__t_bytes.sum", "sum"),
    "shared_wavefronts": ("l1tex__data_pipe_lsu_wavefronts_mem_shared.sum", "sum"),
    "shared_conflicts_ld": ("l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum", "sum"),
    "shared_conflicts_st": ("l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum", "sum"),
    "global_ld_sectors": ("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum", "sum"),
    "global_ld_requests": ("l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum", "sum"),
    "global_st_sectors": ("l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum", "sum"),
    "global_st_requests": ("l1tex__t_requests_pipe_lsu_mem_global_op_st.sum", "sum"),
    "instructions": ("smsp__inst_executed.sum", "sum"),
    "ffma_thread_inst": ("smsp__sass_thread_inst_executed_op_ffma_pred_on.sum", "sum"),
    "occupancy_pct": ("sm__warps_active.avg.pct_of_peak_sustained_active", "duration_ns"),
    "fma_pipe_pct": ("sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active",
                     "duration_ns"),
    "tensor_pipe_pct": ("sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
                        "duration_ns"),
    # Cycles a warp waited, per instruction issued, by reason.
    "stall_long_scoreboard": (
        "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio", "instructions"),
    "stall_barrier": ("smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
                      "instructions"),
    "stall_short_scoreboard": (
        "smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio",
        "instructions"),
    "stall_mio_throttle": ("smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio",
                           "instructions"),
    "stall_math_throttle": (
        "smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio",
        "instructions"),
    # The device's roofs, as ncu's roofline section computes them.
    "dram_peak_bytes_per_cycle": ("dram__bytes.sum.peak_sustained", "duration_ns"),
    "dram_cycles_per_second": ("dram__cycles_elapsed.avg.per_second", "duration_ns"),
    "l2_peak_bytes_per_cycle": ("lts__t_bytes.sum.peak_sustained", "duration_ns"),
    "l2_cycles_per_second": ("lts__cycles_elapsed.avg.per_second", "duration_ns"),
    "ffma_peak_per_cycle": ("sm__sass_thread_inst_executed_op_ffma_pred_on.sum.peak_sustained",
                            "duration_ns"),
    "sm_cycles_per_second": ("sm__cycles_elapsed.avg.per_second", "duration_ns"),
}
# (family, size label, FLOPs, the locality arguments)
CASES = [(family, str(n), 2 * n ** 3, ["--size", str(n)])
         for family in ("matmul", "matmul_bf16") for n in (2048, 4096)] + [
    ("attention", "1x4x4096x4096x64", 4 * 4 * 4096 * 4096 * 64,
     ["--batch", "1", "--heads", "4", "--seq", "4096", "--head-dim", "64"]),
    ("attention_bf16", "1x16x4096x4096x128", 4 * 16 * 4096 * 4096 * 128,
     ["--batch", "1", "--heads", "16", "--seq", "4096", "--head-dim", "128"])]


class ProfileError(Exception):
    pass


def gpu_rungs(binary):
    """[(family, rung, variant)] of the GPU ladders, from `locality list`."""
    try:
        out = subprocess.run([binary, "list"], capture_output=True, text=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ProfileError(f"cannot run {binary} list: {e}")
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split()  # family, rung, variant, device, lesson
        if len(parts) >= 4 and parts[1].isdigit() and parts[3] == "gpu":
            found.append((parts[0], int(parts[1]), parts[2]))
    return found


def known_metrics(ncu):
    """The base names `ncu --query-metrics` lists for this device."""
    try:
        out = subprocess.run([ncu, "--query-metrics"], capture_output=True, text=True,
                             check=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ProfileError(f"cannot run {ncu} --query-metrics: {e}")
    return {line.split()[0] for line in out.splitlines() if re.match(r"^[a-z0-9]+__\w+", line)}


def number(text):
    text = text.replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def parse_raw(text, wanted):
    """[(kernel name, {metric: value})] from `ncu --import R --csv --page raw`:
    a header row, a units row, then a row per launch."""
    rows = list(csv.reader(io.StringIO(text)))
    start = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if start is None:
        raise ProfileError("ncu's raw page has no Kernel Name column")
    header = rows[start]
    launches = []
    for r in rows[start + 1:]:
        if len(r) != len(header) or not r[header.index("ID")].strip().isdigit():
            continue  # the units row, or a line that is not a launch
        values = {}
        for m in wanted:
            if m in header:
                x = number(r[header.index(m)])
                if x is not None:
                    values[m] = x
        launches.append((r[header.index("Kernel Name")], values))
    return launches


def combine(launches, metrics):
    """The rung's numbers: counts summed over its launches, rates averaged
    with the weights METRICS names."""
    out = {}
    by_key = [{key: v.get(name) for key, (name, _) in metrics.items()} for _, v in launches]
    for key, (_, how) in metrics.items():
        if how == "sum":
            xs = [row[key] for row in by_key if row[key] is not None]
            if xs:
                out[key] = sum(xs)
    for key, (_, how) in metrics.items():
        if how == "sum":
            continue
        pairs = [(row[key], row.get(how) or 0.0) for row in by_key if row[key] is not None]
        total = sum(w for _, w in pairs)
        if pairs:
            out[key] = (sum(x * w for x, w in pairs) / total if total > 0
                        else sum(x for x, _ in pairs) / len(pairs))
    return out


def profile_case(ncu, binary, family, rung, variant, label, flops, extra, metrics, work,
                 timeout=120):
    args = ["run", family, variant, "--device", "gpu", "--repeat", "1", "--no-verify"] + extra
    report = os.path.join(work, f"{family}_{variant}_{label}")
    names = ",".join(name for name, _ in metrics.values())
    cmd = [ncu, "--metrics", names, "--clock-control", "none", "--cache-control", "all",
           "--export", report, "--force-overwrite", binary] + args
    # In a session of its own, so that a kernel that never finishes is
    # stopped with ncu: the whole group, not ncu alone with the program left
    # running on the GPU.
    r = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        stdout, stderr = r.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(r.pid, signal.SIGKILL)
        r.communicate()
        raise ProfileError(f"stopped after {timeout} s (a kernel that never finishes?)")
    if r.returncode != 0:
        tail = " ".join((stderr or stdout).strip().splitlines()[-2:])
        raise ProfileError(f"ncu exited {r.returncode}: {tail}")
    raw = subprocess.run([ncu, "--import", report + ".ncu-rep", "--csv", "--page", "raw",
                          "--print-units", "base"], capture_output=True, text=True, timeout=300)
    if raw.returncode != 0:
        raise ProfileError(f"ncu --import exited {raw.returncode}: {raw.stderr.strip()[:200]}")
    launches = parse_raw(raw.stdout, [name for name, _ in metrics.values()])
    if not launches:
        raise ProfileError("ncu profiled no kernel")
    kernels = []
    for name, _ in launches:
        short = re.sub(r"\(.*$", "", name).split("<")[0].split("::")[-1] or name
        if short not in kernels:
            kernels.append(short)
    return {"family": family, "rung": rung, "variant": variant, "size": label, "flops": flops,
            "launches": len(launches), "kernels": kernels,
            "command": "locality " + " ".join(args), "metrics": combine(launches, metrics)}


def git_commit():
    carried = os.path.join(ROOT, ".gpu-carry", "commit")
    if os.path.exists(carried):
        with open(carried, encoding="utf-8") as f:
            return f.read().strip()
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def load(path):
    try:
        doc = results.read_json(path)
    except results.ResultError as e:
        raise ProfileError(str(e))
    try:
        if not isinstance(doc["context"], dict):
            raise TypeError("context is not an object")
        for r in doc["profiles"]:
            for key in ("family", "variant", "size"):
                if not isinstance(r[key], str):
                    raise TypeError(f"{key} is not a string")
            if isinstance(r["flops"], bool) or not isinstance(r["flops"], (int, float)) \
                    or r["flops"] <= 0:
                raise TypeError("flops is not a positive number")
            for k, v in r["metrics"].items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise TypeError(f"metric {k} is not a non-negative number")
    except (KeyError, TypeError, AttributeError) as e:
        raise ProfileError(f"{path} is not a gpu/ncu_profile.py file ({e})")
    return doc


def derived(row):
    """What the tables show, from a row's metrics (None where one is missing)."""
    m, flops = row["metrics"], row["flops"]

    def ratio(a, b):
        return a / b if a is not None and b else None
    dram = (m["dram_read_bytes"] + m["dram_write_bytes"]
            if "dram_read_bytes" in m and "dram_write_bytes" in m else None)
    conflicts = (m["shared_conflicts_ld"] + m["shared_conflicts_st"]
                 if "shared_conflicts_ld" in m and "shared_conflicts_st" in m else None)
    return {
        "gflops": ratio(flops, m.get("duration_ns")),
        "dram_bytes": dram,
        "dram_bytes_per_flop": ratio(dram, flops),
        "flops_per_dram_byte": ratio(flops, dram),
        "flops_per_l2_byte": ratio(flops, m.get("l2_bytes")),
        "l2_bytes_per_flop": ratio(m.get("l2_bytes"), flops),
        "ld_sectors_per_request": ratio(m.get("global_ld_sectors"), m.get("global_ld_requests")),
        "st_sectors_per_request": ratio(m.get("global_st_sectors"), m.get("global_st_requests")),
        "conflicts_per_wavefront": ratio(conflicts, m.get("shared_wavefronts")),
    }


def roofs(doc):
    """(FP32 FLOP/s, DRAM bytes/s, L2 bytes/s): ncu's peak sustained rates at
    the clocks it saw, the median over the rows that have them."""
    def median_of(f):
        xs = sorted(x for x in (f(r["metrics"]) for r in doc["profiles"]) if x)
        return xs[len(xs) // 2] if xs else None

    def product(a, b, scale=1.0):
        return lambda m: m[a] * m[b] * scale if a in m and b in m else None
    return (median_of(product("ffma_peak_per_cycle", "sm_cycles_per_second", 2.0)),
            median_of(product("dram_peak_bytes_per_cycle", "dram_cycles_per_second")),
            median_of(product("l2_peak_bytes_per_cycle", "l2_cycles_per_second")))


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def pct(x):
    return "—" if x is None else f"{x:.0f}%"


def table(doc):
    ctx = doc["context"]
    flop_roof, dram_roof, l2_roof = roofs(doc)
    out = [f"Nsight Compute {ctx.get('ncu', '?')} on {ctx.get('device', '?')}, commit "
           f"{ctx.get('git_commit', '?')}, {ctx.get('date', '?')}: one call per rung, each launch "
           "replayed with the caches flushed first and the clocks left free; a rung's counts "
           "summed over its launches. Roofs from ncu's peak sustained rates: "
           f"{fmt(flop_roof and flop_roof / 1e12, '.1f')} TFLOP/s FP32, DRAM "
           f"{fmt(dram_roof and dram_roof / 1e12, '.2f')} TB/s, L2 "
           f"{fmt(l2_roof and l2_roof / 1e12, '.2f')} TB/s."
           + (f" Metrics this ncu lacks: {', '.join(ctx['missing_metrics'])}."
              if ctx.get("missing_metrics") else ""), ""]
    groups = []
    for row in doc["profiles"]:
        if (row["family"], row["size"]) not in groups:
            groups.append((row["family"], row["size"]))
    for family, size in groups:
        out += [f"GPU {family} {size}:", "",
                "| rung | variant | GFLOP/s (ncu) | DRAM bytes / FLOP | L2 bytes / FLOP | "
                "L2 hit | sectors / load request | sectors / store request | bank conflicts / "
                "shared wavefront | occupancy | FMA pipe | tensor pipe | stall: memory / barrier / "
                "shared (cycles per instruction) |", "|" + "---|" * 13]
        for row in doc["profiles"]:
            if (row["family"], row["size"]) != (family, size):
                continue
            d, m = derived(row), row["metrics"]
            stalls = " / ".join(fmt(m.get(k), ".1f") for k in
                                ("stall_long_scoreboard", "stall_barrier", "stall_mio_throttle"))
            out.append(
                f"| {row['rung']} | {row['variant']} | {fmt(d['gflops'], '.0f')} | "
                f"{fmt(d['dram_bytes_per_flop'], '.4f')} | {fmt(d['l2_bytes_per_flop'], '.4f')} | "
                f"{pct(m.get('l2_hit_pct'))} | {fmt(d['ld_sectors_per_request'], '.1f')} | "
                f"{fmt(d['st_sectors_per_request'], '.1f')} | "
                f"{fmt(d['conflicts_per_wavefront'], '.2f')} | "
                f"{pct(m.get('occupancy_pct'))} | {pct(m.get('fma_pipe_pct'))} | "
                f"{pct(m.get('tensor_pipe_pct'))} | "
                f"{stalls} |")
        out.append("")
    for key, title in (("failed", "Profiles that failed:"), ("not_profiled", "Not profiled:")):
        if ctx.get(key):
            out += [title, ""] + [f"- {f}" for f in ctx[key]] + [""]
    return "\n".join(out)


def plot(doc, path):
    try:
        import plots
    except ImportError as e:
        raise ProfileError(f"the plot needs matplotlib ({e.name} is missing for {sys.executable})")
    flop_roof, dram_roof, l2_roof = roofs(doc)
    points = []
    for row in doc["profiles"]:
        d = derived(row)
        levels = {k: v for k, v in (("DRAM", d["flops_per_dram_byte"]),
                                    ("L2", d["flops_per_l2_byte"])) if v}
        if levels and d["gflops"]:
            points.append((f"{row['family']} {row['variant']} {row['size']}", levels, d["gflops"]))
    if not points:
        raise ProfileError("no rung has the traffic and time a roofline needs")
    plots.roofline(path, f"GPU ladders on {doc['context'].get('device', '?')} (ncu)", points,
                   flop_roof and flop_roof / 1e9,
                   [(label, bw) for label, bw in (("DRAM", dram_roof), ("L2", l2_roof)) if bw],
                   peak_label="FP32 FMA peak (ncu)",
                   levels={"DRAM": ("s", True, "rung: FLOPs per byte of DRAM traffic"),
                           "L2": ("o", False, "rung: FLOPs per byte of L2 traffic")},
                   xlabel="arithmetic intensity: FLOPs per byte at that level (ncu)",
                   ylabel="GFLOP/s (ncu's kernel time, one call)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locality", default=os.path.join(ROOT, "build", "gpu", "bench",
                                                           "locality"))
    parser.add_argument("--ncu", default=shutil.which("ncu") or "ncu")
    parser.add_argument("--only", help="profile only variants whose name contains this")
    parser.add_argument("--skip", default="",
                        help="leave these out, family/variant words separated by commas "
                             "(rungs whose tests failed or hung)")
    parser.add_argument("--case-timeout", type=int, default=120,
                        help="stop one rung's profile of one shape after this many seconds")
    parser.add_argument("--out", help="write the profile here (JSON, atomically)")
    parser.add_argument("--table", metavar="FILE", help="print the tables of an earlier profile")
    parser.add_argument("--readme", action="append", default=[],
                        help="with --table: write them between this page's gpu-profile markers")
    parser.add_argument("--plot", metavar="PNG", help="with --table: draw the roofline here")
    args = parser.parse_args()
    try:
        if args.table:
            doc = load(args.table)
            body = table(doc)
            print(body)
            for readme in args.readme:
                results.update_readme(readme, body, "gpu_profile")
            if args.plot:
                plot(doc, args.plot)
            return 0
        if not args.out:
            raise ProfileError("give --out FILE (or --table FILE)")
        known = known_metrics(args.ncu)
        metrics = {k: v for k, v in METRICS.items() if v[0].split(".")[0] in known}
        missing = sorted(v[0] for v in METRICS.values() if v[0].split(".")[0] not in known)
        if args.case_timeout < 1:
            raise ProfileError("--case-timeout must be at least 1 second")
        skip = {w for w in args.skip.split(",") if w}
        ladder = [(f, r, v) for f, r, v in gpu_rungs(args.locality)
                  if (not args.only or args.only in v) and f"{f}/{v}" not in skip]
        cases = [(f, r, v, label, flops, extra) for f, r, v in ladder
                 for family, label, flops, extra in CASES if family == f]
        # A family `locality run` cannot run yet is named, not skipped in silence.
        unprofiled = [f"{f}/{v}: no profile case for the {f} family"
                      for f, r, v in ladder if f not in {c[0] for c in CASES}]
        unprofiled += [f"{w}: left out (--skip)" for w in sorted(skip)]
        if not cases:
            raise ProfileError(f"{args.locality} list names no GPU rung to profile")
        rows, failed = [], []
        with tempfile.TemporaryDirectory() as work:
            for family, rung, variant, label, flops, extra in cases:
                start = datetime.datetime.now()
                try:
                    rows.append(profile_case(args.ncu, args.locality, family, rung, variant,
                                             label, flops, extra, metrics, work,
                                             args.case_timeout))
                except (ProfileError, OSError, subprocess.SubprocessError) as e:
                    failed.append(f"{family}/{variant} {label}: {results.one_line(e)}")
                seconds = (datetime.datetime.now() - start).total_seconds()
                print(f"profile: {family}/{variant} {label}: {seconds:.0f} s", file=sys.stderr)
        version = subprocess.run([args.ncu, "--version"], capture_output=True, text=True)
        device = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True) if shutil.which("nvidia-smi") \
            else None
        doc = {"context": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "ncu": (version.stdout.strip().splitlines() or ["?"])[-1],
            "device": device.stdout.strip() if device and device.returncode == 0 else "?",
            "metrics": {k: v[0] for k, v in metrics.items()},
            "missing_metrics": missing, "failed": failed, "not_profiled": unprofiled},
            "profiles": rows}
        print(table(doc))
        results.write_atomically(args.out, json.dumps(doc, indent=1) + "\n")
        return 1 if failed else 0
    except (ProfileError, results.ResultError) as e:
        print(f"ncu_profile.py: {results.one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

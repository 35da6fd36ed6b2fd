#!/usr/bin/env python3
"""What the result scripts (report.py, compare.py, cachegrind.py, plots.py)
share: the one JSON reader, atomic writes, the generated sections of the
README and docs pages, one-line errors, byte counts for people. A module of
its own, so that the scripts import it and never each other in a circle."""

import itertools
import json
import math
import os
import re
import sys
import tempfile

MARKERS = {"matmul": ("<!-- cpu-matmul-ladder:begin -->", "<!-- cpu-matmul-ladder:end -->"),
           "attention": ("<!-- cpu-attention-ladder:begin -->",
                         "<!-- cpu-attention-ladder:end -->"),
           "cachegrind": ("<!-- cachegrind:begin -->", "<!-- cachegrind:end -->"),
           "gpu": ("<!-- gpu-matmul-ladder:begin -->", "<!-- gpu-matmul-ladder:end -->"),
           "gpu_attention": ("<!-- gpu-attention-ladder:begin -->",
                             "<!-- gpu-attention-ladder:end -->"),
           "gpu_bf16": ("<!-- gpu-matmul-bf16-ladder:begin -->",
                        "<!-- gpu-matmul-bf16-ladder:end -->"),
           "gpu_attention_bf16": ("<!-- gpu-attention-bf16-ladder:begin -->",
                                  "<!-- gpu-attention-bf16-ladder:end -->"),
           "gpu_profile": ("<!-- gpu-profile:begin -->", "<!-- gpu-profile:end -->")}
# The front page's short form of a ladder's tables (headline()), where a page
# holds these markers instead of (or beside) the full ones.
HEADLINE_MARKERS = {which: (begin.replace("-ladder:", "-headline:"),
                            end.replace("-ladder:", "-headline:"))
                    for which, (begin, end) in MARKERS.items()
                    if which not in ("cachegrind", "gpu_profile")}


class ResultError(Exception):
    """Bad input: the scripts print it as one line and exit 2."""


def one_line(message):
    """An error message as the one line the scripts promise: any newline or
    other control character from the input it quotes is escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


MAX_DEPTH = 64           # result files nest 4 deep; deeper is not one of ours
MAX_INT_DIGITS = 19      # every count we write fits in 64 bits


def _whole(digits):
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ResultError(f"an integer of {len(digits.lstrip('-'))} digits, more than a "
                          "64-bit count holds")
    return int(digits)


def _real(digits):
    x = float(digits)
    if not math.isfinite(x):
        raise ResultError(f"the number {digits[:20]} does not fit a float")
    return x


def read_text(path, consequence):
    """The UTF-8 text of a file, or ResultError: unreadable, or not UTF-8
    (`consequence` says what that means here)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ResultError(f"cannot read {path}: {e.strerror}")
    except UnicodeDecodeError as e:
        raise ResultError(f"{path} is not UTF-8 text (byte {e.start}): {consequence}")


def read_json(path):
    """The JSON document in `path`, or ResultError in one line: unreadable,
    empty, not UTF-8, not JSON (truncated?), nested deeper than MAX_DEPTH,
    or holding a number no result file holds. The one JSON reader of the
    result scripts (report.py, compare.py, cachegrind.py)."""
    text = read_text(path, "not a result file")
    if not text.strip():
        raise ResultError(f"{path} is empty")
    # Depth first, without recursion (the parser would recurse into it): the
    # brackets outside strings, counted.
    skeleton = re.sub(r"[^\[\]{}]", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))
    deepest = max(itertools.accumulate(1 if c in "[{" else -1 for c in skeleton), default=0)
    if deepest > MAX_DEPTH:
        raise ResultError(f"{path} nests {deepest} levels deep (a result file nests a few): "
                          "not a result file")
    try:
        return json.loads(text, parse_int=_whole, parse_float=_real)
    except ResultError as e:
        raise ResultError(f"{path}: {e}")
    except json.JSONDecodeError as e:
        raise ResultError(f"{path} is not valid JSON (truncated?): {e.msg} at line {e.lineno}")
    except (ValueError, RecursionError) as e:
        raise ResultError(f"{path} cannot be read as JSON ({type(e).__name__})")


def number(value, what):
    """A finite, non-negative number from a counter or context value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ResultError(f"{what} is not a number: {type(value).__name__}")
    try:
        x = float(value)
    except (ValueError, OverflowError):
        raise ResultError(f"{what} is not a number: {str(value)[:40]!r}")
    if not math.isfinite(x) or x < 0:
        raise ResultError(f"{what} must be finite and non-negative, got {str(value)[:40]!r}")
    return x


FMA_CONTEXT = re.compile(r"^fma_peak_flops_omp_threads_(?P<t>\d{1,9})$")
FMA_PROBE = re.compile(r"^cpu/probe/fma/omp_threads:(?P<t>\d{1,9})(?:/real_time)?$")


def fma_peaks(doc):
    """{threads: (best, lowest)} FLOP/s over every measurement of the FMA
    probe in a result file: the one each run takes at its start (the
    context's fma_peak_flops_omp_threads_<t>) and the cpu/probe/fma rows.
    A probe can only fall short of what the FMA units do (a neighbour on the
    core, a lower clock), so the best is the peak the tables' "% of FMA
    peak" divides by; the lowest says how far the machine strayed."""
    samples = {}
    for key, value in doc["context"].items():
        m = FMA_CONTEXT.fullmatch(key)
        if m:
            samples.setdefault(int(m["t"]), []).append(number(value, key))
    for b in doc["benchmarks"]:
        name = b.get("run_name") or b.get("name", "")
        m = FMA_PROBE.fullmatch(str(name))
        if m and "flops" in b and b.get("run_type") != "aggregate" and not b.get("error_occurred"):
            samples.setdefault(int(m["t"]), []).append(number(b["flops"], f"{name} flops"))
    return {t: (max(v), min(v)) for t, v in samples.items() if max(v) > 0}


def headline_size(wanted, complete):
    """The size a headline table or plot shows: `wanted` where every rung ran
    at it, else the largest size where they all did (a --quick run)."""
    if wanted in complete or not complete:
        return wanted
    return max(complete)


def fmt_bytes(x, digits=1):
    """A byte count for people: 1.5 MiB (digits after the point), or — for none."""
    if x is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if x >= size:
            return f"{x / size:.{digits}f} {unit}"
    return f"{x:.0f} B"


def write_atomically(path, text):
    """Temporary file in the same folder, then rename: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def headline(body):
    """The first three paragraphs of a ladder's tables: the line saying what
    was measured, the title of the first table, and that table."""
    return "\n\n".join(body.split("\n\n")[:3])


def update_readme(readme, body, which):
    """Writes `body` between the family's markers in `readme`, and its
    headline() between the family's headline markers; the page must hold at
    least one of the two pairs, each at most once."""
    text = read_text(readme, "its tables were not written")
    pairs = [(MARKERS[which], body)]
    if which in HEADLINE_MARKERS:
        pairs.append((HEADLINE_MARKERS[which], headline(body)))
    written = 0
    for (begin, end), content in pairs:
        if text.count(begin) == 0 and text.count(end) == 0:
            continue
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise ResultError(f"{readme} needs exactly one {begin} ... {end} pair")
        before, rest = text.split(begin)
        _, after = rest.split(end)
        text = before + begin + "\n" + content + "\n" + end + after
        written += 1
    if not written:
        begin, end = MARKERS[which]
        raise ResultError(f"{readme} needs exactly one {begin} ... {end} pair")
    write_atomically(readme, text)


def combine_turns(docs):
    """One Google Benchmark document from runs that took turns (bench/run.sh:
    a repetition of a whole ladder, and again; then, for matmul, the
    call-by-call pairs): the context of the first with what the later ones add,
    except the FMA probe, which keeps the best of the runs' (fma_peaks), and
    every repetition of every run, numbered again per benchmark, so that
    repetition r of every benchmark comes from turn r. Aggregates are left
    out; the report and compare.py recompute what they need."""
    context, rows, count = {}, [], {}
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("context"), dict) \
                or not isinstance(doc.get("benchmarks"), list):
            raise ResultError("not a Google Benchmark result (no context and benchmarks)")
        for key, value in doc["context"].items():
            if FMA_CONTEXT.fullmatch(key) and key in context:
                if number(value, key) > number(context[key], key):
                    context[key] = value
            else:
                context.setdefault(key, value)
        for b in doc["benchmarks"]:
            if not isinstance(b, dict):
                raise ResultError("a benchmark entry is not an object")
            if b.get("run_type") == "aggregate":
                continue
            name = str(b.get("name"))
            rows.append(dict(b, repetition_index=count.get(name, 0)))
            count[name] = count.get(name, 0) + 1
    for b in rows:
        b["repetitions"] = count[str(b.get("name"))]
    context["locality_turns"] = (f"{len(docs)} runs combined, taking turns "
                                 "(bench/run.sh: a repetition of the ladder in each)")
    return {"context": context, "benchmarks": rows}


def main(argv):
    """`results.py combine OUT RUN...`: OUT, atomically, from runs that took
    turns (combine_turns). Exit 2 with one line for bad input."""
    try:
        if len(argv) < 3 or argv[0] != "combine":
            raise ResultError("usage: results.py combine OUT RUN...")
        doc = combine_turns([read_json(path) for path in argv[2:]])
        write_atomically(argv[1], json.dumps(doc, indent=2) + "\n")
        return 0
    except ResultError as e:
        print(f"results.py: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

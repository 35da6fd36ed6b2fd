#!/usr/bin/env python3
"""Mutation fuzzer for the result-file readers (bench/report.py, compare.py,
cachegrind.py).

libFuzzer drives C++; the readers are Python, so this does the same job by
hand: start from the committed result files (benchmark JSON and cachegrind
profiles), mutate them (bytes flipped, cut short, JSON values swapped for
other types, keys dropped, lists emptied or repeated; values nested
thousands deep, integers of thousands of digits or beyond a float, numbers
like 1e999 and NaN, sizes in names no benchmark has; the file in UTF-16 or
Latin-1), and feed each mutant through every reader that takes such a file.
Each mutant must either be read or be refused with the reader's own error
(one line, exit 2 from the command); any other exception is a finding. A
finding is saved and the run fails, printing the seed that replays it:

    python3 tests/fuzz/report_fuzz.py --seconds 20
    python3 tests/fuzz/report_fuzz.py --seed 1234 --runs 1   # replay one

Findings are kept as regression cases in tests/report_test.py.
"""

import argparse
import copy
import glob
import json
import os
import random
import re
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import cachegrind  # noqa: E402
import compare  # noqa: E402
import report  # noqa: E402

ODD_VALUES = [None, True, 0, -1, 1e308, float("nan"), float("inf"), "", "x", "1e3", [], {},
              [1, 2], {"a": 1}, "cpu/matmul/naive/1x1x1/omp_threads:1",
              "cpu/attention/flash/1x1x8x8x4/causal:0/omp_threads:1", 2 ** 70]


def check_message(e):
    """A refusal is one line as printed (report.one_line), and says something."""
    if not str(e) or "\n" in report.one_line(e):
        raise AssertionError(f"{type(e).__name__} message is not one line: {e!r}")


def run_reader(data, readme_dir, profile):
    """What the scripts do with a file whose bytes are `data`: report.py FILE
    --readme README, compare.py's readers, and for a profile cachegrind.py
    --table and compare.py cachegrind's reader."""
    path = os.path.join(readme_dir, "result.json")
    with open(path, "wb") as f:
        f.write(data)
    readme = os.path.join(readme_dir, "README.md")
    with open(readme, "w", encoding="utf-8") as f:
        for begin, end in report.MARKERS.values():
            f.write(f"{begin}\n{end}\n")
    def report_file():
        doc = report.load(path)
        which = report.family(doc)
        body = {"matmul": report.tables, "attention": report.attention_tables,
                "gpu": report.gpu_tables}[which](doc)
        report.update_readme(readme, body, which)

    readers = [(lambda: cachegrind.table(cachegrind.load(path)), cachegrind.ProfileError),
               (lambda: compare.load_cachegrind(path), compare.CompareError)] if profile else \
        [(report_file, report.ReportError), (lambda: compare.load_timings(path), compare.CompareError)]
    for read, refusal in readers:
        try:
            read()
        except refusal as e:
            check_message(e)


def mutate_numbers(text, rng):
    """Text-level shapes no JSON value swap makes: deep nesting, huge and
    non-finite numbers, sizes in names that no benchmark has."""
    numbers = [m.span() for m in re.finditer(r"(?<![\w.\"-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)]
    if not numbers:
        return text
    start, end = rng.choice(numbers)
    action = rng.randrange(4)
    if action == 0:
        depth = rng.choice([70, 1000, 5000, 20000])
        new = "[" * depth + text[start:end] + "]" * depth
    elif action == 1:
        new = rng.choice(["-", ""]) + "9" * rng.choice([19, 20, 400, 4301, 6000])
    elif action == 2:
        new = rng.choice(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1e-400"])
    else:
        return re.sub(r"/\d+x", "/" + "9" * rng.choice([10, 400, 5000]) + "x", text, count=1)
    return text[:start] + new + text[end:]


def encode(text, rng):
    """The file's bytes: UTF-8 mostly, sometimes another encoding."""
    choice = rng.randrange(10)
    if choice == 0:
        return text.encode("utf-16", errors="surrogatepass")
    if choice == 1:
        return text.replace("naive", "na\u00efve").encode("latin-1", errors="replace")
    if choice == 2:
        return b"\xef\xbb\xbf" + text.encode("utf-8", errors="surrogateescape")
    return text.encode("utf-8", errors="surrogateescape")


def walk(node, path=()):
    """Every (path, value) in a JSON tree."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def mutate_tree(doc, rng):
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 4)):
        nodes = list(walk(doc))
        path, _ = rng.choice(nodes)
        if not path:
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        key = path[-1]
        action = rng.randrange(5)
        if action == 0:
            # A copy: the shared [] and {} would otherwise be mutated by later
            # steps, through every tree that holds them, until one holds itself.
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif action == 1 and isinstance(parent, dict):
            del parent[key]
        elif action == 2 and isinstance(parent[key], list):
            parent[key] = parent[key][: rng.randint(0, 2)] * rng.randint(0, 3)
        elif action == 3 and isinstance(parent[key], str):
            s = parent[key]
            i = rng.randint(0, len(s))
            parent[key] = s[:i] + rng.choice(["0", "x", "/", ":", "-1", "99999999999"]) + s[i:]
        elif action == 4 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([0, -parent[key], parent[key] * 1e300, float("nan")])
    return json.dumps(doc, allow_nan=True)


def mutate_bytes(text, rng):
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        i = rng.randrange(len(data))
        choice = rng.randrange(3)
        if choice == 0:
            data[i] = rng.randrange(256)
        elif choice == 1:
            del data[i:i + rng.randint(1, 64)]
        else:
            data = data[:i]  # cut short, as an interrupted write would
    return data.decode("utf-8", errors="surrogateescape")


def shrink_profiles(paths):
    """The committed cachegrind profiles (small already)."""
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs.append(json.load(f))
    return docs


def shrink_seed_docs(paths):
    """The committed results, each cut to a few benchmarks so mutants run fast."""
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        benches = doc["benchmarks"]
        keep = [b for b in benches if "/naive/" in b.get("name", "") or "/flash/" in b.get("name", "")]
        doc["benchmarks"] = (keep or benches)[:40]
        docs.append(doc)
    return docs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="time budget")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many mutants")
    parser.add_argument("--seed", type=int, help="first seed (default: from the clock)")
    parser.add_argument("--findings", default=os.path.join(tempfile.gettempdir(), "report_fuzz"),
                        help="where failing inputs are saved")
    args = parser.parse_args()

    seeds = sorted(glob.glob(os.path.join(ROOT, "results", "*", "cpu_*.json")) +
                   glob.glob(os.path.join(ROOT, "results", "*", "gpu_*.json")))
    profiles = sorted(glob.glob(os.path.join(ROOT, "results", "*", "cachegrind.json")))
    if not seeds or not profiles:
        print("report_fuzz: no results/*/cpu_*.json or cachegrind.json to start from",
              file=sys.stderr)
        return 2
    docs = [(d, False) for d in shrink_seed_docs(seeds)] + \
        [(d, True) for d in shrink_profiles(profiles)]
    first = args.seed if args.seed is not None else int(time.time() * 1000) % 2 ** 31
    start = time.monotonic()
    runs = 0
    with tempfile.TemporaryDirectory() as work:
        while True:
            if args.runs and runs >= args.runs:
                break
            if not args.runs and time.monotonic() - start > args.seconds:
                break
            seed = first + runs
            rng = random.Random(seed)
            doc, profile = rng.choice(docs)
            text = mutate_tree(doc, rng)
            if rng.random() < 0.4:
                text = mutate_numbers(text, rng)
            if rng.random() < 0.3:
                text = mutate_bytes(text, rng)
            data = encode(text, rng)
            try:
                run_reader(data, work, profile)
            except Exception:
                os.makedirs(args.findings, exist_ok=True)
                saved = os.path.join(args.findings, f"seed-{seed}.json")
                with open(saved, "wb") as f:
                    f.write(data)
                traceback.print_exc()
                print(f"report_fuzz: finding at seed {seed} (input saved to {saved}); replay with "
                      f"--seed {seed} --runs 1", file=sys.stderr)
                return 1
            runs += 1
    print(f"report_fuzz: {runs} mutants from seed {first}, every one read or refused cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())

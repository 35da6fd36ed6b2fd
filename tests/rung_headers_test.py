#!/usr/bin/env python3
"""The house rules for rung files, on every ladder: each rung is one file,
<number>_<name>, listed under that number and name in its ladder's registry
(and nothing listed there lacks its file); each file opens with a header
that names the rung and says Idea, Locality, Cost and Edges, in that order,
in a dozen to thirty lines, with no measured speed in it (speeds live in
results/ and the ladder's page under docs/)."""

import glob
import os
import re
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LADDERS = {  # folder: the rung files' extension
    "cpu/matmul": ".cpp",
    "cpu/attention": ".cpp",
    "gpu/matmul": ".cu",
    "gpu/attention": ".cu",
    "gpu/matmul_bf16": ".cu",
    "gpu/attention_bf16": ".cu",
}
LABELS = ("Idea:", "Locality:", "Cost:", "Edges:")
MIN_LINES, MAX_LINES = 10, 30
# A speed or a ratio to a peer measured somewhere: what results files hold.
MEASURED = re.compile(r"\d\s*(?:[GT]FLOP/s|GB/s|TB/s|ms\b|us\b|µs)|\d\.\d+x\b", re.I)
REGISTRY_LINE = re.compile(r"\b[A-Z]+\((\d+),\s*(\w+),")
RUNG_FILE = re.compile(r"(\d+)_(\w+)$")


def header(path):
    """The comment lines a file opens with, without their `//`."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("//"):
                break
            lines.append(line[2:].strip())
    return lines


def rung_files(folder, ext):
    """{(number, name): path} of the ladder's rung files."""
    found = {}
    for path in glob.glob(os.path.join(ROOT, folder, "[0-9]*_*" + ext)):
        m = RUNG_FILE.match(os.path.basename(path)[: -len(ext)])
        if m:
            found[(int(m.group(1)), m.group(2))] = path
    return found


def registered(folder, ext):
    """{(number, name)} the ladder's registry lists."""
    with open(os.path.join(ROOT, folder, "registry" + ext), encoding="utf-8") as f:
        return {(int(n), name) for n, name in REGISTRY_LINE.findall(f.read())}


class RungHeaders(unittest.TestCase):
    def test_every_rung_file_is_registered_and_every_registered_rung_has_its_file(self):
        for folder, ext in LADDERS.items():
            with self.subTest(ladder=folder):
                files = set(rung_files(folder, ext))
                listed = registered(folder, ext)
                self.assertTrue(listed, f"{folder}: no rungs found in its registry")
                self.assertEqual(files - listed, set(), f"{folder}: rung files not registered")
                self.assertEqual(listed - files, set(), f"{folder}: registered without a file")

    def test_every_header_names_its_rung_and_says_idea_locality_cost_edges(self):
        for folder, ext in LADDERS.items():
            for (number, _), path in sorted(rung_files(folder, ext).items()):
                rel = os.path.relpath(path, ROOT)
                with self.subTest(rung=rel):
                    lines = header(path)
                    self.assertTrue(lines and re.search(rf"\brung {number} --", lines[0], re.I),
                                    f"{rel}: the first line should name rung {number}")
                    self.assertGreaterEqual(len(lines), MIN_LINES, f"{rel}: header too short")
                    self.assertLessEqual(len(lines), MAX_LINES, f"{rel}: header over 30 lines")
                    at = [next((i for i, l in enumerate(lines) if l.startswith(label)), -1)
                          for label in LABELS]
                    for label, i in zip(LABELS, at):
                        self.assertGreaterEqual(i, 0, f"{rel}: no '{label}' paragraph")
                    self.assertEqual(at, sorted(at), f"{rel}: {', '.join(LABELS)} out of order")
                    for line in lines:
                        self.assertIsNone(MEASURED.search(line),
                                          f"{rel}: a measured figure in the header: {line!r}")

    def test_a_header_that_breaks_the_rules_is_caught(self):
        self.assertIsNotNone(MEASURED.search("reaches 47.0 TFLOP/s here"))
        self.assertIsNotNone(MEASURED.search("0.91x cuBLAS"))
        self.assertIsNone(MEASURED.search("a 128 x 256 block, 16 x 8 per thread"))
        self.assertEqual(REGISTRY_LINE.findall('  RUNG(6, pipelined,   \\\n'), [("6", "pipelined")])


if __name__ == "__main__":
    sys.exit(unittest.main())

#!/usr/bin/env python3
"""Every link between the project's pages lands: in README.md, docs/*.md and
each machine's report (results/*/README.md), a relative link or image names
a file that exists, and a #fragment names a heading of the page it points
to, by GitHub's rule for heading anchors. Links to other sites are not
followed (the tests run offline)."""

import glob
import tempfile
import os
import re
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation but hyphens and
    underscores dropped, each space a hyphen."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text):
    """Every anchor a page offers; a repeated heading gets -1, -2, ... as on GitHub."""
    seen, out = {}, set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = anchor(heading)
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def pages(root):
    found = [os.path.join(root, "README.md")]
    found += sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    found += sorted(glob.glob(os.path.join(root, "results", "*", "README.md")))
    return [p for p in found if os.path.isfile(p)]


def broken_links(root):
    """(page, link, why) for each link that does not land."""
    cache, broken = {}, []

    def page_anchors(path):
        if path not in cache:
            with open(path, encoding="utf-8") as f:
                cache[path] = anchors(f.read())
        return cache[path]

    for page in pages(root):
        with open(page, encoding="utf-8") as f:
            text = INLINE_CODE.sub("", FENCE.sub("", f.read()))
        for target in LINK.findall(text):
            if SCHEME.match(target):
                continue
            path, _, fragment = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            rel = os.path.relpath(page, root)
            if not os.path.exists(dest):
                broken.append((rel, target, "no such file"))
            elif fragment and dest.endswith(".md") and fragment not in page_anchors(dest):
                broken.append((rel, target, "no such heading"))
    return broken


class AnchorRule(unittest.TestCase):
    def test_known_answers(self):
        self.assertEqual(anchor("Blocks from the caches"), "blocks-from-the-caches")
        self.assertEqual(anchor("The two commands, in full"), "the-two-commands-in-full")
        self.assertEqual(anchor("Rung 4 packed (`cpu/matmul/4_packed.cpp`)"),
                         "rung-4-packed-cpumatmul4_packedcpp")
        self.assertEqual(anchors("# A\n## A\n```\n# not a heading\n```\n## A\n"),
                         {"a", "a-1", "a-2"})


class DetectsBreakage(unittest.TestCase):
    """The check itself, on a small tree whose answer is known."""

    def test_finds_a_missing_file_and_a_missing_heading(self):
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "docs"))
            with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
                f.write("[ok](docs/a.md#the-part) [gone](docs/b.md) [bad](docs/a.md#nowhere)\n"
                        "[web](https://example.org/x) `[code](docs/c.md)` [self](#top)\n# Top\n")
            with open(os.path.join(root, "docs", "a.md"), "w", encoding="utf-8") as f:
                f.write("# A\n## The part\n![plot](../results/x/plot.png)\n")
            self.assertEqual(
                sorted(broken_links(root)),
                [("README.md", "docs/a.md#nowhere", "no such heading"),
                 ("README.md", "docs/b.md", "no such file"),
                 (os.path.join("docs", "a.md"), "../results/x/plot.png", "no such file")])


class ProjectPages(unittest.TestCase):
    def test_every_link_lands(self):
        self.assertTrue(pages(ROOT), "no pages found under " + ROOT)
        broken = broken_links(ROOT)
        self.assertEqual(broken, [], "\n".join(f"{p}: ({t}) {why}" for p, t, why in broken))


if __name__ == "__main__":
    sys.exit(unittest.main())

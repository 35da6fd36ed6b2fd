#!/usr/bin/env python3
"""Which tensor-core instruction each bf16 kernel was compiled to, read from
the machine code in a binary (cuobjdump -sass); no GPU needed.

    python3 gpu/sass.py BINARY [--check LOCALITY] [--out FILE]

Prints a line per kernel that has any, for the Hopper machine code (sm_90,
and sm_90a where the Hopper rungs live): the architecture, the kernel, the
instruction (HMMA: mma.sync, which wmma compiles to too; HGMMA: Hopper's
wgmma) and how many the kernel holds. With --check, the binary of the
`locality` driver names the bf16 rungs (`locality list`), and each rung's
kernel, <variant>_kernel, must be there and hold the instruction of its
architecture: HGMMA in sm_90a code (a Hopper rung that compiled to anything
else would be no Hopper rung), HMMA elsewhere; each miss is one line, and
the exit status 1.

cuobjdump comes from the CUDA toolkit (/usr/local/cuda/bin, or PATH), or
from the project's virtual environment (PyPI's nvidia-cuda-cuobjdump and
nvidia-cuda-nvdisasm, which bench/deps.sh installs): where none is found,
exit 77 with the reason (CTest's skip). Exit 2 with one line for bad input.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "gpu"))
import ncu_profile  # noqa: E402  (its reader of `locality list`)
ARCHES = ("sm_90", "sm_90a")  # what an H100 or H200 runs
FAMILIES = ("matmul_bf16", "attention_bf16")


class SassError(Exception):
    pass


def find_cuobjdump():
    """(cuobjdump, the folder of its nvdisasm), or None."""
    venv = os.environ.get("LOCALITY_VENV", os.path.join(ROOT, ".venv"))
    candidates = [os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin"),
                  *os.environ.get("PATH", "").split(os.pathsep),
                  *sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages",
                                                 "nvidia", "cu*", "bin")))]
    for folder in candidates:
        tool = os.path.join(folder, "cuobjdump")
        if folder and os.access(tool, os.X_OK) and os.access(os.path.join(folder, "nvdisasm"),
                                                             os.X_OK):
            return tool, folder
    return None


def kernel_name(mangled):
    """The kernel's own name and template arguments: `wmma_kernel<false>` of
    the symbol of `void locality::gpu::(anonymous namespace)::wmma_kernel<false>(...)`."""
    try:
        out = subprocess.run(["c++filt", mangled], capture_output=True, text=True).stdout
    except OSError:  # no c++filt: the name alone, from its length prefix
        for m in re.finditer(r"\d+", mangled):
            for i in range(len(m.group())):
                name = mangled[m.end():m.end() + int(m.group()[i:])]
                if name.endswith("_kernel"):
                    return name
        return mangled
    m = re.search(r"(\w+(?:<[^()]*>)?)\(", out)
    return m.group(1).replace(" ", "") if m else mangled


def tensor_instructions(binary, cuobjdump, nvdisasm_dir):
    """{(arch, kernel): {instruction: count}} for the kernels holding HMMA or HGMMA."""
    found = {}
    env = dict(os.environ, NVDISASM_PATH=nvdisasm_dir,
               PATH=nvdisasm_dir + os.pathsep + os.environ.get("PATH", ""))
    # -arch sm_90 brings the sm_90a code too.
    r = subprocess.run([cuobjdump, "-sass", "-arch", "sm_90", binary], capture_output=True,
                       text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise SassError(f"cuobjdump -sass exited {r.returncode}: {r.stderr.strip()[:200]}")
    section, kernel = None, None
    for line in r.stdout.splitlines():
        m = re.match(r"\s*arch = (sm_\w+)", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            kernel = kernel_name(m.group(1))
            continue
        op = re.search(r"\b(HGMMA|HMMA)\.", line)
        if op and kernel and section in ARCHES:
            counts = found.setdefault((section, kernel), {})
            counts[op.group(1)] = counts.get(op.group(1), 0) + 1
    return found


def bf16_rungs(locality):
    """[(family, variant)] of the bf16 ladders, from `locality list`."""
    try:
        rungs = [(f, v) for f, _, v in ncu_profile.gpu_rungs(locality) if f in FAMILIES]
    except ncu_profile.ProfileError as e:
        raise SassError(str(e))
    if not rungs:
        raise SassError(f"{locality} list names no bf16 GPU rung")
    return rungs


def check(found, rungs):
    """One line for each bf16 rung whose kernel lacks its architecture's instruction."""
    problems = []
    for family, variant in rungs:
        kernel = f"{variant}_kernel"
        places = sorted((arch, k, ops) for (arch, k), ops in found.items()
                        if k.split("<")[0] == kernel)
        if not places:
            problems.append(f"{family}/{variant}: no {kernel} with HMMA or HGMMA in "
                            f"{' or '.join(ARCHES)} code")
        for arch, k, ops in places:
            want = "HGMMA" if arch.endswith("a") else "HMMA"
            if want not in ops or len(ops) > 1:
                problems.append(f"{family}/{variant}: {k} in {arch} code holds "
                                f"{', '.join(sorted(ops))}, not {want} alone")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", help="a binary holding the GPU rungs (locality_tests, say)")
    parser.add_argument("--check", metavar="LOCALITY",
                        help="the locality driver, whose list names the bf16 rungs to check")
    parser.add_argument("--out", help="write the lines here as well")
    args = parser.parse_args()
    if not os.path.isfile(args.binary):
        print(f"sass.py: no such file: {args.binary}", file=sys.stderr)
        return 2
    tools = find_cuobjdump()
    if tools is None:
        print("sass.py: skipped: no cuobjdump with an nvdisasm beside it (the CUDA toolkit, or "
              "PyPI's nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm in .venv: bench/deps.sh)",
              file=sys.stderr)
        return 77
    try:
        rungs = bf16_rungs(args.check) if args.check else []
        found = tensor_instructions(args.binary, *tools)
    except (SassError, OSError, subprocess.SubprocessError) as e:
        print(f"sass.py: {e}", file=sys.stderr)
        return 2
    lines = [f"{arch} {kernel} {op} {n}" for (arch, kernel), ops in sorted(found.items())
             for op, n in sorted(ops.items())]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    problems = check(found, rungs)
    for p in problems:
        print(f"sass.py: {p}", file=sys.stderr)
    if args.check and not problems:
        print(f"sass.py: each of the {len(rungs)} bf16 rungs runs its architecture's "
              "tensor-core instruction", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

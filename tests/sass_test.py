#!/usr/bin/env python3
"""gpu/sass.py without CUDA's tools: a stand-in cuobjdump prints machine
code this test wrote. Each kernel's HMMA and HGMMA are counted under its
own name and template arguments and its architecture; --check passes when
each bf16 rung's kernel holds its architecture's instruction, and names
the rung (exit 1) when a Hopper kernel holds HMMA or a rung has no kernel;
no cuobjdump exits 77 (CTest's skip), a missing binary 2."""

import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "gpu", "sass.py")

# Kernels' symbols as nvcc writes them.
WMMA = ("_ZN8locality3gpu41_GLOBAL__N__a0cee5ac_9_1_wmma_cu_969c080f11wmma_kernelILb0EEEvPK13"
        "__nv_bfloat16S5_Pfiii")
WGMMA = ("_ZN8locality3gpu43_GLOBAL__N__ef75ca45_10_3_wgmma_cu_72f96b2212wgmma_kernelE14"
         "CUtensorMap_stS2_Pfiii")
HOPPER = ("_ZN8locality3gpu50_GLOBAL__N__ca8bf23c_17_2_flash_hopper_cu_cbd19fb719flash_hopper_"
          "kernelILi64EEEv14CUtensorMap_stS3_S3_P13__nv_bfloat16iiifb")


def elf(arch, kernel, ops):
    body = "\n".join(f"        /*{16 * i:04x}*/   {op} R4, R8, R12, R4 ;" for i, op in enumerate(ops))
    return textwrap.dedent(f"""
        Fatbin elf code:
        ================
        arch = {arch}
        code version = [1,8]

        \tcode for {arch}
        \t\tFunction : {kernel}
        """) + body + "\n        /*0200*/   EXIT ;\n"


class Sass(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        self.tools = os.path.join(d, "tools")
        os.mkdir(self.tools)
        self.listing = os.path.join(d, "sass.txt")
        for name, text in {
                "cuobjdump": f"#!/bin/sh\n[ -x \"$NVDISASM_PATH/nvdisasm\" ] || exit 9\n"
                             f"cat '{self.listing}'\n",
                "nvdisasm": "#!/bin/sh\nexit 0\n"}.items():
            self.write(os.path.join(self.tools, name), text)
        self.locality = os.path.join(d, "locality")
        self.write(self.locality, textwrap.dedent("""\
            #!/bin/sh
            echo "family         rung  variant        device lesson"
            echo "matmul_bf16    0     wmma           cpu    not this one"
            echo "matmul_bf16    1     wmma           gpu    portable"
            echo "matmul_bf16    3     wgmma          gpu    Hopper"
            echo "attention_bf16 2     flash_hopper   gpu    Hopper"
            """))
        self.binary = os.path.join(d, "locality_tests")
        self.write(self.binary, "")
        # Neither the toolkit nor the virtual environment: only the stand-ins.
        self.env = dict(os.environ, CUDA_HOME=os.path.join(d, "none"),
                        LOCALITY_VENV=os.path.join(d, "none"),
                        PATH=self.tools + os.pathsep + "/usr/bin:/bin")

    def tearDown(self):
        self.dir.cleanup()

    @staticmethod
    def write(path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)

    def run_sass(self, *args, env=None):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                              env=env or self.env, timeout=60)

    def test_counts_and_a_passing_check(self):
        self.write(self.listing, elf("sm_90", WMMA, ["HMMA.16816.F32.BF16"] * 3 + ["FFMA"])
                   + elf("sm_90a", WGMMA, ["HGMMA.64x128x16.F32.BF16"] * 2)
                   + elf("sm_90a", HOPPER, ["HGMMA.64x64x16.F32.BF16"]))
        out = os.path.join(self.dir.name, "out.txt")
        r = self.run_sass(self.binary, "--check", self.locality, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[:3], [
            "sm_90 wmma_kernel<false> HMMA 3", "sm_90a flash_hopper_kernel<64> HGMMA 1",
            "sm_90a wgmma_kernel HGMMA 2"])
        self.assertIn("each of the 3 bf16 rungs", r.stderr)
        with open(out, encoding="utf-8") as f:
            self.assertEqual(f.read().split("\n")[0], "sm_90 wmma_kernel<false> HMMA 3")

    def test_a_hopper_kernel_without_hgmma_and_a_missing_kernel_are_named(self):
        self.write(self.listing, elf("sm_90", WMMA, ["HMMA.16816.F32.BF16"])
                   + elf("sm_90a", WGMMA, ["HMMA.16816.F32.BF16"]))
        r = self.run_sass(self.binary, "--check", self.locality)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("matmul_bf16/wgmma: wgmma_kernel in sm_90a code holds HMMA, not HGMMA alone",
                      r.stderr)
        self.assertIn("attention_bf16/flash_hopper: no flash_hopper_kernel", r.stderr)
        self.assertNotIn("matmul_bf16/wmma:", r.stderr)

    def test_no_cuobjdump_skips_and_no_binary_is_an_error(self):
        os.remove(os.path.join(self.tools, "nvdisasm"))  # cuobjdump alone cannot disassemble
        r = self.run_sass(self.binary)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("skipped: no cuobjdump", r.stderr)
        r = self.run_sass(os.path.join(self.dir.name, "missing"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no such file", r.stderr)


if __name__ == "__main__":
    unittest.main()

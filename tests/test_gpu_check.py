"""benchmarks/gpu_check.sh and `make gpu-check`: on a machine without CUDA (or with CUDA hidden, as in
this test session) they say so in one line, create nothing and exit 2; the script parses."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
NO_CUDA = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def test_the_script_parses():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_without_cuda_it_says_so_in_one_line_and_exits_2(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=NO_CUDA, timeout=120)
    assert r.returncode == 2
    assert r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("gpu_check: no CUDA device here") and "nothing was checked" in r.stderr
    assert not out.exists()


def test_without_a_folder_it_prints_its_usage_and_exits_2():
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=NO_CUDA, timeout=60)
    assert r.returncode == 2 and r.stderr == "usage: benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]\n"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_gpu_check_fails_cleanly_without_cuda(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run(["make", "-s", "gpu-check", f"GPU_OUT={out}"], cwd=REPO, capture_output=True, text=True,
                       env=NO_CUDA, timeout=120)
    assert r.returncode == 2
    assert [line for line in r.stderr.splitlines() if line.startswith("gpu_check:")] == \
           [line for line in r.stderr.splitlines() if "no CUDA device" in line]
    assert "gpu_check: no CUDA device here" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()

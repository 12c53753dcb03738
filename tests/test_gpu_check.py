"""benchmarks/gpu_check.sh and `make gpu-check`: within its budget by construction (every stage's limit and
grace sum to under 8 minutes, and every command that can take time runs as a stage); on a machine without
CUDA, or without data, they say so in one line, create nothing and exit 2; the CUDA tests run without
pytest (benchmarks/cuda_tests.py's stand-in); the verdict says which default the numbers support."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
NO_CUDA = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
EIGHT_MINUTES = 480


def test_the_script_parses():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_its_stages_fit_in_eight_minutes_by_construction():
    """The plan: each stage's limit plus its kill grace, summed, and the budget the study stages may grow
    into, both under 8 minutes; the only `timeout` in the script is the one every stage runs under."""
    r = subprocess.run(["bash", str(SCRIPT), "--plan"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rows = [re.match(r"(\S+)\s+limit\s+(\d+) s\s+grace\s+(\d+) s\s+worst\s+(\d+) s", line)
            for line in r.stdout.splitlines()[:-1]]
    assert all(rows) and len(rows) >= 10
    assert all(int(m[2]) + int(m[3]) == int(m[4]) for m in rows)
    worst, budget = map(int, re.match(r"worst case (\d+) s; budget (\d+) s", r.stdout.splitlines()[-1]).groups())
    assert worst == sum(int(m[4]) for m in rows)
    assert worst <= budget <= EIGHT_MINUTES - 8       # a few seconds for the shell's own bookkeeping
    text = SCRIPT.read_text()
    code = [line.split("#")[0] for line in text.splitlines()]
    assert sum(len(re.findall(r"\btimeout\b", line)) for line in code) == 1
    stages = {m[1] for m in rows}
    source = "\n".join(code)
    called = set(re.findall(r"\bstage (\w+)", source)) | {f"flops_{m}" for m in ("solo", "population")} \
        | set(re.findall(r"^ablation (\w+)", source, re.M))
    assert called == stages                # every stage planned is run, and nothing else runs


def test_without_cuda_it_says_so_in_one_line_and_exits_2(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run(["bash", str(SCRIPT), str(out), str(tmp_path)], capture_output=True, text=True, env=NO_CUDA,
                       timeout=120)
    assert r.returncode == 2
    assert r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("gpu_check: no CUDA device here") and "nothing was checked" in r.stderr
    assert not out.exists()


def test_without_data_it_says_so_before_anything_runs(tmp_path):
    out = tmp_path / "gpu"
    env = {**NO_CUDA, "GPU_CHECK_DEVICE": "cpu", "CIFAR10_JPEG_DIR": ""}
    for args in ([str(out)], [str(out), str(tmp_path / "missing.tar.gz")]):
        r = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "gpu_check: no data at" in r.stderr
        assert not out.exists()


def test_data_without_cifar_stops_after_unpacking(tmp_path):
    """A tarball is unpacked (its own stage), then searched for a CIFAR-10 layout; none: exit 2."""
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("not images")
    subprocess.run(["tar", "-czf", str(tmp_path / "junk.tar.gz"), "-C", str(tmp_path), "junk"], check=True)
    out = tmp_path / "gpu"
    env = {**NO_CUDA, "GPU_CHECK_DEVICE": "cpu"}
    r = subprocess.run(["bash", str(SCRIPT), str(out), str(tmp_path / "junk.tar.gz")], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    summary = (out / "summary.txt").read_text()
    assert "data: unpacked" in summary and "no CIFAR-10 in" in summary.splitlines()[-1]


def test_without_a_folder_it_prints_its_usage_and_exits_2():
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=NO_CUDA, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("usage: benchmarks/gpu_check.sh OUT_DIR DATA")


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


def test_the_cuda_tests_run_without_pytest():
    """The stand-in collects the tests marked cuda (parametrized ones too) and skips them with the reason
    here; on a test that does not skip it resolves the fixtures (conftest's, the module's, tmp_path,
    monkeypatch, autouse ones) and passes it."""
    runner = [sys.executable, str(REPO / "benchmarks" / "cuda_tests.py"), "--stand-in"]
    r = subprocess.run([*runner, "tests/test_population.py"], cwd=REPO, capture_output=True, text=True,
                       env=NO_CUDA, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert sum("first_step_equals_its_solo_run[" in line for line in lines) == 5
    assert all("SKIPPED: TRICKS_TEST_CUDA=1 but torch sees no CUDA device" in line for line in lines[:-1])
    assert lines[-1] == f"{len(lines) - 1} skipped"
    r = subprocess.run([*runner, "--all-marks", "-k", "cannot_be_batched", "tests/test_population.py"], cwd=REPO,
                       capture_output=True, text=True, env=NO_CUDA, timeout=300)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "1 passed", r.stdout + r.stderr


def _fake_check(out, slice_diff: float, solo_epochs: int, pop_epochs: int, tests="12 passed in 40.1s"):
    for name, shift in (("slice", 0.0), ("slice_population", slice_diff)):
        (out / name).mkdir(parents=True)
        with open(out / name / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["variant", "seed", "accuracy"])
            w.writeheader()
            w.writerows({"variant": v, "seed": s, "accuracy": 0.5 + shift} for v in ("a", "b") for s in (0, 1))
    for mode, epochs in (("solo", solo_epochs), ("population", pop_epochs)):
        (out / f"study_{mode}" / "runs").mkdir(parents=True)
        for i in range(epochs // 10):
            (out / f"study_{mode}" / "runs" / f"v__seed{i}.json").write_text(json.dumps({"epochs_run": 10}))
        (out / f"study_{mode}.seconds").write_text("60\n")
    (out / "tests.txt").write_text(tests + "\n")


@pytest.mark.parametrize("diff, solo, pop, tests, default", [
    (0.002, 100, 300, "12 passed in 40.1s", 40),         # agrees, 3x faster, tests passed: a default
    (0.002, 100, 110, "12 passed in 40.1s", 0),          # not faster enough
    (0.05, 100, 300, "12 passed in 40.1s", 0),           # 5 points apart
    (0.0, 100, 300, "1 failed, 11 passed in 40.1s", 0),  # a CUDA test failed
])
def test_the_verdict_supports_a_default_only_on_a_measurement(tmp_path, diff, solo, pop, tests, default):
    _fake_check(tmp_path, diff, solo, pop, tests)
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_verdict.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    v = json.loads((tmp_path / "verdict.json").read_text())
    assert v["supported_default"] == default and v["slice_pairs"] == 4
    assert v["population_over_solo"] == pytest.approx(pop / solo)
    last = r.stdout.splitlines()[-1]
    assert last.startswith("supported default: ")
    assert ("CUDA_DEFAULT_POPULATION = 40" in last) == (default == 40)

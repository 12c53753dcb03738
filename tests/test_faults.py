"""Faults: interrupted studies resume without losing or duplicating runs; crashes are contained."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tricks.cli import main
from tricks.running.records import read_run, run_path

from .conftest import REPO, STUDY_SPEC, make_image_folder, plugin_spec

VARIANTS = "baseline,norm_inputs,dropout_dense"
SEEDS = "0,1"


@pytest.fixture(scope="module")
def bigger_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("imgs"), n_train=150, n_test=20)


def study_cmd(data, out, extra=()):
    return [sys.executable, "-m", "tricks", "ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants",
            VARIANTS,
            "--seeds", SEEDS, "--epochs", "12", "--dataset", "imagefolder", "--data-dir", str(data),
            "--out", str(out), "--workers", "2", "--no-progress", "--no-report", *extra]


def wait_for_first_run(out, proc, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if list((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []:
            return
        if proc.poll() is not None:
            pytest.fail(f"study ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.1)
    pytest.fail("no run finished in time")


def check_complete(out):
    files = sorted(p.name for p in (out / "runs").iterdir())
    expected = sorted(f"{v}__seed{s}.json" for v in VARIANTS.split(",") for s in SEEDS.split(","))
    assert files == expected          # every run exactly once, no temporary files left
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["variant"], r["seed"]) for r in rows) == sorted(
        (v, s) for v in VARIANTS.split(",") for s in SEEDS.split(","))
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_study_resumes_and_redoes_only_unfinished_runs(sig, bigger_folder, tmp_path):
    out = tmp_path / "res"
    # SIGINT back to its default in the child: a shell starts background jobs (e.g. `make test &`)
    # with SIGINT ignored, which the study would inherit, and then it could not be interrupted
    proc = subprocess.Popen(study_cmd(bigger_folder, out), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_first_run(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig != signal.SIGKILL:
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
        word = "terminated" if sig == signal.SIGTERM else "interrupted"
        assert f"{word}; finished runs are saved" in err and "Traceback" not in err
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert 1 <= len(done_before) < 6
    for name in done_before:
        assert read_run(out / "runs" / name) is not None
    time.sleep(1.0)   # after kill -9, orphaned workers notice their parent is gone and exit

    r = subprocess.run(study_cmd(bigger_folder, out), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"6 runs planned, {len(done_before)} reused from earlier, {6 - len(done_before)} trained" in r.stdout
    check_complete(out)
    assert not (out / "checkpoints").exists()   # runs' checkpoints are deleted once their records are written
    for name, mtime in done_before.items():   # finished runs were not redone
        assert (out / "runs" / name).stat().st_mtime_ns == mtime


def test_a_torn_result_file_is_not_trusted_and_is_redone(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants", "baseline", "--seeds", "0",
            "--epochs", "1",
            "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out", str(out), "--workers", "1",
            "--no-progress", "--no-report"]
    assert main(args) == 0
    path = run_path(out, "baseline__seed0")
    path.write_text(path.read_text()[:200])          # half a file
    capsys.readouterr()
    assert main(args) == 0
    assert "0 reused from earlier, 1 trained" in capsys.readouterr().out
    assert read_run(path) is not None


CRASHY = '''
import os
from tricks.specs.base import Trick
from tricks.specs.params import Param
from tricks.specs.registry import register_trick


@register_trick
class Crash(Trick):
    name = "crash"
    description = "Crash the process (hard) or raise (soft) while building the model (a test plugin)."
    params = (Param("how", str, "hard", "hard: the worker process dies; soft: an exception",
                    choices=("hard", "soft")),)

    def modify_model(self, model):
        if self.p["how"] == "hard":
            os._exit(7)
        raise RuntimeError("soft crash in a trick")
'''


@pytest.mark.parametrize("how", ["hard", "soft"])
def test_a_crashing_run_is_reported_and_the_others_complete(how, image_folder, tmp_path, plugin_module, capsys):
    plugin_module("crashy_mod", CRASHY)
    spec = plugin_spec(tmp_path, "crashy", "crashy_mod", f'''
        [[variants]]
        name = "baseline"
        [[variants]]
        name = "boom"
        tricks = [{{ name = "crash", how = "{how}" }}]
    ''')
    out = tmp_path / "res"
    rc = main(["ablation", "--device", "cpu", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir",
               str(image_folder),
               "--out", str(out), "--workers", "2", "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAILED boom__seed0" in err and "FAILED boom__seed1" in err
    assert ("worker process died" in err) if how == "hard" else ("soft crash in a trick" in err)
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == ["baseline__seed0.json", "baseline__seed1.json"]
    failures = json.loads((out / "failures.json").read_text())
    assert sorted(failures) == ["boom__seed0", "boom__seed1"]
    from tricks.analysis.report import build_report

    report = build_report(out).read_text()
    assert "Failed in the latest invocation" in report and "- boom seed 1: " in report


def test_a_diverged_run_is_recorded_and_the_study_goes_on(image_folder, tmp_path, capsys):
    spec = tmp_path / "div.toml"
    spec.write_text(textwrap.dedent('''
        name = "div"
        [training]
        epochs = 3
        batch_size = 8
        seeds = [0]
        [[variants]]
        name = "baseline"
        [[variants]]
        name = "huge_lr"
        tricks = [{ name = "exp_lr", lr = 1e6, gamma = 1.0 }]
    '''))
    out = tmp_path / "res"
    rc = main(["ablation", "--device", "cpu", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir",
               str(image_folder),
               "--out", str(out), "--workers", "1", "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "2 runs planned, 0 reused from earlier, 2 trained (1 of them diverged), 0 failed" in captured.out
    assert "DIVERGED huge_lr__seed0: its training loss became non-finite" in captured.err
    rec = json.loads(run_path(out, "huge_lr__seed0").read_text())
    assert rec["status"] == "diverged" and rec["epochs_run"] == 1 and "epoch 1" in rec["stop_reason"]
    with open(out / "runs.csv") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    assert rows["huge_lr"]["status"] == "diverged" and rows["baseline"]["status"] == "ok"
    report = (out / "REPORT.md").read_text()
    assert "## Diverged runs" in report and "huge_lr seed 0" in report
    assert "Diverged runs: 1 of 2 finished (huge_lr__seed0)" in report


def _worker_pids(parent: int) -> list[int]:
    """The study's worker processes: spawned children of ``parent``, or children of its fork server."""
    procs = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
            procs[int(p.name)] = (int(stat[1]), (p / "cmdline").read_bytes().replace(b"\0", b" "))
        except OSError:
            continue
    servers = {pid for pid, (ppid, cmd) in procs.items() if ppid == parent and b"forkserver import main" in cmd}
    return [pid for pid, (ppid, cmd) in procs.items()
            if (ppid == parent and b"multiprocessing-fork" in cmd) or ppid in servers]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_a_worker_killed_mid_run_is_retried_and_the_study_completes(bigger_folder, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.Popen(study_cmd(bigger_folder, out), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_first_run(out, proc)
    workers = _worker_pids(proc.pid)
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "6 trained (0 of them diverged), 0 failed" in stdout
    check_complete(out)

"""A study that stops early prints its one line and nothing else: no worker, queue, semaphore or
folder exists before every check has passed, a pool is torn down once and to the end, and the
progress goes to a log as plain lines (bars only on a terminal, or with --progress)."""

import argparse
import json
import subprocess
import sys
import threading

import pytest

from tricks.cli import main

from .conftest import REPO, STUDY_SPEC


def ablation(image_folder, out, *args):
    return ["ablation", "--device", "cpu", "--dataset", "imagefolder", "--data-dir", str(image_folder),
            "--out", str(out), "--no-report", *args]


@pytest.mark.parametrize("args,fragment", [
    (["--train-subset", "2"], "smaller than the number of classes"),
    (["--validation", "60"], "is at or above the training split"),
    (["--validation", "30", "--train-subset", "40"], "larger than the training split available to it"),
    (["--variants", "nope"], "unknown variant(s) 'nope'"),
])
def test_nothing_starts_before_every_check_has_passed(args, fragment, image_folder, tmp_path, monkeypatch, capsys):
    """The CI flake's cause: the pool (its queues' named semaphores, its workers) started before the
    data was checked, and an early error then raced the pool's teardown against the process's exit."""
    from multiprocessing import resource_tracker

    from tricks.running import executors, forkserver

    started = []
    monkeypatch.setattr(executors.LocalExecutor, "start", lambda self: started.append("workers"))
    monkeypatch.setattr(resource_tracker, "register", lambda name, rtype: started.append(rtype))
    monkeypatch.setattr(forkserver, "start", lambda: None)
    monkeypatch.setattr(forkserver, "stop", lambda: None)
    out = tmp_path / "o"
    assert main(ablation(image_folder, out, "--workers", "2", "--epochs", "1", *args)) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert started == [] and not out.exists()


def test_a_stored_run_of_other_settings_is_refused_before_any_worker_starts(image_folder, tmp_path, monkeypatch,
                                                                          capsys):
    from tricks.running import executors

    out = tmp_path / "o"
    common = ablation(image_folder, out, "--variants", "baseline", "--seeds", "0", "--workers", "1")
    assert main(common + ["--epochs", "1"]) == 0
    started = []
    monkeypatch.setattr(executors.LocalExecutor, "start", lambda self: started.append("workers"))
    capsys.readouterr()
    assert main(common + ["--epochs", "2"]) == 2
    assert "made with other settings" in capsys.readouterr().err and started == []


def test_closing_the_workers_waits_until_the_pool_is_gone(image_folder):
    """Torn down once and to the end: no manager thread of the pool, and no worker, outlives ``close``."""
    from concurrent.futures.process import _ExecutorManagerThread

    import torch

    from tricks.running.executors import LocalExecutor
    from tricks.training.data import DataSource

    ex = LocalExecutor(DataSource("imagefolder", str(image_folder)), torch.device("cpu"), workers=2)
    ex.start()
    ex.data_ready(None)
    ex._wait_started()
    workers = list(ex._warm[3]._processes.values())
    assert len(workers) == 2
    ex.close()
    assert not [t for t in threading.enumerate() if isinstance(t, _ExecutorManagerThread)]
    assert not [p for p in workers if p.is_alive()]


def test_early_exits_print_one_line_every_time_under_load(image_folder, tmp_path):
    """8 invocations at once, 3 times over (a loaded machine), each stopped early by another bad input:
    each prints exactly its one line on stderr and exits 2."""
    bad = [["--train-subset", "2"], ["--validation", "60"], ["--variants", "nope"], ["--max-seeds", "3"]] * 2
    for round_ in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "tricks", *ablation(image_folder, tmp_path / f"o{i}"),
                                   "--workers", "2", "--epochs", "1", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
                 for i, args in enumerate(bad)]
        for args, p in zip(bad, procs):
            _, err = p.communicate(timeout=600)
            assert p.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("tricks: error: "), \
                (round_, args, err)
    assert not list(tmp_path.glob("o*"))


def test_max_seeds_below_the_seeds_stored_for_the_planned_variants_is_refused(image_folder, tmp_path, capsys):
    out = tmp_path / "o"
    (out / "runs").mkdir(parents=True)
    for seed in (0, 1, 2):
        (out / "runs" / f"baseline__seed{seed}.json").write_text("{}")
    (out / "runs" / "norm_inputs__seed7.json").write_text("{}")    # another variant's seeds do not count
    assert main(ablation(image_folder, out, "--variants", "baseline", "--seeds", "0", "--until-halfwidth", "1",
                         "--max-seeds", "2")) == 2
    err = capsys.readouterr().err
    assert "--max-seeds 2 is below the 3 seeds already stored" in err and "(0,1,2)" in err
    assert len(err.strip().splitlines()) == 1 and sorted(p.name for p in (out / "runs").iterdir()) == [
        "baseline__seed0.json", "baseline__seed1.json", "baseline__seed2.json", "norm_inputs__seed7.json"]


def test_a_log_gets_one_line_per_finished_run_and_no_cursor_codes(image_folder, tmp_path):
    run = ["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--dataset", "imagefolder", "--data-dir",
           str(image_folder), "--variants", "baseline,norm_inputs", "--seeds", "0", "--epochs", "1", "--workers", "1",
           "--no-report"]
    log = tmp_path / "log.txt"
    with open(log, "w") as f:   # stderr is a file, as under nohup or in CI
        r = subprocess.run([sys.executable, "-m", "tricks", *run, "--out", str(tmp_path / "a")], stderr=f,
                           stdout=subprocess.PIPE, text=True, cwd=REPO, timeout=600)
    text = log.read_bytes()
    assert r.returncode == 0, text
    assert text.decode().split("\n") == ["tricks: run 1/2 baseline__seed0: ok",
                                          "tricks: run 2/2 norm_inputs__seed0: ok", ""]   # no "\r", no "\x1b[A"
    with open(log, "w") as f:   # --progress forces the bars into the file
        r = subprocess.run([sys.executable, "-m", "tricks", *run, "--out", str(tmp_path / "b"), "--progress"],
                           stderr=f, stdout=subprocess.PIPE, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0 and b"\r" in log.read_bytes() and b"study:" in log.read_bytes()
    assert json.loads((tmp_path / "b" / "runs" / "baseline__seed0.json").read_text())["status"] == "ok"


def test_bars_go_to_a_terminal_only_unless_forced(monkeypatch):
    from tricks.cli.ablation import progress_wanted

    class Stderr:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    def wanted(tty, **flags):
        monkeypatch.setattr(sys, "stderr", Stderr(tty))
        return progress_wanted(argparse.Namespace(**{"progress": False, "no_progress": False, **flags}))

    assert wanted(True) and not wanted(False)
    assert wanted(False, progress=True) and not wanted(True, no_progress=True)

"""The Lightning example (examples/train_lightning.py) as an entry-point workload: a study whose records
the report reads, and a run killed after its first epoch that resumes from Lightning's own checkpoint.
Lightning is an optional extra (``pip install 'backprop-tricks[lightning]'``): skipped without it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("lightning", reason="Lightning is an optional extra (pip install 'backprop-tricks[lightning]'); "
                                        "the example's test needs it")

from tricks.cli import main  # noqa: E402

from .test_entry import EXAMPLES, TINY, _forget_user_modules, record  # noqa: E402,F401 - the fixture is autouse

SLOW = '''
import os
import time

from train_lightning import run as lightning_run


def run(config, seed, budget, context):
    """The example, slow once epoch 2 ends while SLOW_AFTER_EPOCH_1 is set: epoch 1's checkpoint is written."""
    report = context.report_epoch

    def slow_report(row):
        report(row)
        if row["epoch"] == 2 and os.environ.get("SLOW_AFTER_EPOCH_1"):
            time.sleep(120)
    context.report_epoch = slow_report
    return lightning_run(config, seed, budget, context)
'''


def test_the_lightning_example_trains_a_study_the_report_reads(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["ablation", "--spec", str(EXAMPLES / "lightning.toml"), "--data-dir", str(image_folder),
                 "--epochs", "2", "--seeds", "0,1", "--out", str(out), *TINY]) == 0
    assert "6 runs planned, 0 reused from earlier, 6 trained" in capsys.readouterr().out
    rec = record(out, "wide__seed1")
    assert rec["settings"]["config"] == {"lr": 2e-3, "width": 32} and [h["epoch"] for h in rec["history"]] == [1, 2]
    assert set(rec["settings"]["sources"]) == {"train_plain", "train_lightning"}   # its imports' sources too
    assert rec["metrics"]["accuracy"] == rec["history"][-1]["test_accuracy"]
    assert (out / "REPORT.md").is_file() and not (out / "checkpoints").exists()


def test_a_killed_lightning_run_resumes_from_its_last_checkpoint(image_folder, tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    for name in ("train_plain.py", "train_lightning.py"):
        shutil.copy(EXAMPLES / name, d / name)
    (d / "slow_lightning.py").write_text(SLOW)
    (d / "spec.toml").write_text('imports = ["train_plain", "train_lightning"]\nentry = "slow_lightning:run"\n'
                                 'config = { width = 8 }\n[training]\nepochs = 3\nbatch_size = 16\nseeds = [0]\n'
                                 '[[variants]]\nname = "baseline"\n')
    out = tmp_path / "res"
    args = [sys.executable, "-m", "tricks", "ablation", "--spec", str(d / "spec.toml"), "--data-dir",
            str(image_folder), "--out", str(out), "--no-report", *TINY]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "SLOW_AFTER_EPOCH_1": "1"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = out / "checkpoints" / "baseline__seed0" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert last.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint in time"
    time.sleep(1.0)                              # epoch 2 is reported (and sleeps) after epoch 1's file is whole
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "runs" / "baseline__seed0.json").exists()
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rec = record(out, "baseline__seed0")
    assert rec["resumed_from_epoch"] == 1 and [h["epoch"] for h in rec["history"]] == [1, 2, 3]
    assert not (out / "checkpoints").exists()          # the run's own directory went with its record

"""The Ray executor: the same records as the local pool, crashes contained, interrupts resumed, and a
clear one-line refusal when Ray is missing or its cluster cannot be reached."""

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from tricks.cli import main

from .conftest import REPO, STUDY_SPEC, plugin_spec
from .test_faults import CRASHY, bigger_folder, check_complete, study_cmd, wait_for_first_run  # noqa: F401

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'backprop-tricks[ray]'")


def rows(path):
    with open(path) as f:
        return {(r["variant"], r["seed"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_ray_runs_give_the_local_pools_accuracies_bit_for_bit(real_images, tmp_path):
    common = ["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants", "baseline,dropout_conv",
              "--seeds", "0,1",
              "--epochs", "1", "--train-subset", "1000", "--dataset", "imagefolder", "--data-dir", str(real_images),
              "--no-progress", "--no-report"]
    assert main(common + ["--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    assert main(common + ["--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    local, remote = rows(tmp_path / "local" / "runs.csv"), rows(tmp_path / "ray" / "runs.csv")
    assert len(local) == 4 and local.keys() == remote.keys()
    for k in local:       # CPU, one thread per run in both: identical numbers, identical settings keys
        assert [local[k][c] for c in ("accuracy", "macro_f1", "settings_key")] == \
               [remote[k][c] for c in ("accuracy", "macro_f1", "settings_key")]
    rec = json.loads((tmp_path / "ray" / "runs" / "baseline__seed0.json").read_text())
    assert rec["provenance"]["executor"]["kind"] == "ray" and rec["provenance"]["executor"]["ray"] == ray.__version__
    assert rec["provenance"]["executor"]["node"]
    assert json.loads((tmp_path / "ray" / "study.json").read_text())["executor"] == "ray"


def test_a_crashing_ray_task_is_reported_with_its_variant_and_seed(image_folder, tmp_path, plugin_module, capsys):
    plugin_module("crashy_ray_mod", CRASHY)
    spec = plugin_spec(tmp_path, "crashy", "crashy_ray_mod", '''
        [[variants]]
        name = "baseline"
        [[variants]]
        name = "boom"
        tricks = [{ name = "crash", how = "hard" }]
    ''')
    out = tmp_path / "res"
    rc = main(["ablation", "--device", "cpu", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir",
               str(image_folder),
               "--out", str(out), "--executor", "ray", "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAILED boom__seed0" in err and "FAILED boom__seed1" in err and "worker process died" in err
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == ["baseline__seed0.json", "baseline__seed1.json"]
    assert sorted(json.loads((out / "failures.json").read_text())) == ["boom__seed0", "boom__seed1"]


@pytest.mark.slow
def test_an_interrupted_ray_study_resumes_with_every_run_once(bigger_folder, tmp_path):  # noqa: F811
    out = tmp_path / "res"
    cmd = study_cmd(bigger_folder, out, ["--executor", "ray"])
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_first_run(out, proc, timeout=400)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert 1 <= len(done_before) < 6
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert f"{len(done_before)} reused from earlier, {6 - len(done_before)} trained" in r.stdout
    check_complete(out)
    for name, mtime in done_before.items():          # finished runs were not touched
        assert (out / "runs" / name).stat().st_mtime_ns == mtime


def test_ray_missing_is_one_line_exit_2(image_folder, tmp_path):
    fake = tmp_path / "fake" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray (simulated)')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    r = subprocess.run([sys.executable, "-m", "tricks", "ablation", "--device", "cpu", "--executor", "ray",
                        "--dataset", "imagefolder",
                        "--data-dir", str(image_folder), "--out", str(tmp_path / "o"), "--no-progress"],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--executor ray needs Ray" in r.stderr and "backprop-tricks[ray]" in r.stderr
    assert not (tmp_path / "o").exists()


def test_an_unreachable_ray_address_is_one_line_exit_2(image_folder, tmp_path, capsys):
    rc = main(["ablation", "--device", "cpu", "--executor", "ray", "--ray-address", "127.0.0.1:9", "--dataset",
               "imagefolder",
               "--data-dir", str(image_folder), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in err and err.count("\n") == 1
    rc = main(["ablation", "--device", "cpu", "--executor", "ray", "--ray-address", "nonsense", "--dataset",
               "imagefolder",
               "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2 and "must be host:port" in capsys.readouterr().err

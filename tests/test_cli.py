"""The command line: a real (tiny) study, resuming, and one-line errors with exit code 2."""

import csv
import json
import subprocess
import sys

import pytest

from tricks.cli import main
from tricks.running.lock import DirectoryLock

from .conftest import REPO, STUDY_SPEC


def tricks(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "tricks", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_study_in_worker_processes_then_resume_then_rerun_changed(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    common = ["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants", "baseline,dropout_both",
              "--seeds", "0,1",
              "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out", str(out), "--no-progress"]
    assert main(common + ["--epochs", "1", "--workers", "2"]) == 0
    rows = read_csv(out / "runs.csv")
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("baseline", "0", "ok"), ("baseline", "1", "ok"), ("dropout_both", "0", "ok"), ("dropout_both", "1", "ok")]
    assert all(float(r["accuracy"]) == float(r["micro_f1"]) for r in rows)
    rec = json.loads((out / "runs" / "baseline__seed0.json").read_text())
    assert set(rec["provenance"]) >= {"git", "packages", "device", "cpu", "python"}
    assert rec["provenance"]["denormals"] == "flushed"      # CPU runs flush subnormals (engine.FLUSH_DENORMALS)
    assert rec["dataset"]["sha256"] and rec["settings"]["seed"] == 0 and rec["wall_seconds"] > 0
    import torch

    from tricks.running.device import bf16_is_native, choose_precision
    assert rec["settings"]["precision"] == choose_precision("auto", bf16_is_native(torch.device("cpu")))
    assert len(rec["metrics"]["confusion_matrix"]) == 3 and set(rec["metrics"]["per_class"]) == {"blue", "green", "red"}
    assert (out / "REPORT.md").is_file() and (out / "figures" / "micro_f1.png").is_file()
    capsys.readouterr()

    assert main(common + ["--epochs", "1", "--workers", "2"]) == 0
    assert "4 runs planned, 4 reused from earlier, 0 trained (0 of them diverged)" in capsys.readouterr().out

    # Other settings for stored runs: refused (tests/test_stored_runs.py), unless --replace moves them aside
    assert main(common + ["--epochs", "2", "--workers", "1", "--seeds", "0"]) == 2
    assert "made with other settings" in capsys.readouterr().err
    assert main(common + ["--epochs", "2", "--workers", "1", "--seeds", "0", "--replace"]) == 0
    assert "2 runs planned, 0 reused from earlier, 2 trained (0 of them diverged)" in capsys.readouterr().out
    rows = read_csv(out / "runs.csv")
    assert [(r["variant"], r["seed"], r["epochs"]) for r in rows] == [("baseline", "0", "2"), ("dropout_both", "0", "2")]


@pytest.mark.parametrize("args,fragment", [
    (["--variants", "baseline,nope"], "unknown variant(s) 'nope'"),
    (["--seeds", "0,0"], "--seeds lists seed(s) 0 more than once"),
    (["--seeds", "a,b"], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", "-1"], "each seed must be an integer in [0,"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--train-subset", "2"], "smaller than the number of classes"),
    (["--train-subset", "999999"], "larger than the training split"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--precision", "fp16"], "--precision must be one of auto, fp32, bf16"),
    (["--spec", "nope.toml"], "spec file nope.toml does not exist"),
    # impossible splits and budgets (the image folder: 60 training images of 3 classes)
    (["--validation", "60"], "--validation 60 is at or above the training split"),
    (["--validation", "60", "--train-subset", "10"], "--validation 60 is at or above the training split"),
    (["--validation", "58"], "leaves 2 of the 60 training images of imagefolder"),
    (["--validation", "30", "--train-subset", "40"], "60 images less the 30-image validation split = 30"),
    (["--until-halfwidth", "inf", "--max-seeds", "3"], "must be a positive number of accuracy points, and finite"),
    (["--until-halfwidth", "1", "--max-seeds", "2", "--seeds", "0,1,2"], "fewer than the 3 seeds the study starts"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, image_folder, tmp_path):
    r = tricks("ablation", "--device", "cpu", "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out",
               str(tmp_path / "o"),
               "--no-progress", *args)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()     # refused before any folder is made


def test_missing_data_dir_is_exit_2(tmp_path):
    r = tricks("ablation", "--device", "cpu", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nothing"),
               "--out",
               str(tmp_path / "o"), "--no-progress")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_unwritable_output_directory_is_exit_2(image_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = tricks("ablation", "--device", "cpu", "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out",
               str(blocker / "sub"), "--no-progress")
    assert r.returncode == 2 and f"{blocker} is a file, not a directory" in r.stderr


def test_a_second_study_on_a_locked_directory_is_refused(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    with DirectoryLock(out):
        rc = main(["ablation", "--device", "cpu", "--dataset", "imagefolder", "--data-dir", str(image_folder),
                   "--out", str(out),
                   "--variants", "baseline", "--seeds", "0", "--epochs", "1", "--no-progress"])
    assert rc == 2
    assert "another study is already running" in capsys.readouterr().err
    assert not (out / "runs").exists()


def test_list_shows_tricks_and_spec_variants():
    r = tricks("list")
    assert r.returncode == 0 and "normalize_inputs:" in r.stdout and "p = 0.2" in r.stdout
    r = tricks("list", "--spec", str(STUDY_SPEC))
    assert r.returncode == 0 and "dropout_both" in r.stdout and "base=init_weights" in r.stdout


@pytest.mark.slow
def test_short_real_run_on_cifar10_jpegs(real_images, tmp_path):
    """One epoch on 2,000 real training images: learns well above chance (0.10)."""
    out = tmp_path / "real"
    r = tricks("ablation", "--device", "cpu", "--variants", "baseline,norm_inputs", "--seeds", "0", "--epochs", "1",
               "--train-subset", "2000", "--dataset", "imagefolder", "--data-dir", str(real_images),
               "--out", str(out), "--no-progress", "--no-report")
    assert r.returncode == 0, r.stderr
    rows = read_csv(out / "runs.csv")
    assert [r["variant"] for r in rows] == ["baseline", "norm_inputs"]
    for row in rows:
        assert row["status"] == "ok" and float(row["accuracy"]) > 0.18
    rec = json.loads((out / "runs" / "baseline__seed0.json").read_text())
    assert rec["train_images"] == 2000 and sum(rec["metrics"]["confusion_matrix"][0]) == 1000


def test_auto_precision_is_bf16_only_where_the_hardware_has_it():
    from tricks.errors import TricksError
    from tricks.running.device import choose_precision

    assert choose_precision("auto", native_bf16=True) == "bf16"
    assert choose_precision("auto", native_bf16=False) == "fp32"
    assert choose_precision("fp32", native_bf16=True) == "fp32"      # an explicit choice is kept
    assert choose_precision("bf16", native_bf16=False) == "bf16"
    with pytest.raises(TricksError, match="valid: auto, fp32, bf16"):
        choose_precision("fp16", native_bf16=True)


def test_figures_on_a_read_only_folder_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """As root a chmod does not stop writes, so the read-only file system is simulated where every
    results file is written (files.write_atomic's temporary file)."""
    import errno

    import tricks.files as files

    from .conftest import write_fake_study

    out = write_fake_study(tmp_path / "ro", {("base", 0): 0.5, ("v", 0): 0.6}, [("base", None), ("v", "base")], [0])

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(out / "runs.csv"))
    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    assert main(["figures", "--results", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tricks: error: cannot write the report into {out}: Read-only file system ({out / 'runs.csv'}); "
                   "copy the folder somewhere writable and run 'tricks figures --results COPY'"]
    assert not (out / "REPORT.md").exists()


def test_make_figures_renders_the_folder_out_names_else_every_committed_study():
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    one = subprocess.run(["make", "-n", "-o", ".venv/.installed", "figures", "OUT=some/where"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert one.returncode == 0, one.stderr
    assert "for d in some/where; do" in one.stdout
    every = subprocess.run(["make", "-n", "-o", ".venv/.installed", "figures"], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
    committed = sorted(p.parent.name for p in (REPO / "results").glob("*/study.json")
                       if p.parent.name not in ("ci_profile", "local"))   # git-ignored outputs, not studies
    assert len(committed) >= 4 and all(f"results/{name}" in every.stdout for name in committed)
    assert "results/local" not in every.stdout and "results/ci_profile" not in every.stdout

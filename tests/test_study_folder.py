"""A study folder's tables describe every finished run that belongs to it: a command that trains a
subset (one variant and one seed; rounds from seed 0) never shrinks study.json, runs.csv, the
summaries or REPORT.md to that subset, and says how many runs the folder's study has."""

import csv
import json

import pytest

from tricks.cli import main

from .conftest import STUDY_SPEC

VARIANTS = ["baseline", "norm_inputs", "lr_schedule", "weight_decay", "init_weights", "dropout_dense", "dropout_conv",
            "dropout_both"]


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def study(image_folder, tmp_path, capsys):
    """8 variants x 2 seeds, 1 epoch each, trained in this process."""
    out = tmp_path / "study"

    def run(*args):
        capsys.readouterr()
        rc = main(["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--dataset", "imagefolder",
                   "--data-dir", str(image_folder), "--out", str(out), "--epochs", "1", "--workers", "1", *args])
        return rc, capsys.readouterr()

    rc, _ = run("--seeds", "0,1", "--no-report")
    assert rc == 0
    return out, run


def test_the_study_has_the_eight_variants_of_its_spec():
    from tricks.plugins import load_spec

    assert [v.name for v in load_spec(STUDY_SPEC).variants] == VARIANTS


def covers_the_whole_study(out):
    assert len(rows(out / "runs.csv")) == 16
    manifest = json.loads((out / "study.json").read_text())
    assert len(manifest["runs"]) == 16 and manifest["seeds"] == [0, 1]
    assert [v["name"] for v in manifest["spec"]["variants"]] == VARIANTS
    summary = rows(out / "summary.csv")
    assert [r["variant"] for r in summary] == VARIANTS and {r["runs_ok"] for r in summary} == {"2"}
    report = (out / "REPORT.md").read_text()
    assert all(f"| {v} " in report for v in VARIANTS)
    return manifest


def test_one_variant_and_one_seed_leave_the_tables_whole(study):
    out, run = study
    (out / "runs" / "norm_inputs__seed0.json").unlink()      # so that the command trains (and reports) it
    rc, cap = run("--variants", "norm_inputs", "--seeds", "0")
    assert rc == 0
    assert "1 runs planned of 16 in the folder, 0 reused from earlier, 1 trained" in cap.out
    covers_the_whole_study(out)
    # a command that trains nothing leaves them whole too, and `tricks figures` renders the whole study
    rc, cap = run("--variants", "baseline,norm_inputs", "--seeds", "0")
    assert rc == 0 and "2 runs planned of 16 in the folder, 2 reused from earlier, 0 trained" in cap.out
    assert main(["figures", "--results", str(out)]) == 0
    covers_the_whole_study(out)


def test_rounds_from_a_subset_of_the_seeds_leave_the_tables_whole(study):
    out, run = study
    rc, cap = run("--variants", "baseline,norm_inputs", "--seeds", "0", "--until-halfwidth", "50", "--max-seeds", "2")
    assert rc == 0
    assert "4 runs planned of 16 in the folder, 4 reused from earlier, 0 trained" in cap.out
    manifest = covers_the_whole_study(out)
    assert len(manifest["until"]["rounds"]) == 1 and manifest["until"]["rounds"][0]["seeds"] == 2
    # the rule read the planned comparison (norm_inputs vs baseline over seeds 0 and 1), not the whole folder
    assert manifest["until"]["rounds"][0]["widest"] == "norm_inputs vs baseline"


def test_runs_made_with_other_settings_stay_out_of_the_tables_and_are_named(study):
    out, run = study
    rc, cap = run("--variants", "baseline", "--seeds", "0", "--epochs", "2", "--replace", "--no-report")
    assert rc == 0 and "1 runs planned, 0 reused from earlier, 1 trained" in cap.out
    assert "15 finished run(s) in" in cap.err and "were made with other settings" in cap.err
    assert [(r["variant"], r["seed"], r["epochs"]) for r in rows(out / "runs.csv")] == [("baseline", "0", "2")]
    assert len(list((out / "runs").glob("*.json"))) == 16     # kept: the replaced one moved aside, 15 untouched

"""The shipped study specs: each loads, and one short real run of each new spec trains every variant
(1 epoch, a small class-balanced subset, 1 seed) with the tricks doing what their names say."""

import json
import subprocess
import sys

import pytest

from tricks.plugins import load_spec

from .conftest import REPO

SPECS = ("backprop_tricks", "one_at_a_time", "ci_profile", "lr_schedules", "lecun_lecture", "factorial")


@pytest.mark.parametrize("name", SPECS)
def test_every_shipped_spec_loads(name):
    spec = load_spec(REPO / "benchmarks" / f"{name}.toml")
    assert spec.name == name and len(spec.variants) >= 2


def test_the_schedule_study_holds_out_validation_for_every_variant():
    spec = load_spec(REPO / "benchmarks" / "lr_schedules.toml")
    assert spec.training.validation == 5000
    names = [t["name"] for v in spec.variants for t in v.tricks]
    for trick in ("step_lr", "multistep_lr", "exp_lr", "cosine_lr", "cosine_restarts", "one_cycle", "cyclic_lr",
                  "poly_lr", "linear_lr", "reduce_on_plateau", "warmup", "early_stopping"):
        assert trick in names
    assert all(v.tricks[0]["name"] == "normalize_inputs" for v in spec.variants)   # one fixed recipe


def short_run(spec: str, real_images, out, *extra):
    r = subprocess.run([sys.executable, "-m", "tricks", "ablation", "--device", "cpu", "--spec",
                        f"benchmarks/{spec}.toml", "--seeds",
                        "0", "--epochs", "1", "--train-subset", "1000", "--dataset", "imagefolder", "--data-dir",
                        str(real_images), "--out", str(out), "--no-progress", "--no-report", *extra],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stderr
    return {p.stem.split("__")[0]: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


@pytest.mark.slow
def test_short_real_run_of_the_schedule_study(real_images, tmp_path):
    runs = short_run("lr_schedules", real_images, tmp_path / "s", "--validation", "500")
    assert len(runs) == 14 and all(r["status"] == "ok" for r in runs.values())
    assert all(r["validation_images"] == 500 and r["train_images"] == 1000 for r in runs.values())
    assert all("val_accuracy" in r["history"][0] for r in runs.values())
    # 16 steps per epoch: one-cycle and cyclic change the LR every step, warm-up starts at 1e-4
    assert len(runs["one_cycle"]["lr_trace"]["step"]) == 17 and len(runs["cyclic_lr"]["lr_trace"]["step"]) == 17
    assert runs["warmup"]["lr_trace"]["lr"][0] == pytest.approx(1e-4)
    assert runs["constant"]["lr_trace"]["lr"] == [1e-3]


@pytest.mark.slow
def test_short_real_run_of_the_lecture_study(real_images, tmp_path):
    runs = short_run("lecun_lecture", real_images, tmp_path / "l")
    assert len(runs) == 11 and all(r["status"] == "ok" for r in runs.values())   # 10 + fixed_order
    assert runs["sgd"]["optimizer_class"] == "SGD" and runs["sgd"]["optimizer"]["lr"] == 2e-2
    assert runs["squared_error"]["history"][0]["train_nll"] != runs["squared_error"]["history"][0]["train_loss"]
    assert runs["lecture_recipe"]["metrics"]["accuracy"] > 0.15        # learns (chance: 0.10)

"""Tuning-aware studies, the running side: the ``[tuning]`` block, how a grid value maps onto each
variant's learning rates, the refusal without a validation split, settings keys, and a tiny real
2-variant x 2-LR study (the analysis side is tests/test_tuning_analysis.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tricks.cli import main
from tricks.errors import SpecError
from tricks.plugins import load_plugins, parse_spec
from tricks.running.settings import RunSettings
from tricks.specs.params import resolve_params
from tricks.specs.registry import TRICKS
from tricks.specs.tuning import at_lr, peak_lr

REPO = Path(__file__).resolve().parent.parent

TUNED = """
name = "tuned"
[training]
epochs = 2
batch_size = 16
seeds = [0]
validation = 12
[tuning]
lr = [1e-3, 4e-3]
[[variants]]
name = "baseline"
tricks = []
[[variants]]
name = "decay"
base = "baseline"
tricks = [{ name = "exp_lr", lr = 1e-3, gamma = 0.5 }]
"""


def resolved(name: str, **given) -> dict:
    load_plugins()
    return {"name": name, **resolve_params(TRICKS.get(name).params, given, owner=name)}


# -- the block --------------------------------------------------------------------------------------

@pytest.mark.parametrize("block, message", [
    ("lr = [1e-3]", "lr must be a list of 2 to 32 learning rates"),
    ("lr = 1e-3", "lr must be a list of 2 to 32"),
    ("lr = [1e-3, -1.0]", "each lr must be a number in (0, 1e+06]"),
    ("lr = [1e-3, 1e-3]", "lr lists a value twice"),
    ("lr = [1e-3, 2e-3]\nselect_on = \"test_accuracy\"", "select_on must be one of val_accuracy, val_loss"),
    ("lr = [1e-3, 2e-3]\nsteps = 3", "unknown key(s) 'steps'"),
])
def test_bad_tuning_blocks_are_refused_in_one_line(block, message):
    text = TUNED.replace("lr = [1e-3, 4e-3]", block)
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_grid_is_sorted_and_select_on_defaults_to_validation_accuracy():
    spec = parse_spec(TUNED.replace("[1e-3, 4e-3]", "[4e-3, 1e-3, 2e-3]"))
    assert spec.tuning.lr == (1e-3, 2e-3, 4e-3) and spec.tuning.select_on == "val_accuracy"
    assert parse_spec(TUNED.replace("[tuning]\n", "").replace("lr = [1e-3, 4e-3]\n", "")).tuning is None


def test_a_tuned_study_without_a_validation_split_is_refused_before_any_data_loads(tmp_path, capsys):
    spec = tmp_path / "tuned.toml"
    spec.write_text(TUNED.replace("validation = 12", "validation = 0"))
    missing = tmp_path / "no-such-folder"      # never read: the refusal comes first
    code = main(["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(missing),
                 "--out", str(tmp_path / "res"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tunes the LR over 2 values, chosen on val_accuracy, but the validation split is 0 images" in err
    assert "--validation N" in err and "Traceback" not in err and not (tmp_path / "res").exists()


# -- the mapping ------------------------------------------------------------------------------------

def test_peak_lr_of_each_kind_of_variant():
    assert peak_lr([]) == 1e-3                                                   # Adam's default
    assert peak_lr([resolved("exp_lr", lr=2e-3, gamma=0.8)]) == 2e-3
    assert peak_lr([resolved("one_cycle", max_lr=5e-4)]) == 5e-4                # the optimizer's lr is overwritten
    assert peak_lr([resolved("cyclic_lr", base_lr=1e-4, max_lr=6e-4)]) == 6e-4
    assert peak_lr([resolved("swa", lr=5e-4)]) == 1e-3                          # SWA's LR is below the optimizer's
    assert peak_lr([resolved("sgd", momentum=0.9), resolved("exp_lr", lr=2e-2)]) == 2e-2


def test_at_lr_scales_every_lr_and_keeps_relative_settings():
    tricks, opt = at_lr([resolved("exp_lr", lr=2e-3, gamma=0.8)], 4e-3)
    assert tricks[0]["lr"] == 4e-3 and tricks[0]["gamma"] == 0.8 and opt == 4e-3
    tricks, opt = at_lr([resolved("swa", lr=5e-4, start_epoch=2)], 2e-3)     # SWA keeps its ratio 1/2
    assert opt == 2e-3 and math.isclose(tricks[0]["lr"], 1e-3) and tricks[0]["start_epoch"] == 2
    tricks, _ = at_lr([resolved("cyclic_lr", base_lr=1e-3, max_lr=3e-3)], 6e-3)
    assert tricks[0]["max_lr"] == 6e-3 and math.isclose(tricks[0]["base_lr"], 2e-3)
    tricks, opt = at_lr([resolved("one_cycle", max_lr=3e-3)], 1e-3)
    assert tricks[0]["max_lr"] == 1e-3 and opt is None and tricks[0]["div_factor"] == 25.0
    same = [resolved("cosine_lr", eta_min=1e-5), resolved("warmup", steps=3)]
    assert at_lr(same, 1e-3)[0] == tuple(same)                                 # at the peak: unchanged


def test_the_lr_trace_of_a_tiny_run_is_the_schedule_at_the_tuned_peak(image_folder, tmp_path):
    from tricks.running.runner import RunContext, run_one
    from tricks.training.data import DataSource

    spec = parse_spec(TUNED)
    ctx = RunContext(DataSource("imagefolder", str(image_folder)), "cpu")
    data = ctx.data()

    def trace(tricks, tuned_lr):
        s = RunSettings(spec="t", variant="v", tricks=tuple(tricks), imports=(), seed=0, epochs=2, batch_size=16,
                        train_subset=None, precision="fp32", data_kind="imagefolder", data_sha256=data.checksum,
                        validation=12, tuned_lr=tuned_lr)
        return run_one(s, ctx)["lr_trace"]

    # exp_lr at 1e-3 tuned to 4e-3 is exp_lr written at 4e-3; 1cycle at 3e-3 tuned to 4e-3 peaks at 4e-3
    decay = trace(spec.variants[1].tricks, 4e-3)
    assert decay == trace([resolved("exp_lr", lr=4e-3, gamma=0.5)], None)
    assert decay["lr"][:2] == [4e-3, 2e-3]
    cycle = trace([resolved("one_cycle")], 4e-3)
    assert cycle == trace([resolved("one_cycle", max_lr=4e-3)], None) and math.isclose(cycle["lr"][0], 4e-3 / 25)
    assert trace([], 4e-3)["lr"] == [4e-3]                                    # the baseline: constant at it


# -- keys and a real study ----------------------------------------------------------------------------

def test_untuned_runs_keep_their_keys_and_the_grid_value_changes_the_key():
    record = json.loads(next((REPO / "results" / "backprop_tricks" / "runs").glob("*.json")).read_text())
    settings = RunSettings.from_dict(record["settings"])
    assert settings.tuned_lr is None and settings.key() == record["settings_key"]
    tuned = RunSettings.from_dict({**record["settings"], "tuned_lr": 1e-3})
    assert tuned.key() != settings.key() and tuned.stem == f"{settings.variant}@lr0.001__seed{settings.seed}"


def test_a_tiny_tuned_study_runs_every_variant_at_every_grid_value(image_folder, tmp_path, capsys):
    spec = tmp_path / "tuned.toml"
    spec.write_text(TUNED)
    out = tmp_path / "res"
    args = ["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(image_folder),
            "--out", str(out), "--no-progress", "--precision", "fp32", "--workers", "1", "--device", "cpu"]
    assert main(args + ["--no-report"]) == 0
    names = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert names == ["baseline@lr0.001__seed0.json", "baseline@lr0.004__seed0.json",
                     "decay@lr0.001__seed0.json", "decay@lr0.004__seed0.json"]
    manifest = json.loads((out / "study.json").read_text())
    assert manifest["tuning"] == {"lr": [1e-3, 4e-3], "select_on": "val_accuracy"}
    assert [v["default_lr"] for v in manifest["spec"]["variants"]] == [1e-3, 1e-3]
    rows = (out / "runs.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"tuned_lr", "val_accuracy"} <= set(header) and len(rows) == 5
    assert sorted(r.split(",")[header.index("tuned_lr")] for r in rows[1:]) == ["0.001", "0.001", "0.004", "0.004"]
    assert all(0.0 <= float(r.split(",")[header.index("val_accuracy")]) <= 1.0 for r in rows[1:])

    # at the variant's own peak the grid run is the variant as written: the same numbers as an untuned run
    plain = tmp_path / "plain.toml"
    plain.write_text(TUNED.replace("[tuning]\nlr = [1e-3, 4e-3]\n", ""))
    assert main(["ablation", "--spec", str(plain), "--dataset", "imagefolder", "--data-dir", str(image_folder),
                 "--out", str(tmp_path / "plain"), "--no-progress", "--no-report", "--precision", "fp32",
                 "--device", "cpu",
                 "--workers", "1", "--variants", "decay"]) == 0
    a = json.loads((out / "runs" / "decay@lr0.001__seed0.json").read_text())
    b = json.loads((tmp_path / "plain" / "runs" / "decay__seed0.json").read_text())
    strip = lambda r: [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]]  # noqa: E731
    assert strip(a) == strip(b) and a["metrics"] == b["metrics"] and a["tuned_lr"] == 1e-3 and "tuned_lr" not in b
    capsys.readouterr()
    assert main(args) == 0                                                   # resumes: nothing to train
    assert "4 runs planned, 4 reused from earlier, 0 trained" in capsys.readouterr().out

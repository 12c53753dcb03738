"""Studies over your own training function (an entry-point workload, ``tricks.specs.entry``): the plain
example trains a study end to end through ``tricks ablation`` and everything above the engine reads it
(report, Python API, tuning, the CI check); its code and config are settings; resume after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tricks.cli import main

from .conftest import REPO

EXAMPLES = REPO / "examples"
TINY = ["--dataset", "imagefolder", "--precision", "fp32", "--device", "cpu", "--workers", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _forget_user_modules(tmp_path):
    """Each test imports the example's modules afresh, and leaves sys.path as it found it."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name, mod in list(sys.modules.items()):
        where = str(getattr(mod, "__file__", "") or "")
        if where.startswith((str(EXAMPLES), str(tmp_path))):
            del sys.modules[name]


def copy_example(tmp_path: Path, spec_text: str, name: str = "spec.toml") -> Path:
    """The example's module beside a spec of the test's own, in a folder of the test's own."""
    d = tmp_path / "study"
    d.mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / "train_plain.py", d / "train_plain.py")
    (d / name).write_text(spec_text)
    return d / name


def record(out: Path, stem: str) -> dict:
    return json.loads((out / "runs" / f"{stem}.json").read_text())


def comparable(rec: dict):
    return [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in rec["history"]], \
        rec["test_predictions"], rec["metrics"]


def test_the_plain_example_trains_a_study_that_the_report_api_and_ci_check_read(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["ablation", "--spec", str(EXAMPLES / "plain.toml"), "--data-dir", str(image_folder), "--epochs", "2",
            "--seeds", "0,1", "--out", str(out), *TINY]
    assert main(args) == 0
    assert "8 runs planned, 0 reused from earlier, 8 trained" in capsys.readouterr().out
    rec = record(out, "flip__seed1")
    s = rec["settings"]
    assert s["entry"] == "train_plain:run" and s["model"] == "train_plain:run" and s["tricks"] == []
    assert s["config"] == {"lr": 2e-3, "width": 16, "flip": True}          # the workload's keys, the factor's on top
    assert set(s["sources"]) == {"train_plain"} and len(s["sources"]["train_plain"]) == 64
    assert s["code_root"] == str(EXAMPLES)
    assert [h["epoch"] for h in rec["history"]] == [1, 2] and rec["status"] == "ok"
    assert rec["test_predictions"]["n"] == 30 and rec["metrics"]["accuracy"] == rec["history"][-1]["test_accuracy"]
    assert rec["provenance"]["entry"] == "train_plain:run" and rec["parameters"] > 0
    keys = {record(out, f"{v}__seed0")["settings_key"] for v in ("baseline", "flip", "label_smoothing", "wide")}
    assert len(keys) == 4                                                    # each config is a setting
    assert (out / "REPORT.md").is_file() and (out / "figures" / "learning_curves.png").is_file()
    manifest = json.loads((out / "study.json").read_text())
    assert [v.get("config") for v in manifest["spec"]["variants"]] == [{}, {"flip": True}, {"label_smoothing": 0.1},
                                                                       {"width": 32}]

    import tricks

    study = tricks.load_study(out)
    assert list(study.summary["variant"]) == ["baseline", "flip", "label_smoothing", "wide"]
    assert len(study.deltas) == 3 and len(study.history) == 16

    # resumed: nothing to train; the CI check's reference and comparison take the records as any others
    assert main(args) == 0
    assert "8 runs planned, 8 reused from earlier, 0 trained" in capsys.readouterr().out
    from tricks.analysis.regression import compare, make_reference
    from tricks.analysis.studydata import load_study

    data = load_study(out)
    result = compare(make_reference(data), data)     # (the tiny folder's spread can exceed what `tricks
    assert result.passed                              # check` reads back from a file: tested on real data)

    # a pre-registered claim of the study, confirmed on fresh seeds: `tricks confirm` trains and reads them
    claims = tmp_path / "claims.toml"
    claims.write_text(f'name = "c"\n[[claims]]\nname = "flip"\nstatement = "flip helps"\n'
                      f'spec = "{EXAMPLES / "plain.toml"}"\nstudy = "{out}"\nvariant = "flip"\nagainst = "baseline"\n'
                      'direction = "better"\n')
    assert main(["confirm", "--claims", str(claims), "--seeds", "5,6", "--out", str(tmp_path / "confirm"),
                 "--data-dir", str(image_folder), "--allow-dirty", *TINY]) == 0
    rows = (tmp_path / "confirm" / "confirm.csv").read_text().splitlines()
    assert rows[1].startswith("flip,flip helps,flip - baseline,better") and ",5:" in rows[1]


SPEC = """
name = "mine"
entry = "train_plain:run"
config = { lr = 2e-3, width = 8 }
[training]
epochs = 1
batch_size = 16
seeds = [0]
[[variants]]
name = "baseline"
"""


def test_editing_the_entry_module_is_a_changed_setting_refused_naming_the_module(image_folder, tmp_path, capsys):
    spec = copy_example(tmp_path, SPEC)
    out = tmp_path / "res"
    args = ["ablation", "--spec", str(spec), "--data-dir", str(image_folder), "--out", str(out), "--no-report", *TINY]
    assert main(args) == 0
    capsys.readouterr()
    with open(spec.parent / "train_plain.py", "a") as f:
        f.write("\n# an edit that changes nothing but the source\n")
    sys.modules.pop("train_plain", None)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "made with other settings" in err and "source of module 'train_plain': stored " in err
    assert main(args + ["--replace"]) == 0


def test_config_keys_are_settings_and_a_variant_inherits_its_bases(tmp_path):
    from tricks.plugins import load_spec
    from tricks.running.plan import StudyOptions, plan
    from tricks.training.data import DataSource

    spec = copy_example(tmp_path, SPEC + '[[variants]]\nname = "wide"\nbase = "baseline"\nconfig = { width = 16 }\n'
                                         '[[variants]]\nname = "wider"\nbase = "wide"\nconfig = { lr = 1e-3 }\n')
    source = DataSource("imagefolder", str(tmp_path))
    runs = plan(StudyOptions(spec=load_spec(spec), source=source, out_dir=tmp_path), {source: "0" * 64})
    assert [r.config for r in runs] == [{"lr": 2e-3, "width": 8}, {"lr": 2e-3, "width": 16}, {"lr": 1e-3, "width": 16}]
    assert len({r.key() for r in runs}) == 3 and all(r.entry == "train_plain:run" for r in runs)
    from tricks.running.settings import RunSettings

    again = RunSettings.from_dict(runs[2].to_dict())
    assert again == runs[2] and again.key() == runs[2].key()


@pytest.mark.parametrize("spec_text, message", [
    (SPEC + 'tricks = [{ name = "dropout" }]\n',
     "variant 'baseline' has tricks, but its workload trains the entry point 'train_plain:run'"),
    (SPEC.replace('entry = "train_plain:run"', 'entry = "train_plain:fit"'),
     "entry 'train_plain:fit': module 'train_plain' has no function 'fit'; its functions: "),
    (SPEC.replace('entry = "train_plain:run"', 'entry = "no_such_module:run"'),
     "entry 'no_such_module:run': cannot import module 'no_such_module'"),
    (SPEC.replace('entry = "train_plain:run"', 'entry = "train_plain.run"'), "must name a function as"),
    (SPEC.replace('entry = "train_plain:run"\n', '').replace("[training]", 'model = "tf_cnn"\n[training]')
     + 'config = { width = 3 }\n', "give either entry = ... (with its config) or model, not both"),
    ('[[workloads]]\nname = "a"\nmodel = "tf_cnn"\n[[workloads]]\nname = "b"\nentry = "train_plain:run"\n'
     '[[variants]]\nname = "v"\nconfig = { width = 3 }\n', "variant 'v' sets config keys, which only an entry-point"),
    (SPEC.replace("lr = 2e-3, ", "").replace("seeds = [0]", "seeds = [0]\nvalidation = 6")
     + '[tuning]\nlr = [1e-3, 2e-3]\n', "the configuration needs a positive lr"),
    (SPEC.replace("width = 8", "when = 1979-05-27"), "config.when must be a string, number, boolean, list or table"),
])
def test_entry_point_specs_that_could_not_run_as_written_are_refused_in_one_line(tmp_path, capsys, spec_text,
                                                                                   message):
    spec = copy_example(tmp_path, spec_text)
    assert main(["list", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


BAD_ENTRY = '''
def run(config, seed, budget, context):
    n = len(context.test_labels)
    rows = [{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5, "lr": 1e-3}]
    if config["mode"] == "reversed":
        return {"history": rows, "predictions": [0] * n, "labels": context.test_labels[::-1]}
    if config["mode"] == "no_lr":
        return {"history": [{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5}], "predictions": [0] * n,
                "labels": context.test_labels}
    if config["mode"] == "nan":
        return {"history": [{**rows[0], "train_loss": float("nan")}], "predictions": [0] * n,
                "labels": context.test_labels}
    return None
'''


@pytest.mark.parametrize("mode, status, reason", [
    ("reversed", None, "its test labels differ from the dataset's test split"),
    ("no_lr", None, "history row 1: lr is missing"),
    ("none", None, "returned NoneType; it must return a dict"),
    ("nan", "diverged", None),
])
def test_what_an_entry_point_returns_is_checked(image_folder, tmp_path, capsys, mode, status, reason):
    d = tmp_path / "study"
    d.mkdir()
    (d / "bad_entry.py").write_text(BAD_ENTRY)
    (d / "spec.toml").write_text(SPEC.replace("train_plain:run", "bad_entry:run")
                                 .replace("lr = 2e-3, width = 8", f'mode = "{mode}"'))
    out = tmp_path / "res"
    rc = main(["ablation", "--spec", str(d / "spec.toml"), "--data-dir", str(image_folder), "--out", str(out),
               "--no-report", *TINY])
    err = capsys.readouterr().err
    if reason is not None:
        assert rc == 1 and "FAILED baseline__seed0: entry 'bad_entry:run'" in err and reason in err
        assert not (out / "runs" / "baseline__seed0.json").exists()
    else:
        rec = record(out, "baseline__seed0")
        assert rc == 0 and rec["status"] == status and rec["stop_reason"] == "training loss became nan in epoch 1"


def test_the_tuning_grid_sets_the_config_lr_and_the_tuned_report_builds(image_folder, tmp_path, capsys):
    spec = copy_example(tmp_path, SPEC.replace("seeds = [0]", "seeds = [0, 1]\nvalidation = 6")
                        + '[[variants]]\nname = "wide"\nbase = "baseline"\nconfig = { width = 16 }\n'
                          '[tuning]\nlr = [1e-3, 4e-3]\n')
    out = tmp_path / "res"
    assert main(["ablation", "--spec", str(spec), "--data-dir", str(image_folder), "--out", str(out), *TINY]) == 0
    rec = record(out, "wide@lr0.004__seed1")
    assert rec["settings"]["config"] == {"lr": 4e-3, "width": 16} and rec["tuned_lr"] == 4e-3
    assert "val_accuracy" in rec["history"][0]          # the validation split the suite holds out (context.split)
    manifest = json.loads((out / "study.json").read_text())
    assert [v["default_lr"] for v in manifest["spec"]["variants"]] == [2e-3, 2e-3]
    assert (out / "selection.csv").is_file() and (out / "tuned.csv").is_file()


SLOW = '''
import os
import time

from train_plain import run as plain_run


def run(config, seed, budget, context):
    """The example, but slow after its first checkpoint while SLOW_AFTER_SAVE is set (the test kills it then)."""
    save = context.save_checkpoint

    def slow_save(state):
        save(state)
        if os.environ.get("SLOW_AFTER_SAVE"):
            time.sleep(120)
    context.save_checkpoint = slow_save
    return plain_run(config, seed, budget, context)
'''


def test_a_killed_entry_point_run_resumes_from_its_checkpoint_bit_identical(image_folder, tmp_path):
    spec = copy_example(tmp_path, SPEC.replace("train_plain:run", "slow_entry:run").replace("epochs = 1", "epochs = 3")
                        .replace('name = "mine"', 'name = "mine"\nimports = ["train_plain"]'))
    (spec.parent / "slow_entry.py").write_text(SLOW)
    out, straight = tmp_path / "res", tmp_path / "straight"
    args = [sys.executable, "-m", "tricks", "ablation", "--spec", str(spec), "--data-dir", str(image_folder),
            "--no-report", *TINY]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # the modules are found beside the spec
    proc = subprocess.Popen(args + ["--out", str(out)], cwd=tmp_path, env={**env, "SLOW_AFTER_SAVE": "1"},
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "checkpoints" / "baseline__seed0.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint in time"
    os.killpg(proc.pid, signal.SIGKILL)        # killed mid-run, after epoch 1's checkpoint
    proc.wait()
    assert not (out / "runs" / "baseline__seed0.json").exists()
    for where in (out, straight):
        done = subprocess.run(args + ["--out", str(where)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    resumed, fresh = record(out, "baseline__seed0"), record(straight, "baseline__seed0")
    assert resumed["resumed_from_epoch"] == 1 and fresh["resumed_from_epoch"] == 0
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert comparable(resumed) == comparable(fresh)
    assert resumed["settings_key"] == fresh["settings_key"]
    assert not (out / "checkpoints").exists()          # removed once the record was written

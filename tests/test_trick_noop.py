"""No silent no-op: a trick whose parameters cannot act within a spec's budget is refused when the spec
loads, naming the trick, the parameter and the budget, unless it is given ``allow_noop = true``; a run
whose budget the command line shortened trains and says so in its record. Restoring the best weights
beside an averaging trick is refused. The new parameters leave the stored settings (and keys) as
they were."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tricks.errors import SpecError
from tricks.plugins import load_plugins, parse_spec
from tricks.running.settings import RunSettings
from tricks.specs.ownership import instantiate
from tricks.specs.registry import TRICKS
from tricks.specs.types import Budget
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import train_run
from tricks.training.recipe import build_recipe

from .conftest import REPO

load_plugins()


def spec_text(trick: str, epochs: int, subset: int | None = None, extra: str = "") -> str:
    training = f"epochs = {epochs}\nbatch_size = 64\nvalidation = 100\n"
    training += f"train_subset = {subset}\n" if subset else ""
    return (f'name = "s"\n[training]\n{training}\n[[variants]]\nname = "base"\ntricks = []\n'
            f'[[variants]]\nname = "v"\ntricks = [{{ name = "{trick}"{extra} }}]\n')


# (trick, its parameters as TOML, the parameter named, a budget it cannot act in, one it can)
NOOPS = [
    ("swa", "", "start_epoch = 8", 7, 8),
    ("swa", ", start_epoch = 3", "start_epoch = 3", 2, 3),
    ("step_lr", "", "step_size = 4", 4, 5),
    ("multistep_lr", ", milestones = [5, 8]", "milestones = [5, 8]", 5, 6),
    ("early_stopping", "", "patience = 3", 4, 5),
    ("early_stopping", ", restore_best = true", "patience = 3", 1, 2),
    ("reduce_on_plateau", "", "patience = 1", 3, 4),
]


@pytest.mark.parametrize("trick, params, named, short, enough", NOOPS)
def test_a_trick_that_cannot_act_within_the_budget_is_refused_when_the_spec_loads(trick, params, named, short,
                                                                                   enough):
    with pytest.raises(SpecError) as e:
        parse_spec(spec_text(trick, short, extra=params))
    msg = str(e.value)
    assert f"variant 'v': trick '{trick}': {named}" in msg and f"budget of {short} epoch" in msg
    assert "allow_noop = true" in msg and "\n" not in msg
    parse_spec(spec_text(trick, enough, extra=params))
    spec = parse_spec(spec_text(trick, short, extra=params + ", allow_noop = true"))    # the opt-out
    assert spec.variants[1].tricks[0]["allow_noop"] is True


def test_the_boundaries_are_where_the_trick_first_acts_on_a_metric_that_never_improves():
    from tricks.specs.callbacks import EpochState

    for patience in (0, 1, 3):     # plateau: the first epoch trained at a cut LR is patience + 3
        recipe = build_recipe("v", [{"name": "reduce_on_plateau", "patience": patience}])
        opt = recipe.optimizer(torch.nn.Linear(1, 1))
        ctl = recipe.lr_controller(opt, Budget(20, 1))
        lrs = []
        for _ in range(20):
            lrs.append(opt.param_groups[0]["lr"])
            ctl.after_epoch({"val_loss": 1.0})
        first_cut = next(i for i, lr in enumerate(lrs, 1) if lr < lrs[0])
        assert first_cut == patience + 3 and recipe.tricks[0].noop_problem(Budget(patience + 3, 1)) is None
        assert recipe.tricks[0].noop_problem(Budget(patience + 2, 1)) is not None
    for patience in (1, 3):        # early stopping: the first stop is after epoch patience + 1
        cb = build_recipe("v", [{"name": "early_stopping", "patience": patience}]).callbacks()[0]
        state = EpochState(0, 20, 1e-3)
        while not state.should_stop:
            state = EpochState(state.epoch + 1, 20, 1e-3, {"val_loss": 1.0})
            cb.on_epoch_end(state)
        assert state.epoch == patience + 1
        assert TRICKS.get("early_stopping")(patience=patience).noop_problem(Budget(patience + 2, 1)) is None
        assert TRICKS.get("early_stopping")(patience=patience).noop_problem(Budget(patience + 1, 1)) is not None


def test_a_warm_up_as_long_as_the_run_is_refused_where_the_spec_fixes_the_steps():
    # 640 images at batch 64: 10 steps per epoch, 2 epochs = 20 steps
    with pytest.raises(SpecError, match=r"trick 'warmup': steps = 20 is not below the run's 20 optimizer steps.*"
                                        r"budget of 2 epochs of 10 steps"):
        parse_spec(spec_text("warmup", 2, subset=640, extra=", steps = 20"))
    parse_spec(spec_text("warmup", 2, subset=640, extra=", steps = 19"))
    parse_spec(spec_text("warmup", 2, extra=", steps = 20"))     # steps per epoch unknown: left to the run


def test_swa_with_a_start_fraction_always_starts_within_the_budget():
    for epochs in (1, 2, 10):
        parse_spec(spec_text("swa", epochs, extra=", start_fraction = 0.9"))
    assert TRICKS.get("swa")(start_fraction=0.9).noop_problem(Budget(1, 5)) is None


def test_the_refusal_exits_2_with_one_line_naming_trick_parameter_and_budget(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(spec_text("swa", 5))
    r = subprocess.run([sys.executable, "-m", "tricks", "list", "--spec", str(path)], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    line, = r.stderr.strip().splitlines()
    assert "trick 'swa': start_epoch = 8" in line and "budget of 5 epochs" in line and "allow_noop" in line


def test_restore_best_beside_an_averaging_trick_is_refused_at_load():
    for averaging in ("ema", "swa"):
        text = spec_text("early_stopping", 10, extra=", patience = 2, restore_best = true").replace(
            'tricks = [{ name = "early_stopping"', f'tricks = [{{ name = "{averaging}" }}, {{ name = "early_stopping"')
        with pytest.raises(SpecError, match=f"restore_best = true beside '{averaging}'.*set restore_best = false"):
            parse_spec(text)
        parse_spec(text.replace("restore_best = true", "restore_best = false"))
    with pytest.raises(SpecError, match="restore_best"):
        build_recipe("v", [{"name": "early_stopping", "restore_best": True}, {"name": "ema"}])


def test_a_budget_shortened_on_the_command_line_trains_and_says_so_in_the_record(image_folder, tmp_path):
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)
    tricks = ({"name": "step_lr", "step_size": 4}, {"name": "warmup", "steps": 3})
    s = RunSettings("t", "v", tricks, (), 0, 2, 16, None, "fp32", "imagefolder", ds.checksum)
    events = []
    torch.set_num_threads(1)
    r = train_run(build_recipe("v", tricks), s, ds, torch.device("cpu"), lambda kind, p: events.append((kind, p)))
    assert r["status"] == "ok" and r["epochs_run"] == 2
    assert len(r["notices"]) == 1 and "trick 'step_lr': step_size = 4" in r["notices"][0]
    assert "budget of 2 epochs of 4 steps" in r["notices"][0]
    assert ("notice", {"message": r["notices"][0]}) in events
    opted = ({"name": "step_lr", "step_size": 4, "allow_noop": True}, {"name": "warmup", "steps": 3})
    assert train_run(build_recipe("v", opted), s, ds, torch.device("cpu"))["notices"] == []


# The resolved forms stored with every committed run: the new parameters at their defaults add nothing.
STORED_FORMS = {
    "ema": {"decay": 0.999}, "swa": {"start_epoch": 8, "lr": 5e-4, "bn_update": True}, "mixup": {"alpha": 0.2},
    "cutmix": {"alpha": 1.0}, "tta": {"flip": True}, "warmup": {"steps": 200, "start_factor": 0.1},
    "step_lr": {"lr": None, "step_size": 4, "gamma": 0.1},
    "multistep_lr": {"lr": None, "milestones": [5, 8], "gamma": 0.1},
    "early_stopping": {"monitor": "val_loss", "mode": "auto", "patience": 3, "min_delta": 0.0, "restore_best": False},
    "reduce_on_plateau": {"lr": None, "factor": 0.5, "patience": 1, "threshold": 1e-3},
}


def test_new_parameters_at_their_defaults_leave_the_resolved_form_as_stored():
    for name, form in STORED_FORMS.items():
        assert TRICKS.get(name)().to_spec() == {"name": name, **form}
        assert TRICKS.get(name).version == 1


def test_every_committed_run_of_these_tricks_keeps_its_settings_key():
    checked = set()
    for path in sorted(Path(REPO, "results").glob("*/runs/*.json")):
        record = json.loads(path.read_text())
        settings = dict(record["settings"])
        names = {t["name"] for t in settings["tricks"]}
        if not names & set(STORED_FORMS):
            continue
        settings["tricks"] = [t.to_spec() for t in instantiate(settings["tricks"])]
        assert RunSettings.from_dict(settings).key() == record["settings_key"], path
        checked |= names & set(STORED_FORMS)
    assert checked == set(STORED_FORMS)

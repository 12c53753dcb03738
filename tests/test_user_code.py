"""User code that cannot silently do nothing or silently change (issue 37, item 2), and what the listing
and the Python API show of it (item 3): each silent case is refused with exit 2 and one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tricks.cli import main

from .conftest import REPO, plugin_spec

NEAR_MISS = '''
from tricks import Trick, register_trick

@register_trick
class GradCentral(Trick):
    name = "grad_central"
    description = "gradient centralization, with the hook's name misspelled"
    def before_optimiser_step(self, model):
        for p in model.parameters():
            if p.grad is not None and p.grad.dim() > 1:
                p.grad -= p.grad.mean(dim=tuple(range(1, p.grad.dim())), keepdim=True)
'''

NO_HOOK = '''
from tricks import Trick, register_trick

@register_trick
class Nothing(Trick):
    name = "nothing"
    description = "claims no hook"
    def centralize(self, model):
        pass
'''

TYPO_ATTRIBUTE = NEAR_MISS.replace("before_optimiser_step", "before_optimizer_step").replace(
    '    description = "', '    needs_validaton = True\n    description = "')


@pytest.mark.parametrize("source, message", [
    (NEAR_MISS, "defines 'before_optimiser_step', which is not a hook, so it would never be used; "
                "did you mean 'before_optimizer_step'?"),
    (NO_HOOK, "overrides no hook, so a variant with it would equal one without it; define at least one of: "),
    (TYPO_ATTRIBUTE, "defines 'needs_validaton', which is not part of the trick contract, so it would never be "
                     "used; did you mean 'needs_validation'?"),
])
def test_a_trick_that_would_silently_do_nothing_is_refused_at_load(tmp_path, plugin_module, capsys, source, message):
    plugin_module("user_tricks", source)
    spec = plugin_spec(tmp_path, "s", "user_tricks", '[[variants]]\nname = "baseline"\ntricks = []\n')
    for args in (["list", "--spec", str(spec)], ["ablation", "--spec", str(spec), "--no-progress"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "trick module 'user_tricks' listed under 'imports'" in err
        assert len(err.strip().splitlines()) == 1


MODEL = '''
from collections import OrderedDict
from torch import nn
from tricks.specs.models import Model, Sites, register_model

@register_model
class Small(Model):
    name = "small_mlp"
    description = "flatten, dense 32, ReLU, dense"
    sites = Sites(dense=("{site}",), activations=("relu",))

    def build(self, num_classes):
        return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("fc1", nn.Linear(3 * 32 * 32, 32)),
                                          ("relu", nn.ReLU()), ("fc2", nn.Linear(32, num_classes)),
                                          ("log_softmax", nn.LogSoftmax(dim=1))]))
'''


@pytest.fixture
def user_model(plugin_module):
    from tricks.specs.models import MODELS

    def write(site: str):
        MODELS.unregister("small_mlp")
        plugin_module("user_models", MODEL.replace("{site}", site))
    yield write
    MODELS.unregister("small_mlp")


def test_a_model_site_that_names_no_layer_is_refused_when_the_spec_loads(tmp_path, user_model, capsys):
    user_model("reluX")
    spec = tmp_path / "s.toml"
    spec.write_text('imports = ["user_models"]\nmodel = "small_mlp"\n[[variants]]\nname = "baseline"\n')
    for args in (["list", "--spec", str(spec)], ["ablation", "--spec", str(spec), "--no-progress"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert ("model 'small_mlp': dense site(s) 'reluX' name no layer of the network it builds; its layers: "
                "flatten, fc1, relu, fc2, log_softmax") in err and len(err.strip().splitlines()) == 1


def test_list_models_and_tricks_with_a_spec_show_its_own_with_parameters_and_sizes(tmp_path, user_model,
                                                                                    plugin_module, capsys):
    user_model("relu")
    plugin_module("user_tricks", NEAR_MISS.replace("before_optimiser_step", "before_optimizer_step"))
    spec = tmp_path / "s.toml"
    spec.write_text('imports = ["user_models", "user_tricks"]\nmodel = "small_mlp"\n[training]\nepochs = 1\n'
                    '[[variants]]\nname = "baseline"\n[[variants]]\nname = "gc"\ntricks = ["grad_central"]\n')
    assert main(["list", "models", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "small_mlp: flatten, dense 32, ReLU, dense  [used by the spec]" in out
    assert f"{3 * 32 * 32 * 32 + 32 + 32 * 10 + 10:,} parameters (10 classes)" in out and "sites dense: relu" in out
    assert "tf_cnn" not in out                      # the built-ins: tricks list models
    assert main(["list", "tricks", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "spec s imports user_models, user_tricks: 1 trick(s) of its own" in out
    assert "grad_central: gradient centralization" in out and "hooks: before_optimizer_step; version 1" in out
    assert "normalize_inputs" not in out
    assert main(["list", "--spec", str(spec)]) == 0            # without what: the spec's variants, as before
    assert "gc               base=-              grad_central()" in capsys.readouterr().out


TRICK_V1 = '''
from tricks import Trick, register_trick

@register_trick
class Shrink(Trick):
    name = "shrink"
    description = "scale the weights down after each step"
    def after_optimizer_step(self, model, optimizer):
        for p in model.parameters():
            p.data.mul_(0.999)
'''


def test_editing_an_imported_trick_without_a_version_bump_is_refused_naming_the_module(image_folder, tmp_path,
                                                                                        plugin_module, capsys):
    path = plugin_module("shrink_trick", TRICK_V1)
    spec = plugin_spec(tmp_path, "s", "shrink_trick", '[[variants]]\nname = "v"\ntricks = ["shrink"]\n', seeds=(0,))
    args = ["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(image_folder), "--device",
            "cpu", "--workers", "1", "--precision", "fp32", "--out", str(tmp_path / "res"), "--no-progress",
            "--no-report"]
    assert main(args) == 0
    import json

    settings = json.loads((tmp_path / "res" / "runs" / "v__seed0.json").read_text())["settings"]
    assert list(settings["sources"]) == ["shrink_trick"]
    capsys.readouterr()
    path.write_text(TRICK_V1.replace("0.999", "0.99"))        # other numerics, version still 1
    from tricks.specs.registry import TRICKS

    TRICKS.unregister("shrink")
    sys.modules.pop("shrink_trick", None)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "made with other settings" in err and "source of module 'shrink_trick': stored " in err


def test_imports_resolve_beside_the_spec_first_without_pythonpath(tmp_path):
    here, elsewhere = tmp_path / "study", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "beside.py").write_text(TRICK_V1.replace('"shrink"', '"beside_trick"'))
    (elsewhere / "beside.py").write_text(TRICK_V1.replace('"shrink"', '"shadowed_trick"'))
    (here / "s.toml").write_text('imports = ["beside"]\n[[variants]]\nname = "v"\ntricks = ["beside_trick"]\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for extra in ({}, {"PYTHONPATH": str(elsewhere)}):     # none set, and a module of the same name on it
        done = subprocess.run([sys.executable, "-m", "tricks", "list", "tricks", "--spec", str(here / "s.toml")],
                              cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "beside_trick: scale the weights down" in done.stdout and "shadowed" not in done.stdout


def test_a_multi_workload_studys_history_and_tables_carry_the_workload():
    import tricks

    study = tricks.load_study(REPO / "results" / "transfer")
    h = study.history
    assert list(h.columns[:4]) == ["workload", "variant", "seed", "epoch"]
    assert not h.duplicated(["workload", "variant", "seed", "epoch"]).any()
    assert set(h["workload"]) == {"tf_cnn", "3c3d", "resnet8"}
    assert "workload" in study.runs and "workload" in study.data.lr_steps()
    for table in (study.summary, study.deltas, study.transfer):
        assert "workload" in table.columns
    single = tricks.load_study(REPO / "results" / "backprop_tricks")
    assert "workload" not in single.history.columns          # a one-workload study's tables are unchanged
    doc = textwrap.dedent(type(study).__doc__)
    assert all(f"``{t}``" in doc for t in ("runs", "history", "summary", "deltas", "effects", "transfer"))
    assert "study.json" in tricks.load_study.__doc__

"""Workloads: the model registry, sites where tricks act, workloads in a spec, settings keys, and a tiny
real 2-workload study."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from tricks.cli import main
from tricks.errors import SpecError
from tricks.plugins import load_plugins, parse_spec
from tricks.running.records import load_runs
from tricks.running.settings import RunSettings
from tricks.specs.models import MODELS, Model, register_model
from tricks.training.model import count_parameters
from tricks.training.models import describe
from tricks.training.recipe import build_recipe

from .conftest import make_image_folder

REPO = Path(__file__).resolve().parent.parent
# (parameters with 10 classes, forward MFLOP per image, rounded)
BUILTIN = {"tf_cnn": (122_570, 9.1), "cifar10_3c3d": (895_210, 32.9), "resnet8": (82_202, 25.0)}


def net(model: str, *tricks: dict, classes: int = 10) -> nn.Module:
    load_plugins()
    from tricks.specs.params import resolve_params
    from tricks.specs.registry import TRICKS

    resolved = [{"name": t["name"], **resolve_params(TRICKS.get(t["name"]).params,
                                                     {k: v for k, v in t.items() if k != "name"}, t["name"])}
                for t in tricks]
    return build_recipe("v", resolved, model=model).model(0, classes)


# -- the registry -------------------------------------------------------------------------------------

def test_builtin_models_have_their_parameter_counts_flops_and_output_shape():
    load_plugins()
    assert {"tf_cnn", "cifar10_3c3d", "resnet8"} <= set(MODELS.names())
    for name, (params, mflop) in BUILTIN.items():
        d = describe(name)
        assert d["parameters"] == params and round(d["flops_per_image"] / 1e6, 1) == mflop
        m = net(name, classes=100)
        out = m(torch.rand(4, 3, 32, 32))
        assert out.shape == (4, 100) and torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)


def test_duplicates_are_refused_and_unknown_names_list_the_valid_ones():
    load_plugins()

    class Again(Model):
        name, description = "tf_cnn", "a second tf_cnn"

    with pytest.raises(ValueError, match="model 'tf_cnn' is already registered"):
        register_model(Again)
    with pytest.raises(SpecError, match="unknown model 'vgg'; valid: cifar10_3c3d, resnet8, tf_cnn"):
        MODELS.get("vgg")
    with pytest.raises(SpecError, match="spec <string>: 'model': unknown model 'vgg'; valid: cifar10_3c3d"):
        parse_spec('model = "vgg"\n[[variants]]\nname = "b"\ntricks = []\n')


# -- sites --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["tf_cnn", "cifar10_3c3d", "resnet8"])
def test_dropout_and_activation_act_on_every_model_without_changing_shape_or_parameters(model):
    params = BUILTIN[model][0]
    x = torch.rand(3, 3, 32, 32)
    drop = net(model, {"name": "dropout", "p": 0.5, "after": ["conv"]})
    n_sites = len(MODELS.get(model).sites.conv)
    assert sum(isinstance(m, nn.Dropout) for m in drop.modules()) == n_sites
    assert count_parameters(drop) == params and drop(x).shape == (3, 10)
    tanh = net(model, {"name": "activation", "fn": "tanh"})
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == len(MODELS.get(model).sites.activations)
    assert not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    assert count_parameters(tanh) == params and tanh(x).shape == (3, 10)


def test_batch_norm_adds_one_norm_per_conv_and_is_refused_where_the_model_normalizes():
    for model, channels in (("tf_cnn", (32, 64, 64)), ("cifar10_3c3d", (64, 96, 128))):
        bn = net(model, {"name": "batch_norm"})
        assert count_parameters(bn) == BUILTIN[model][0] + 2 * sum(channels)   # weight and bias per channel
        assert bn(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    text = 'model = "resnet8"\n[[variants]]\nname = "bn"\ntricks = [{ name = "batch_norm" }]\n'
    with pytest.raises(SpecError, match="variant 'bn': trick 'batch_norm' cannot apply to model 'resnet8': "
                                        "it normalizes already"):
        parse_spec(text)
    text = 'model = "resnet8"\n[[variants]]\nname = "d"\ntricks = [{ name = "dropout", after = ["dense"] }]\n'
    assert parse_spec(text).workloads[0].model == "resnet8"               # its one dense layer is a site


def test_tf_cnn_with_site_tricks_is_the_network_it_always_was():
    m = net("tf_cnn", {"name": "batch_norm"}, {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]})
    assert [n for n, _ in m.named_children()] == [
        "conv1", "bn1", "relu1", "drop_relu1", "pool1", "conv2", "bn2", "relu2", "drop_relu2", "pool2",
        "conv3", "bn3", "relu3", "drop_relu3", "flatten", "fc1", "relu4", "drop_relu4", "fc2", "log_softmax"]


def test_a_users_model_registers_from_a_spec_import(plugin_module, tmp_path):
    plugin_module("my_models", textwrap.dedent('''
        from torch import nn
        from tricks.specs.models import Model, Sites, register_model

        @register_model
        class Tiny(Model):
            name = "tiny_mlp"
            description = "flatten, dense 32, ReLU, dense"
            sites = Sites(dense=("2",), activations=("2",))   # the ReLU: layer "2" of the Sequential

            def build(self, num_classes):
                return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 32), nn.ReLU(), nn.Linear(32, num_classes),
                                     nn.LogSoftmax(dim=1))
    '''))
    try:
        spec = parse_spec('imports = ["my_models"]\nmodel = "tiny_mlp"\n[[variants]]\nname = "b"\ntricks = []\n')
        assert spec.workloads[0].model == "tiny_mlp"
        with pytest.raises(SpecError, match="cannot apply to model 'tiny_mlp': it has no conv sites"):
            parse_spec('imports = ["my_models"]\nmodel = "tiny_mlp"\n[[variants]]\nname = "d"\n'
                       'tricks = [{ name = "dropout", after = ["conv"] }]\n')
    finally:
        MODELS.unregister("tiny_mlp")


# -- specs, keys and a real study --------------------------------------------------------------------

TWO = """
name = "two"
[training]
epochs = 1
batch_size = 16
seeds = [0]
[[workloads]]
name = "tf"
model = "tf_cnn"
[[workloads]]
name = "res"
model = "resnet8"
train_subset = 30
[[variants]]
name = "baseline"
tricks = []
[[variants]]
name = "drop"
base = "baseline"
tricks = [{ name = "dropout", p = 0.2, after = ["conv"] }]
"""


@pytest.mark.parametrize("edit, message", [
    (('name = "two"', 'name = "two"\nmodel = "tf_cnn"'),
     "give either model = ... or [[workloads]]"),
    (('name = "res"', 'name = "tf"'), "workload name 'tf' is used twice"),
    (('train_subset = 30', 'steps = 30'),
     "workload #2: unknown key(s) 'steps'; valid: config, data_dir, dataset, entry, epochs, model, name, train_subset"),
    (('model = "resnet8"', 'model = "resnet99"'), "workload 'res' 'model': unknown model 'resnet99'"),
    (('train_subset = 30', 'dataset = "mnist"'),
     "workload 'res' 'dataset': unknown dataset 'mnist'; valid: cifar10, cifar100, imagefolder"),
    (('train_subset = 30', 'data_dir = " "'), "workload 'res' 'data_dir' must be a directory path"),
    (('train_subset = 30', 'data_dir = 3'), "workload 'res' 'data_dir' must be a string, got 3"),
])
def test_bad_workloads_are_refused_in_one_line(edit, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(TWO.replace(*edit, 1))


def test_the_model_is_in_the_settings_key_except_the_default():
    record = json.loads(next((REPO / "results" / "lecun_lecture" / "runs").glob("*.json")).read_text())
    s = RunSettings.from_dict(record["settings"])
    assert s.model == "tf_cnn" and s.key() == record["settings_key"]       # stored runs are still recognized
    other = RunSettings.from_dict({**record["settings"], "model": "resnet8"})
    assert other.key() != s.key()
    labelled = RunSettings.from_dict({**record["settings"], "workload": "w"})
    assert labelled.key() == s.key() and labelled.stem == f"{s.variant}@w__seed{s.seed}"


def test_a_tiny_two_workload_study_runs_every_variant_on_every_model(image_folder, tmp_path):
    spec = tmp_path / "two.toml"
    spec.write_text(TWO)
    out = tmp_path / "res"
    assert main(["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(image_folder),
                 "--out", str(out), "--no-progress", "--precision", "fp32", "--workers", "1",
                 "--device", "cpu"]) == 0
    names = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert names == ["baseline@res__seed0.json", "baseline@tf__seed0.json", "drop@res__seed0.json", "drop@tf__seed0.json"]
    res = json.loads((out / "runs" / "drop@res__seed0.json").read_text())
    assert res["workload"] == "res" and res["settings"]["model"] == "resnet8" and res["settings"]["train_subset"] == 30
    manifest = json.loads((out / "study.json").read_text())
    assert [w["model"] for w in manifest["workloads"]] == ["tf_cnn", "resnet8"]
    rows = (out / "runs.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[-3:] == ["workload", "model", "dataset"]
    assert sorted(tuple(r.split(",")[-3:]) for r in rows[1:]) == [("res", "resnet8", "imagefolder")] * 2 + \
        [("tf", "tf_cnn", "imagefolder")] * 2
    # the transfer report: one table over both workloads, and each workload's own report
    transfer = (out / "transfer.csv").read_text().splitlines()
    assert transfer[0].startswith("variant,") and sum(",res," in r or ",tf," in r for r in transfer) == 2
    assert (out / "workloads" / "tf" / "REPORT.md").is_file() and (out / "workloads" / "res" / "deltas.csv").is_file()
    assert "transfer" in (out / "REPORT.md").read_text().lower()


def test_a_workload_with_its_own_dataset_trains_and_is_scored_on_it(image_folder, tmp_path):
    """Workload 'four' trains on a 4-class folder of its own, the other on the study's 3-class one, in
    two worker processes (they map both datasets' caches); a second invocation retrains nothing."""
    four = make_image_folder(tmp_path / "four", classes=("blue", "green", "red", "teal"), n_train=8, n_test=5)
    spec = tmp_path / "own.toml"
    spec.write_text(TWO.replace('model = "resnet8"\ntrain_subset = 30', f'model = "tf_cnn"\ndata_dir = "{four}"')
                    .replace('name = "res"', 'name = "four"'))
    out = tmp_path / "res"
    argv = ["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(image_folder),
            "--out", str(out), "--no-progress", "--precision", "fp32", "--workers", "2", "--device", "cpu"]
    assert main(argv) == 0
    runs = {(r["variant"], r["workload"]): r for r in load_runs(out)}
    assert len(runs) == 4
    for v in ("baseline", "drop"):
        mine, study = runs[(v, "four")], runs[(v, "tf")]
        assert mine["classes"] == ["blue", "green", "red", "teal"] and study["classes"] == ["blue", "green", "red"]
        assert len(mine["metrics"]["confusion_matrix"]) == 4 and len(study["metrics"]["confusion_matrix"]) == 3
        assert sum(map(sum, mine["metrics"]["confusion_matrix"])) == 20     # scored on its own 4 x 5 test images
        assert mine["settings"]["data_root"] == str(four) and "data_root" not in study["settings"]
        assert mine["settings"]["data_sha256"] != study["settings"]["data_sha256"]
        assert mine["dataset"]["train_images"] == 32 and study["dataset"]["train_images"] == 60
    manifest = json.loads((out / "study.json").read_text())
    assert manifest["workloads"][1]["data_dir"] == str(four) and "data_dir" not in manifest["workloads"][0]
    assert list(manifest["workload_datasets"]) == ["four"] and len(manifest["workload_datasets"]["four"]["classes"]) == 4
    assert manifest["dataset"]["classes"] == ["blue", "green", "red"]
    # the workload's report and the transfer report's table name its own dataset
    assert "32 train / 20 test" in (out / "workloads" / "four" / "REPORT.md").read_text()
    assert "| four | `tf_cnn` | imagefolder |" in (out / "REPORT.md").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert main(argv[:-4] + ["--workers", "1", "--device", "cpu"]) == 0           # nothing to train again
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == stamps
    # the data_dir is a label, the checksum a setting: the same key wherever the dataset lies
    s = RunSettings.from_dict(runs[("drop", "four")]["settings"])
    assert RunSettings.from_dict({**runs[("drop", "four")]["settings"], "data_root": "/elsewhere"}).key() == s.key()

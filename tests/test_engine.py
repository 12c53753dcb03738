"""Training on tiny synthetic images: determinism, divergence, a toy plugin through a spec."""

import pytest
import torch

from tricks.training.data import DataSource, load_dataset
from tricks.training.recipe import build_recipe
from tricks.training.engine import train_run
from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.plugins import load_spec

from .conftest import plugin_spec

load_plugins()


@pytest.fixture
def tiny(image_folder, tmp_path):
    return load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)


def train(s, ds, device):
    """train_run with the recipe built from the settings, as the runner does."""
    return train_run(build_recipe(s.variant, s.tricks), s, ds, device)


def settings(ds, tricks=(), seed=0, epochs=3, batch=8, variant="v"):
    return RunSettings("t", variant, tuple(tricks), (), seed, epochs, batch, None, "fp32", "imagefolder",
                       ds.checksum)


def test_same_seed_twice_gives_identical_results(tiny):
    torch.set_num_threads(1)
    tricks = ({"name": "normalize_inputs"}, {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]})
    a = train(settings(tiny, tricks), tiny, torch.device("cpu"))
    b = train(settings(tiny, tricks), tiny, torch.device("cpu"))
    c = train(settings(tiny, tricks, seed=1), tiny, torch.device("cpu"))
    strip = lambda r: [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]]  # noqa
    assert strip(a) == strip(b) and a["predictions"] == b["predictions"]
    assert strip(a) != strip(c)


def test_a_cpu_run_flushes_subnormals_while_it_trains_and_restores_the_mode(tiny):
    # 1e-39 is subnormal in fp32: in flush-to-zero mode any arithmetic on it gives 0
    seen = []
    s = settings(tiny, epochs=1)
    r = train_run(build_recipe(s.variant, s.tricks), s, tiny, torch.device("cpu"),
                  on_event=lambda kind, p: seen.append(torch.tensor([1e-39]).mul(1.0).item()))
    assert r["denormals"] == "flushed"
    assert seen and all(v == 0.0 for v in seen)
    assert torch.tensor([1e-39]).mul(1.0).item() > 0.0    # the caller's IEEE mode is back


def test_history_records_lr_per_epoch_and_learning_happens(tiny):
    r = train(settings(tiny, ({"name": "normalize_inputs"}, {"name": "exp_lr", "lr": 2e-3, "gamma": 0.8}),
                           epochs=4), tiny, torch.device("cpu"))
    assert r["status"] == "ok" and r["epochs_run"] == 4
    assert [h["lr"] for h in r["history"]] == pytest.approx([2e-3 * 0.8 ** k for k in range(4)])
    assert r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]
    assert r["history"][-1]["test_accuracy"] > 0.6     # colour-coded classes: easy
    assert r["parameters"] == 122_570 - 64 * 7 - 7      # fc2 has 3 outputs here, not 10


def test_a_huge_learning_rate_diverges_and_stops_early(tiny):
    r = train(settings(tiny, ({"name": "exp_lr", "lr": 1e6, "gamma": 1.0},), epochs=3), tiny,
                  torch.device("cpu"))
    assert r["status"] == "diverged" and r["epochs_run"] == 1
    assert "epoch 1" in r["stop_reason"]


TOY = '''
from tricks.specs.base import Trick
from tricks.specs.callbacks import Callback
from tricks.specs.params import Param
from tricks.specs.registry import register_trick


class StopAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, state):
        if state.epoch >= self.epochs:
            state.should_stop, state.stop_reason = True, f"toy: stop after {self.epochs}"


@register_trick
class ToyEarlyStop(Trick):
    name = "toy_early_stop"
    description = "Stop training after a fixed number of epochs (a test plugin)."
    params = (Param("epochs", int, 1, "epochs to train", low=1),)

    def callbacks(self):
        return [StopAfter(self.p["epochs"])]
'''


def test_a_toy_trick_added_as_one_module_runs_through_a_spec(tmp_path, plugin_module, image_folder):
    plugin_module("toy_tricks_mod", TOY)
    spec_path = plugin_spec(tmp_path, "toy", "toy_tricks_mod", '''
        [[variants]]
        name = "baseline"
        [[variants]]
        name = "early"
        base = "baseline"
        tricks = [{ name = "toy_early_stop", epochs = 2 }]
    ''', epochs=4, seeds=(0,))
    spec = load_spec(spec_path)
    from tricks.cli import main

    out = tmp_path / "res"
    rc = main(["ablation", "--device", "cpu", "--spec", str(spec_path), "--dataset", "imagefolder", "--data-dir",
               str(image_folder),
               "--workers", "1", "--out", str(out), "--no-progress"])
    assert rc == 0
    import json

    rec = json.loads((out / "runs" / "early__seed0.json").read_text())
    assert rec["epochs_run"] == 2 and rec["stop_reason"] == "toy: stop after 2"
    assert rec["settings"]["tricks"] == [{"name": "toy_early_stop", "epochs": 2}]
    assert json.loads((out / "runs" / "baseline__seed0.json").read_text())["epochs_run"] == 4
    assert spec.variants[1].tricks[0]["name"] == "toy_early_stop"

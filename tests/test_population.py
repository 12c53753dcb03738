"""Population training (training.population, training.cohort): members equal solo runs in fp32 (first
step's loss and gradients within 1e-5 relative; 1-epoch accuracies over 8 seeds indistinguishable),
each member keeps its own streams, schedule, callbacks, divergence, record fields and checkpoint, the
run is deterministic, and what cannot be batched falls back. The tests marked ``cuda`` need a GPU and
skip with the reason elsewhere."""

from __future__ import annotations

import pytest
import torch

from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.training.checkpoint import Checkpoints
from tricks.training.cohort import can_join, train_cohort
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import train_run
from tricks.training.population import MemberRNG, PopulationNet, signature
from tricks.training.recipe import build_recipe

from .conftest import cuda_or_skip

load_plugins()
CPU = torch.device("cpu")
RECORDER = '''
import math
from tricks.specs.base import Trick
from tricks.specs.callbacks import Callback
from tricks.specs.params import Param
from tricks.specs.registry import register_trick


@register_trick
class RecordGrads(Trick):
    name = "record_grads"
    description = "Keeps a copy of every gradient before each optimizer step (a test plugin)."

    def __init__(self, **given):
        super().__init__(**given)
        self.grads = []

    def before_optimizer_step(self, model):
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})


class StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            state.should_stop, state.stop_reason = True, f"stopped at epoch {self.epoch} (test)"


@register_trick
class StopAtEpoch(Trick):
    name = "stop_at_epoch"
    description = "Stops the run after a given epoch (a test plugin)."
    params = (Param("epoch", int, 1, "the epoch after which to stop", low=1),)

    def callbacks(self):
        return [StopAt(self.p["epoch"])]


@register_trick
class NanLoss(Trick):
    name = "nan_loss"
    description = "Adds NaN to the training loss: the run diverges at once (a test plugin)."

    def loss_term(self, model):
        return next(model.parameters()).sum() * math.nan
'''
# the recipes the issue names: the baseline, dropout, weight decay, the exp schedule, augmentation
RECIPES = {
    "baseline": [],
    "dropout": [{"name": "dropout", "p": 0.3, "after": ["conv", "dense"]}],
    "weight_decay": [{"name": "weight_decay", "weight_decay": 1e-3}],
    "exp_lr": [{"name": "exp_lr", "lr": 2e-3, "gamma": 0.8}],
    "augment": [{"name": "augment", "padding": 4, "flip_p": 0.5}],
}


@pytest.fixture
def tiny(image_folder, tmp_path, plugin_module):
    plugin_module("population_test_mod", RECORDER)
    load_plugins(("population_test_mod",))
    return load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)


def settings(ds, tricks, seed, epochs=1, batch=64, device="cpu"):
    return RunSettings("t", "v", tuple(tricks), ("population_test_mod",), seed, epochs, batch, None, "fp32",
                       "imagefolder", ds.checksum, device=device)


def solo(ds, tricks, seed, device=CPU, **kw):
    s = settings(ds, tricks, seed, device=device.type, **kw)
    recipe = build_recipe(s.variant, s.tricks)
    torch.set_num_threads(1)
    return recipe, train_run(recipe, s, ds, device)


def population(ds, tricks_by_member, seeds, device=CPU, checkpoints=None, emits=None, **kw):
    ss = [settings(ds, t, s, device=device.type, **kw) for t, s in zip(tricks_by_member, seeds)]
    recipes = [build_recipe(s.variant, s.tricks) for s in ss]
    torch.set_num_threads(1)
    outs = train_cohort(recipes, ss, ds, device, emits or [lambda k, p: None] * len(ss),
                        checkpoints or [None] * len(ss), {"cohort": "test", "size": len(ss)})
    return recipes, outs


def grads_of(recipe):
    return next(t for t in recipe.tricks if t.name == "record_grads").grads


def comparable(r):
    history = [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]]
    return history, r["predictions"], r["lr_trace"], r["status"], r["stop_reason"], r["epochs_run"]


def close(a: float, b: float, rel: float = 1e-5) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_members_first_step_equals_its_solo_run_in_fp32(name, tiny):
    """One step per epoch (60 images, batch 64): the epoch's training loss is the first step's loss;
    every gradient tensor within 1e-5 of its solo value, relative to the tensor's largest entry."""
    tricks = RECIPES[name] + [{"name": "record_grads"}]
    seeds = (0, 1, 2)
    recipes, outs = population(tiny, [tricks] * 3, seeds)
    for seed, recipe, out in zip(seeds, recipes, outs):
        solo_recipe, alone = solo(tiny, tricks, seed)
        assert close(out["history"][0]["train_loss"], alone["history"][0]["train_loss"]), (name, seed)
        (g_pop,), (g_solo,) = grads_of(recipe), grads_of(solo_recipe)
        assert g_pop.keys() == g_solo.keys()
        for n in g_solo:
            scale = float(g_solo[n].abs().max())
            assert scale > 0, (name, seed, n)
            assert float((g_pop[n] - g_solo[n]).abs().max()) <= 1e-5 * scale, (name, seed, n)
        assert out["lr_trace"] == alone["lr_trace"]
        assert out["population"] == {"cohort": "test", "size": 3, "index": seeds.index(seed)}


def test_members_keep_their_own_schedules_and_every_solo_field(tiny):
    """Different variants of one shape in one population: each member's LR trace is its solo trace,
    its record has every field a solo record has (and which cohort it trained in), its losses stay
    within float rounding of its solo run over several steps and epochs."""
    members = [RECIPES["baseline"], RECIPES["exp_lr"], RECIPES["weight_decay"], [{"name": "sgd", "lr": 0.05}]]
    _, outs = population(tiny, members, (0, 1, 2, 3), epochs=3, batch=16)
    for tricks, seed, out in zip(members, (0, 1, 2, 3), outs):
        _, alone = solo(tiny, tricks, seed, epochs=3, batch=16)
        assert set(out) - {"population"} == set(alone)
        assert [set(h) for h in out["history"]] == [set(h) for h in alone["history"]]
        assert out["lr_trace"] == alone["lr_trace"] and out["optimizer"] == alone["optimizer"]
        assert all(close(a["train_loss"], b["train_loss"], 1e-4) for a, b in zip(out["history"], alone["history"]))


def test_a_population_run_is_deterministic(tiny):
    tricks = RECIPES["dropout"] + RECIPES["augment"]
    _, a = population(tiny, [tricks] * 3, (0, 1, 2), epochs=2, batch=16)
    _, b = population(tiny, [tricks] * 3, (0, 1, 2), epochs=2, batch=16)
    assert [comparable(r) for r in a] == [comparable(r) for r in b]


def test_a_member_that_stops_or_diverges_leaves_the_others_going(tiny):
    members = [[], [{"name": "stop_at_epoch", "epoch": 1}], [{"name": "nan_loss"}], []]
    _, outs = population(tiny, members, (0, 1, 2, 3), epochs=3, batch=16)
    fine, stopped, nan, other = outs
    assert stopped["epochs_run"] == 1 and stopped["stop_reason"] == "stopped at epoch 1 (test)"
    assert stopped["status"] == "ok"
    assert nan["status"] == "diverged" and nan["epochs_run"] == 1 and nan["stop_reason"].startswith("training loss")
    for seed, out in ((0, fine), (3, other)):          # the NaN member poisoned nothing
        _, alone = solo(tiny, [], seed, epochs=3, batch=16)
        assert out["status"] == "ok" and out["epochs_run"] == 3
        assert all(close(a["train_loss"], b["train_loss"], 1e-4) for a, b in zip(out["history"], alone["history"]))


class Interrupt(Exception):
    pass


def test_an_interrupted_population_resumes_per_member_and_ends_bit_identical(tiny, tmp_path):
    tricks = RECIPES["dropout"] + RECIPES["augment"] + RECIPES["exp_lr"]
    seeds = (0, 1, 2)
    _, straight = population(tiny, [tricks] * 3, seeds, epochs=4, batch=16)
    ss = [settings(tiny, tricks, s, epochs=4, batch=16) for s in seeds]
    cks = [Checkpoints(tmp_path / f"{s.stem}.pt", s.key()) for s in ss]

    def stop(kind, p):
        if kind == "epoch" and p["epoch"] == 3:
            raise Interrupt
    with pytest.raises(Interrupt):
        population(tiny, [tricks] * 3, seeds, checkpoints=cks, emits=[stop] * 3, epochs=4, batch=16)
    assert [ck.load()[0]["epoch"] for ck in cks] == [2, 2, 2]
    _, resumed = population(tiny, [tricks] * 3, seeds, checkpoints=cks, epochs=4, batch=16)
    assert [r["resumed_from_epoch"] for r in resumed] == [2, 2, 2]
    assert [comparable(r) for r in resumed] == [comparable(r) for r in straight]


def test_what_cannot_be_batched_is_refused_or_falls_back(tiny):
    assert can_join(build_recipe("v", [])) is None
    assert "sam" in can_join(build_recipe("v", [{"name": "sam"}]))
    base = build_recipe("v", []).model(0, 3)
    drop = build_recipe("v", RECIPES["dropout"]).model(0, 3)
    assert signature(base) is not None and signature(base) != signature(drop)   # another shape: another cohort
    with pytest.raises(ValueError, match="one shape"):
        PopulationNet([base, drop], MemberRNG(CPU))


@pytest.mark.slow
def test_one_epoch_accuracies_over_8_seeds_are_indistinguishable_from_solo(real_images, tmp_path):
    """Paired over 8 seeds (1 epoch on 2,000 real images, normalized inputs and dense dropout): the
    95% interval of the mean accuracy difference (population - solo) contains 0."""
    from scipy import stats

    ds = load_dataset(DataSource("imagefolder", str(real_images)), progress=False)
    tricks = [{"name": "normalize_inputs"}, {"name": "dropout", "p": 0.2, "after": ["dense"]}]
    seeds = tuple(range(8))
    ss = [RunSettings("t", "v", tuple(tricks), (), s, 1, 64, 2000, "fp32", "imagefolder", ds.checksum) for s in seeds]
    torch.set_num_threads(1)
    pop = train_cohort([build_recipe("v", tricks) for _ in seeds], ss, ds, CPU, [lambda k, p: None] * 8, [None] * 8,
                       {"cohort": "slow", "size": 8})
    alone = [train_run(build_recipe("v", tricks), s, ds, CPU) for s in ss]
    diffs = [p["history"][-1]["test_accuracy"] - a["history"][-1]["test_accuracy"] for p, a in zip(pop, alone)]
    mean, sem = sum(diffs) / 8, stats.sem(diffs) if any(diffs) else 0.0
    half = stats.t.ppf(0.975, 7) * sem
    assert mean - half <= 0 <= mean + half, (diffs, mean, half)
    accs = [a["history"][-1]["test_accuracy"] for a in alone]
    assert sum(accs) / 8 > 0.15, accs       # above chance (0.10): they learned, so the comparison means something


# -- on a GPU (skipped with the reason elsewhere) --------------------------------------------------

@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_cuda_a_members_first_step_equals_its_solo_run(name, tiny):
    device = cuda_or_skip()
    tricks = RECIPES[name] + [{"name": "record_grads"}]
    recipes, outs = population(tiny, [tricks] * 2, (0, 1), device=device)
    for seed, recipe, out in zip((0, 1), recipes, outs):
        solo_recipe, alone = solo(tiny, tricks, seed, device=device)
        assert close(out["history"][0]["train_loss"], alone["history"][0]["train_loss"]), (name, seed)
        (g_pop,), (g_solo,) = grads_of(recipe), grads_of(solo_recipe)
        for n in g_solo:
            assert float((g_pop[n] - g_solo[n]).abs().max()) <= 1e-5 * float(g_solo[n].abs().max()), (name, n)


@pytest.mark.cuda
def test_cuda_a_population_run_is_deterministic(tiny):
    device = cuda_or_skip()
    tricks = RECIPES["dropout"] + RECIPES["augment"]
    _, a = population(tiny, [tricks] * 3, (0, 1, 2), device=device, epochs=2, batch=16)
    _, b = population(tiny, [tricks] * 3, (0, 1, 2), device=device, epochs=2, batch=16)
    assert [comparable(r) for r in a] == [comparable(r) for r in b]

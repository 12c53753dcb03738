"""What a population shares (training.cohort, training.population, training.build): one copy of the data
per process (a cohort of 8 holds no more memory than a solo run beyond its models), one optimizer step
over every member's parameter groups (bit for bit the members' own steps), one grouped forward pass per
evaluation batch (within float rounding of each member's own evaluation), and the one step and epoch
loop of a solo run; resnet8 joins a population too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.training import cohort as cohort_mod, member as member_mod, population as population_mod
from tricks.training.build import shared_splits
from tricks.training.cohort import evaluate_members, train_cohort
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import evaluate_solo, train_run
from tricks.training.member import Member
from tricks.training.population import merge_optimizers
from tricks.training.recipe import build_recipe

from .conftest import REPO

load_plugins()
CPU = torch.device("cpu")
MEMORY = r'''
import sys, torch
from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.training.cohort import train_cohort
from tricks.training.data import Dataset, DataSource
from tricks.training.engine import train_run
from tricks.training.recipe import build_recipe
load_plugins()
members = int(sys.argv[1])
g = torch.Generator().manual_seed(0)
ds = Dataset(torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(50_000) % 10,
             torch.zeros(10, 3, 32, 32, dtype=torch.uint8), torch.arange(10), [str(c) for c in range(10)],
             DataSource("imagefolder", "/nowhere"), "0" * 64)
def rss():     # MB resident now (a peak could predate the baseline: a transient of the imports, say)
    line = next(line for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024
before = rss()
class Stop(Exception):
    pass
grown = []
def emit(kind, payload):
    if kind == "step":   # after 50 steps: every member built, its data in place, training under way
        grown.append(rss() - before)
        raise Stop
ss = [RunSettings("t", "v", (), (), seed, 1, 8, None, "fp32", "imagefolder", "0" * 64) for seed in range(members)]
try:
    if members == 1:
        train_run(build_recipe("v", []), ss[0], ds, torch.device("cpu"), emit)
    else:
        train_cohort([build_recipe("v", []) for _ in ss], ss, ds, torch.device("cpu"), [emit] * members,
                     [None] * members, {"cohort": "m", "size": members})
except Stop:
    pass
print(grown[0])   # MB over the dataset's own, while training: the run's data copy, models, activations
'''


@pytest.fixture
def tiny(image_folder, tmp_path):
    return load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)


def settings(ds, tricks, seed, epochs=1, batch=16, model="tf_cnn"):
    return RunSettings("t", "v", tuple(tricks), (), seed, epochs, batch, None, "fp32", "imagefolder", ds.checksum,
                       model=model)


def cohort(ds, tricks_by_member, seeds, **kw):
    ss = [settings(ds, t, s, **kw) for t, s in zip(tricks_by_member, seeds)]
    torch.set_num_threads(1)
    return train_cohort([build_recipe("v", s.tricks, model=s.model) for s in ss], ss, ds, CPU,
                        [lambda k, p: None] * len(ss), [None] * len(ss), {"cohort": "t", "size": len(ss)})


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident memory from /proc")
def test_a_cohort_of_8_holds_one_copy_of_the_data():
    """50,000 training images (154 MB): a cohort of 8 grows the process by no more than a solo run does
    plus its models and activations (8 copies would add 1.1 GB, one more copy 154 MB)."""
    def grown(members: int) -> float:
        r = subprocess.run([sys.executable, "-c", MEMORY, str(members)], capture_output=True, text=True, cwd=REPO,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return float(r.stdout.strip().splitlines()[-1])
    solo, eight = grown(1), grown(8)
    assert solo >= 140, solo          # the solo run's own training split: one copy (the check sees copies)
    assert eight - solo < 100, (solo, eight)


def test_the_splits_are_made_once_per_process(tiny):
    a = shared_splits(tiny, 0, None, CPU)
    assert shared_splits(tiny, 0, None, CPU) is a and shared_splits(tiny, 0, 30, CPU) is not a
    runs = [Member.build(i, build_recipe("v", []), settings(tiny, [], i), tiny, CPU, lambda k, p: None, None).run
            for i in range(3)]
    assert all(r.train_x is runs[0].train_x and r.test_x is runs[0].test_x for r in runs)


def test_merged_optimizers_step_each_member_bit_for_bit():
    """Adam members with their own LRs, weight decays and parameter groups, and an SGD member: the merged
    step leaves every parameter and every member's optimizer state exactly as the members' own steps."""
    def members():
        torch.manual_seed(0)
        models = [nn.Linear(4, 3) for _ in range(4)]
        opts = [torch.optim.Adam(models[0].parameters(), lr=1e-2),
                torch.optim.Adam([{"params": [models[1].weight], "weight_decay": 0.1},
                                  {"params": [models[1].bias], "lr": 3e-3}], lr=1e-2),
                torch.optim.Adam(models[2].parameters(), lr=5e-2, betas=(0.8, 0.9)),
                torch.optim.SGD(models[3].parameters(), lr=0.1, momentum=0.9)]
        return models, opts

    def train(merge: bool):
        models, opts = members()
        stepping = merge_optimizers(opts) if merge else opts
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            for m in models:
                m.weight.grad, m.bias.grad = torch.randn(3, 4, generator=g), torch.randn(3, generator=g)
            for o in stepping:
                o.step()
        return models, opts, stepping
    (alone, alone_opts, _), (merged, merged_opts, stepping) = train(False), train(True)
    assert len(stepping) == 2 and {type(o) for o in stepping} == {torch.optim.Adam, torch.optim.SGD}
    for a, b in zip(alone, merged):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    for a, b in zip(alone_opts, merged_opts):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
        for k in sa["state"]:
            assert all(torch.equal(sa["state"][k][n], sb["state"][k][n]) for n in sa["state"][k])


def test_a_population_steps_one_optimizer_per_class(tiny):
    """Four members (three Adam, one SGD), 4 steps: 8 optimizer steps in all, two optimizers stepped."""
    stepped = []
    handle = register_optimizer_step_post_hook(lambda opt, a, k: stepped.append(opt))
    try:
        outs = cohort(tiny, [[], [{"name": "exp_lr", "lr": 2e-3, "gamma": 0.8}], [{"name": "weight_decay"}],
                             [{"name": "sgd", "lr": 0.05}]], (0, 1, 2, 3))
    finally:
        handle.remove()
    assert all(o["status"] == "ok" for o in outs)
    assert len(stepped) == 8 and len({id(o) for o in stepped}) == 2


def test_batched_evaluation_is_each_members_own_within_rounding(tiny, monkeypatch):
    members = [Member.build(i, build_recipe("v", t), settings(tiny, t, i), tiny, CPU, lambda k, p: None, None)
               for i, t in enumerate([[], [{"name": "normalize_inputs"}], [], [{"name": "tta"}]])]
    calls = []
    real = population_mod.PopulationNet.forward
    monkeypatch.setattr(population_mod.PopulationNet, "forward", lambda self, xs, ids: calls.append(len(xs))
                        or real(self, xs, ids))
    got = evaluate_members(members, [m.run.model for m in members], True)
    n = tiny.test_y.numel()
    assert calls and set(calls) == {3} and len(calls) == -(-n // (250 // 3))   # tta's member alone: not grouped
    for m, (vp, vl, preds, loss) in zip(members, got):
        _, _, own_preds, own_loss = evaluate_solo(m, m.run.model)
        assert vp is None and vl is None
        assert (preds == own_preds).float().mean() >= 0.9 and abs(loss - own_loss) <= 1e-5 * abs(own_loss)


def test_solo_runs_and_populations_share_one_step_and_epoch_loop(tiny, monkeypatch):
    """Both go through member.fit and steps.step_loop (the engine's and the cohort's only loops)."""
    seen = []
    for module, name in ((member_mod, "fit"), (cohort_mod, "fit"), (cohort_mod, "step_loop")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _r=real, _n=name, **k: seen.append(_n) or _r(*a, **k))
    import tricks.training.engine as engine
    for name in ("fit", "step_loop"):
        real = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda *a, _r=real, _n=name, **k: seen.append(f"solo {_n}") or _r(*a, **k))
    train_run(build_recipe("v", []), settings(tiny, [], 0), tiny, CPU)
    cohort(tiny, [[], []], (0, 1))
    assert seen == ["solo fit", "solo step_loop", "fit", "step_loop"]


def test_resnet8_joins_a_population_and_matches_its_solo_runs(tiny):
    """Its residual blocks run per member inside the population: first epoch's loss within 1e-5."""
    outs = cohort(tiny, [[], []], (0, 1), model="resnet8", batch=64)
    for seed, out in zip((0, 1), outs):
        s = settings(tiny, [], seed, model="resnet8", batch=64)
        alone = train_run(build_recipe("v", [], model="resnet8"), s, tiny, CPU)
        a, b = out["history"][0]["train_loss"], alone["history"][0]["train_loss"]
        assert abs(a - b) <= 1e-5 * abs(b), (seed, a, b)
    assert json.dumps(outs[0]["population"]) == '{"cohort": "t", "size": 2, "index": 0}'

"""The step loop (training.steps) never waits for the device inside a training step, solo or in a
population: on the CPU, no ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``, ``float()``, ``int()``
or ``bool()`` of a tensor is called from code outside torch (this package: the engine, the population,
the tricks) between a step's first batch and the epoch's last progress event (torch's own calls, on
host-side tensors such as Adam's step counts, are torch's); on CUDA (a ``cuda`` test) torch's own sync
detector raises on any synchronization there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.training import steps
from tricks.training.cohort import train_cohort
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import train_run
from tricks.training.recipe import build_recipe

from .conftest import cuda_or_skip

load_plugins()
TORCH = str(Path(torch.__file__).parent)
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")
# tricks that draw or compute in a step (their host-side draws, mixup's and cutmix's, have their own cuda test)
TRICKS = [{"name": "normalize_inputs"}, {"name": "augment"}, {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]},
          {"name": "grad_clip"}, {"name": "ema"}, {"name": "one_cycle"}, {"name": "label_smoothing"}]


@pytest.fixture
def ds(image_folder, tmp_path):
    return load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)


class Guard:
    """Records every tensor sync called from outside torch while a step is on: from the first batch's
    preparation (``steps.prepare``) to the epoch's last progress event."""

    def __init__(self, monkeypatch):
        self.active, self.calls = False, []
        real_prepare = steps.prepare

        def prepare(*args, **kwargs):
            self.active = True
            return real_prepare(*args, **kwargs)
        monkeypatch.setattr(steps, "prepare", prepare)
        for name in SYNCS:
            monkeypatch.setattr(torch.Tensor, name, self._watch(name, getattr(torch.Tensor, name)))

    def _watch(self, name, real):
        def watched(tensor, *args, **kwargs):
            if self.active:
                frame = sys._getframe(1)
                if not frame.f_code.co_filename.startswith(TORCH):
                    self.calls.append(f"{name} at {frame.f_code.co_filename}:{frame.f_lineno}")
            return real(tensor, *args, **kwargs)
        return watched

    def emit(self, kind, payload):
        if kind == "step" and payload["step"] == payload["steps"]:
            self.active = False      # the epoch's steps are done: the epoch's end may read its sums


def settings(ds, tricks_, seed, device="cpu"):
    return RunSettings("t", "v", tuple(tricks_), (), seed, 2, 16, None, "fp32", "imagefolder", ds.checksum,
                       device=device)


def test_no_host_sync_inside_a_solo_step(ds, monkeypatch):
    guard = Guard(monkeypatch)
    s = settings(ds, TRICKS, 0)
    out = train_run(build_recipe("v", TRICKS), s, ds, torch.device("cpu"), guard.emit)
    assert out["status"] == "ok" and out["epochs_run"] == 2
    assert guard.calls == []


def test_no_host_sync_inside_a_population_step(ds, monkeypatch):
    guard = Guard(monkeypatch)
    ss = [settings(ds, TRICKS, seed) for seed in (0, 1, 2)]
    outs = train_cohort([build_recipe("v", TRICKS) for _ in ss], ss, ds, torch.device("cpu"),
                        [guard.emit] * 3, [None] * 3, {"cohort": "t", "size": 3})
    assert [o["epochs_run"] for o in outs] == [2, 2, 2]
    assert guard.calls == []


def test_the_guard_sees_a_sync(ds, monkeypatch):
    """A trick that reads a tensor's value in a step is caught (the guard works)."""
    guard = Guard(monkeypatch)
    real = steps.objective

    def syncing(hooks, model, out, targets):
        loss = real(hooks, model, out, targets)
        float(loss.detach())       # a host sync inside the step
        return loss
    monkeypatch.setattr(steps, "objective", syncing)
    ss = [settings(ds, [], seed) for seed in (0, 1)]
    train_cohort([build_recipe("v", []) for _ in ss], ss, ds, torch.device("cpu"), [guard.emit] * 2, [None] * 2,
                 {"cohort": "t", "size": 2})
    assert guard.calls and all(c.startswith("__float__") for c in guard.calls)


@pytest.mark.cuda
@pytest.mark.parametrize("members", [1, 3])
def test_cuda_no_sync_inside_a_step(ds, monkeypatch, members):
    """torch's sync detector in "error" mode for every step (solo: 1, population: 3)."""
    device = cuda_or_skip()
    real_prepare = steps.prepare

    def prepare(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        return real_prepare(*args, **kwargs)

    def emit(kind, payload):
        if kind == "step" and payload["step"] == payload["steps"]:
            torch.cuda.set_sync_debug_mode(0)
    monkeypatch.setattr(steps, "prepare", prepare)
    ss = [settings(ds, TRICKS, seed, "cuda") for seed in range(members)]
    try:
        if members == 1:
            outs = [train_run(build_recipe("v", TRICKS), ss[0], ds, device, emit)]
        else:
            outs = train_cohort([build_recipe("v", TRICKS) for _ in ss], ss, ds, device, [emit] * members,
                                [None] * members, {"cohort": "t", "size": members})
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(o["epochs_run"] == 2 for o in outs)

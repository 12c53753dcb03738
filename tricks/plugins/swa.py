"""Stochastic weight averaging (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and
Better Generalization"): from its start epoch on, train at the SWA learning rate ``lr`` and evaluate
the equal-weight average of the weights at the end of every epoch since.

Reference: ``torch.optim.swa_utils``: ``AveragedModel(model)`` updated at the end of every SWA epoch,
``SWALR(optimizer, swa_lr, anneal_epochs, anneal_strategy)`` and ``update_bn`` on the training
data; the average and its batch-norm statistics equal theirs (``tests/test_trick_references.py``).

Epochs count from 1. The start is ``start_epoch``, or, with ``start_fraction`` f, epoch
``floor(f * epochs) + 1`` of the run's budget (Lightning's ``swa_epoch_start``: 0.7 of 10 epochs
starts at epoch 8, as ``start_epoch = 8`` does). A start after the last epoch would never average:
the spec is refused (``allow_noop`` runs it anyway). The weights at the end of each epoch from the
start on are folded into the average (the first fold copies them), so the evaluation of the start
epoch already sees the average (of one snapshot). Before it, evaluation sees the trained model. The
epoch is the trick's own count of optimizer steps (``Budget.steps_per_epoch`` per epoch), so a
warm-up that holds a per-epoch schedule does not shift the switch.

Learning rate: the trick owns the LR schedule (a deviation: the reference follows any schedule up to
the start; here the epochs before the start train at the optimizer's constant lr, so it cannot follow
a cosine or a step decay). From the start on: with ``anneal_epochs = 0`` (default, this trick's
behaviour before it had the choice) every epoch trains at ``lr``; with A > 0 the start epoch + j
trains at the LR ``SWALR(anneal_epochs=A, anneal_strategy=...)`` gives after j + 1 of its steps
(``lr * a + base * (1 - a)``, a = the strategy's curve at ``min(1, (j + 1) / A)``), reaching ``lr``
at epoch start + A - 1. (SWALR is stepped at the end of an epoch, so the reference's first averaged
epoch still trains at the base LR: here the annealing starts one epoch earlier, as the jump does.)

Buffers are not averaged (``use_buffers=False``): each fold copies the trained model's. With
``bn_update`` the batch-norm statistics of the averaged weights are re-estimated on the training split
(no augmentation) before they are evaluated, once per fold: an equal-weight average over its batches
(``update_bn``), every other module in eval mode, so dropout draws nothing from the global RNG (the
dropout masks' stream; ``update_bn`` puts the whole model in training mode).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.lr_scheduler import LambdaLR

from ..errors import SpecError
from ..specs.base import ALLOW_NOOP, Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..specs.types import Budget, Schedule, TrainSplit
from .ema import Shadow, copy_buffers


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> bool:
    """Reset every batch-norm layer's statistics to the equal-weight average over ``batches`` of the
    per-batch statistics (``torch.optim.swa_utils.update_bn``, but only the BN layers in training mode).
    Leaves ``model`` in eval mode; returns whether it has batch-norm layers at all."""
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        return False
    momenta = [m.momentum for m in bns]
    model.eval()
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None                 # cumulative average over the batches
            m.train()
        for x in batches:
            model(x)
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.eval()
    return True


def anneal_curve(strategy: str, t: float) -> float:
    """SWALR's anneal function at ``t`` in [0, 1]: 0 keeps the base LR, 1 is the SWA LR."""
    return (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t


@register_trick
class SWA(Trick):
    name = "swa"
    description = ("From its start epoch on, train at the SWA lr (optionally annealed to it) and evaluate the "
                   "average of the end-of-epoch weights (AveragedModel + SWALR + update_bn; owns the LR schedule).")
    params = (
        # 8 of the 10-epoch budget: the last 3 epochs (30%) are averaged, close to the paper's last ~25% of
        # the budget and to Lightning's StochasticWeightAveraging default (swa_epoch_start=0.8).
        Param("start_epoch", int, 8, "first epoch at the SWA lr whose end is averaged (epochs count from 1)",
              low=1, high=10**6),
        # unset: start_epoch decides. A fraction follows the budget (--epochs): 0.7 of 10 epochs is epoch 8.
        Param("start_fraction", float, None, "start at epoch floor(start_fraction x epochs) + 1 instead of "
              "start_epoch (a fraction of the budget)", low=0.0, high=1.0, high_open=True, omit_default=True),
        # 5e-4: half of Adam's default 1e-3. SWA wants a constant LR large enough that the snapshots differ
        # (explore the basin) yet below the base LR; the paper's CIFAR runs use a fraction of the initial LR.
        Param("lr", float, 5e-4, "SWA learning rate from the start epoch on (per optimizer step)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # True: the averaged weights' activations differ from every snapshot's, so copied statistics are
        # stale (the paper's "update BN" pass); no effect on a model without batch norm.
        Param("bn_update", bool, True, "re-estimate batch-norm statistics of the average on the training split"),
        # 0: a jump to lr at the start, this trick's behaviour before it had the choice (SWALR's default: 10)
        Param("anneal_epochs", int, 0, "epochs over which the LR anneals from the optimizer's lr to the SWA lr "
              "(SWALR; 0: it jumps)", low=0, high=10**6, omit_default=True),
        Param("anneal_strategy", str, "cos", "shape of the annealing (SWALR's)", choices=("cos", "linear"),
              omit_default=True),
        ALLOW_NOOP,
    )

    def __init__(self, **given: Any):
        super().__init__(**given)
        if "start_epoch" in given and given.get("start_fraction") is not None:
            raise SpecError(f"trick '{self.name}': give start_epoch or start_fraction, not both")
        self.average = Shadow()
        self.steps = 0              # optimizer steps seen
        self.folds = 0              # snapshots in the average
        self.bn_folds = 0           # folds when the average's BN statistics were last re-estimated
        self.steps_per_epoch: int | None = None
        self.start: int | None = None   # the first averaged epoch, once the budget is known

    def start_for(self, epochs: int) -> int:
        """The first averaged epoch of an ``epochs``-epoch run (from 1)."""
        fraction = self.p["start_fraction"]
        if fraction is None:
            return self.p["start_epoch"]
        return math.floor(Fraction(repr(fraction)) * epochs) + 1    # the decimal fraction, exactly

    def check_budget(self, budget: Budget) -> None:
        if self.start_for(budget.epochs) > budget.epochs:
            self.refuse_noop("start_epoch", "starts after the last epoch, so it would never average (the "
                             "variant would equal one without it)", budget,
                             "lower start_epoch or give start_fraction (a fraction of the budget)")

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        if self.p["start_fraction"] is not None:
            del spec["start_epoch"]          # not used: the fraction decides
        return spec

    def _epoch(self) -> int:
        """The epoch the next optimizer step belongs to (from 1)."""
        return self.steps // self.steps_per_epoch + 1

    def factor(self, base: float, epoch: int) -> float:
        """The LR of ``epoch`` as a multiple of the optimizer's ``base`` lr."""
        if epoch < self.start:
            return 1.0
        swa = self.p["lr"] / base if base > 0 else 0.0
        anneal = self.p["anneal_epochs"]
        if anneal == 0:
            return swa
        a = anneal_curve(self.p["anneal_strategy"], min(1.0, (epoch - self.start + 1) / anneal))
        return swa * a + (1 - a) if base > 0 else 0.0

    def lr_schedule(self, optimizer: torch.optim.Optimizer, budget: Budget) -> Schedule:
        self.steps_per_epoch = budget.steps_per_epoch
        self.start = self.start_for(budget.epochs)

        def factor_for(base: float):
            return lambda _: self.factor(base, self._epoch())

        # closures, not bound methods: LambdaLR.state_dict stores None for functions (plain checkpoints)
        lambdas = [factor_for(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        return Schedule(LambdaLR(optimizer, lambdas), interval="epoch")

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.steps_per_epoch is None:
            raise RuntimeError("swa: lr_schedule was not called, so the epoch length is unknown")
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0 and self.steps // self.steps_per_epoch >= self.start:
            self.fold(model)
    @torch.no_grad()
    def fold(self, model: nn.Module) -> None:
        """avg <- avg + (w - avg) / (n + 1): the mean of the n + 1 snapshots."""
        average = self.average.get(model)
        if average is None:
            self.average.start(model)
        else:
            for a, p in zip(average.parameters(), model.parameters(), strict=True):
                a.add_((p.detach() - a).div_(self.folds + 1))
            copy_buffers(average, model)
        self.folds += 1

    def evaluation_model(self, model: nn.Module, train: TrainSplit) -> nn.Module:
        average = self.average.get(model)
        if average is None:
            return model
        if self.p["bn_update"] and self.bn_folds != self.folds:
            reestimate_bn(average, train.batches())
            self.bn_folds = self.folds
        return average

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "folds": self.folds, "bn_folds": self.bn_folds,
                "average": self.average.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.folds, self.bn_folds = state["steps"], state["folds"], state["bn_folds"]
        self.average.load_state_dict(state["average"])

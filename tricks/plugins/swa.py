"""Stochastic weight averaging (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and
Better Generalization"): from ``start_epoch`` on, train at a constant learning rate ``lr`` and
evaluate the equal-weight average of the weights at the end of every epoch since.

Epochs count from 1. Epochs ``start_epoch``, ``start_epoch + 1``, ... train at ``lr`` (every
parameter group), the earlier ones at the optimizer's own lr; the weights at the end of each of
those epochs are folded into the average (the first fold copies them), so the evaluation of epoch
``start_epoch`` already sees the average (of one snapshot). Before it, evaluation sees the trained
model. The epoch is the trick's own count of optimizer steps (``Budget.steps_per_epoch`` per
epoch), so a warm-up that holds a per-epoch schedule does not shift the switch.

Buffers are not averaged: each fold copies the trained model's. With ``bn_update`` the batch-norm
statistics of the averaged weights are re-estimated on the training split (no augmentation) before
they are evaluated, once per fold: an equal-weight average over its batches, every other module in
eval mode, so dropout draws nothing from the global RNG (the dropout masks' stream).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.lr_scheduler import LambdaLR

from ..specs.base import Trick
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


@register_trick
class SWA(Trick):
    name = "swa"
    description = "From start_epoch on, train at a constant lr and evaluate the average of the end-of-epoch weights."
    params = (
        # 8 of the 10-epoch budget: the last 3 epochs (30%) are averaged, close to the paper's last ~25% of
        # the budget and to Lightning's StochasticWeightAveraging default (swa_epoch_start=0.8).
        Param("start_epoch", int, 8, "first epoch at the SWA lr whose end is averaged (epochs count from 1)",
              low=1, high=10**6),
        # 5e-4: half of Adam's default 1e-3. SWA wants a constant LR large enough that the snapshots differ
        # (explore the basin) yet below the base LR; the paper's CIFAR runs use a fraction of the initial LR.
        Param("lr", float, 5e-4, "constant learning rate from start_epoch on (per optimizer step)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # True: the averaged weights' activations differ from every snapshot's, so copied statistics are
        # stale (the paper's "update BN" pass); no effect on a model without batch norm.
        Param("bn_update", bool, True, "re-estimate batch-norm statistics of the average on the training split"),
    )

    def __init__(self, **given: Any):
        super().__init__(**given)
        self.average = Shadow()
        self.steps = 0              # optimizer steps seen
        self.folds = 0              # snapshots in the average
        self.bn_folds = 0           # folds when the average's BN statistics were last re-estimated
        self.steps_per_epoch: int | None = None

    def _epoch(self) -> int:
        """The epoch the next optimizer step belongs to (from 1)."""
        return self.steps // self.steps_per_epoch + 1

    def lr_schedule(self, optimizer: torch.optim.Optimizer, budget: Budget) -> Schedule:
        self.steps_per_epoch = budget.steps_per_epoch

        def factor_for(base: float):
            swa = self.p["lr"] / base if base > 0 else 0.0
            return lambda _: swa if self._epoch() >= self.p["start_epoch"] else 1.0

        # closures, not bound methods: LambdaLR.state_dict stores None for functions (plain checkpoints)
        lambdas = [factor_for(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        return Schedule(LambdaLR(optimizer, lambdas), interval="epoch")

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.steps_per_epoch is None:
            raise RuntimeError("swa: lr_schedule was not called, so the epoch length is unknown")
        self.steps += 1
        if self.steps % self.steps_per_epoch == 0 and self.steps // self.steps_per_epoch >= self.p["start_epoch"]:
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

"""Piecewise-constant decay: multiply the learning rate by gamma at given epochs (``MultiStepLR``, stepped
per epoch: torch's reference use). Milestones all at or above the epochs never cut: refused when the
spec loads (``allow_noop`` runs it anyway)."""

from __future__ import annotations

import torch

from ..errors import SpecError
from ..specs.base import ALLOW_NOOP, Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class MultiStepLR(Trick):
    name = "multistep_lr"
    description = "Multiply the LR by gamma at each listed epoch (MultiStepLR)."
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # epochs 5 and 8: ResNet's cuts at 50% and 75% of training (He et al. 2016), on a 10-epoch budget
        Param("milestones", list, [5, 8], "epochs (positive integers) after which the LR is cut"),
        # 0.1: MultiStepLR's default, the classic divide-by-ten cut
        Param("gamma", float, 0.1, "LR multiplier at each milestone", low=0.0, low_open=True, high=1.0),
        ALLOW_NOOP,
    )

    def check_budget(self, budget) -> None:
        if min(self.p["milestones"]) >= budget.epochs:   # a cut after epoch m takes effect in epoch m + 1
            self.refuse_noop("milestones", "all lie at or after the last epoch: the LR would never be cut", budget,
                             "give an earlier milestone")

    def __init__(self, **given):
        super().__init__(**given)
        bad = [m for m in self.p["milestones"] if isinstance(m, bool) or not isinstance(m, int) or m < 1]
        if bad:
            raise SpecError(f"trick '{self.name}': parameter 'milestones' must list positive integers (epochs), "
                            f"got {bad!r} in {self.p['milestones']!r}")
        self.p["milestones"] = sorted(self.p["milestones"])

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        return Schedule(torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.p["milestones"],
                                                             gamma=self.p["gamma"]), interval="epoch")

"""Step decay: multiply the learning rate by gamma every step_size epochs (``StepLR``, stepped per epoch:
torch's reference use). A step_size at or above the epochs never cuts: refused when the spec loads
(``allow_noop`` runs it anyway)."""

from __future__ import annotations

import torch

from ..specs.base import ALLOW_NOOP, Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class StepLR(Trick):
    name = "step_lr"
    description = "Multiply the LR by gamma every step_size epochs (StepLR)."
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 4 epochs: two cuts (after epochs 4 and 8) in the study's 10-epoch budget
        Param("step_size", int, 4, "epochs between two cuts", low=1, high=10**6),
        # 0.1: StepLR's default, the classic divide-by-ten cut (He et al. 2016)
        Param("gamma", float, 0.1, "LR multiplier at each cut", low=0.0, low_open=True, high=1.0),
        ALLOW_NOOP,
    )

    def check_budget(self, budget) -> None:
        if self.p["step_size"] >= budget.epochs:     # the first cut takes effect in epoch step_size + 1
            self.refuse_noop("step_size", "is at or above the epochs: the LR would never be cut", budget,
                             "lower step_size")

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.p["step_size"], gamma=self.p["gamma"])
        return Schedule(sched, interval="epoch")

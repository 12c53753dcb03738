"""Cosine annealing of the learning rate (Loshchilov & Hutter, SGDR), without restarts."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import INTERVALS, Schedule


@register_trick
class CosineLR(Trick):
    name = "cosine_lr"
    description = "Anneal the LR along a half cosine from its start value to eta_min by the end of training."
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        Param("eta_min", float, 0.0, "LR at the end of training (per optimizer step)", low=0.0, high=1e6, is_lr=True),
        # per epoch, as CosineAnnealingLR is used in torchvision's references; "step" gives a smooth curve
        Param("interval", str, "epoch", "step the schedule after every epoch or every optimizer step",
              choices=INTERVALS),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        t_max = budget.main_steps if self.p["interval"] == "step" else budget.main_epochs
        return Schedule(torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=self.p["eta_min"]),
                        interval=self.p["interval"])

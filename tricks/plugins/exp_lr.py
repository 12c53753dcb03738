"""A higher starting learning rate decayed exponentially, once per epoch."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class ExponentialLR(Trick):
    name = "exp_lr"
    description = "Start Adam at a higher learning rate and multiply it by gamma after every epoch."
    params = (
        # The study: lr 2e-3 (twice Adam's default), decayed "about 20% per epoch".
        Param("lr", float, 2e-3, "initial learning rate (per optimizer step)", low=0.0, low_open=True, high=1e6, is_lr=True),
        Param("gamma", float, 0.8, "multiplicative decay applied once per epoch", low=0.0, high=1.0, low_open=True),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}

    def lr_schedule(self, optimizer: torch.optim.Optimizer, budget) -> Schedule:
        return Schedule(torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.p["gamma"]), interval="epoch")

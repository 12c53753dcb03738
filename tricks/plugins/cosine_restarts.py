"""Cosine annealing with warm restarts (Loshchilov & Hutter 2017, SGDR), stepped per epoch."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class CosineRestarts(Trick):
    name = "cosine_restarts"
    description = "Anneal the LR along a half cosine to eta_min, restarting every T_0, T_0*T_mult, ... epochs (SGDR)."
    params = (
        Param("lr", float, None, "LR at each restart (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 5 epochs with T_mult 1: two equal cycles fit the study's 10-epoch budget exactly
        Param("T_0", int, 5, "epochs of the first cycle", low=1, high=10**6),
        # 1: the class's default (equal cycles); 2 doubles each cycle as in the SGDR paper
        Param("T_mult", int, 1, "factor by which each cycle is longer than the one before", low=1, high=1000),
        # 0: the class's default, as cosine_lr's eta_min
        Param("eta_min", float, 0.0, "LR at the end of each cycle (per optimizer step)", low=0.0, high=1e6, is_lr=True),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        return Schedule(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=self.p["T_0"], T_mult=self.p["T_mult"], eta_min=self.p["eta_min"]), interval="epoch")

"""Polynomial decay of the learning rate to zero by the end of training (``PolynomialLR``), per epoch."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class PolyLR(Trick):
    name = "poly_lr"
    description = "Decay the LR as lr * (1 - epoch/epochs)**power, reaching 0 at the end of training."
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.9: the 'poly' policy of DeepLab (Chen et al. 2017); 1.0 is a straight line
        Param("power", float, 0.9, "exponent of the decay", low=0.0, low_open=True, high=100.0),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        return Schedule(torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=budget.main_epochs,
                                                              power=self.p["power"]), interval="epoch")

"""ReduceLROnPlateau on the validation loss: cut the LR when it stops improving."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class ReduceOnPlateau(Trick):
    name = "reduce_on_plateau"
    description = "Multiply the LR by factor when the validation loss has not improved for patience epochs."
    needs_validation = True
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.5 and 1 epoch, not PyTorch's 0.1 and 10: a 10-epoch budget leaves room for a few gentle cuts only
        Param("factor", float, 0.5, "LR multiplier at each cut", low=0.0, low_open=True, high=1.0, high_open=True),
        Param("patience", int, 1, "epochs without improvement before a cut", low=0, high=10**6),
        Param("threshold", float, 1e-3, "relative improvement of the validation loss that counts", low=0.0, high=1.0),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.p["factor"], patience=self.p["patience"],
            threshold=self.p["threshold"], threshold_mode="rel")
        return Schedule(sched, interval="epoch", monitor="val_loss")

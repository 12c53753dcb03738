"""Linear decay of the learning rate over the training epochs (``LinearLR``)."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class LinearLR(Trick):
    name = "linear_lr"
    description = "Move the LR linearly from start_factor x lr to end_factor x lr by the end of training, per epoch."
    params = (
        Param("lr", float, None, "LR the factors multiply (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 1.0: start at the optimizer's LR (a decay; the warmup trick covers ramps up)
        Param("start_factor", float, 1.0, "LR of the first epoch as a fraction of lr",
              low=0.0, low_open=True, high=1.0),
        # 0.0: decay to zero by the end, the endpoint of cosine_lr (eta_min 0), so the two differ in shape only
        Param("end_factor", float, 0.0, "LR after the last epoch as a fraction of lr", low=0.0, high=1.0),
    )

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        return Schedule(torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=self.p["start_factor"], end_factor=self.p["end_factor"],
            total_iters=budget.main_epochs), interval="epoch")

"""AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class AdamW(Trick):
    name = "adamw"
    description = "Train with AdamW (decoupled weight decay) instead of Adam with coupled L2."
    params = (
        Param("lr", float, None, "learning rate (per optimizer step); unset: the baseline's 1e-3",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.01: AdamW's default. Always set (the baseline's weight_decay 0 would otherwise replace it), so this
        # trick and weight_decay both own optimizer.weight_decay and cannot be combined
        Param("weight_decay", float, 0.01, "decoupled decay: weights shrink by lr * weight_decay per step",
              low=0.0, high=1e3),
    )

    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        return torch.optim.AdamW

    def optimizer_settings(self) -> dict:
        return {"weight_decay": self.p["weight_decay"], "lr": self.p["lr"]}   # lr None: unset

"""Xavier (Glorot & Bengio 2010) initialization: weights with variance 2/(fan_in + fan_out)."""

from __future__ import annotations

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class XavierInit(Trick):
    name = "xavier_init"
    description = "Xavier/Glorot init (gain 1) on conv and linear weights, zero biases."
    params = (
        # uniform: the paper's 'normalized initialization', U(-sqrt(6/(fan_in+fan_out)), +...)
        Param("distribution", str, "uniform", "draw weights from a uniform or a normal distribution",
              choices=("uniform", "normal")),
    )

    def init_weights(self, model: nn.Module, generator: torch.Generator) -> None:
        fill = nn.init.xavier_uniform_ if self.p["distribution"] == "uniform" else nn.init.xavier_normal_
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fill(m.weight, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

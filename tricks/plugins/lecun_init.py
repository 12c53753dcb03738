"""LeCun initialization (Efficient BackProp, LeCun et al. 1998, sec. 4.6): weights with variance 1/fan_in."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class LecunInit(Trick):
    name = "lecun_init"
    description = "LeCun init: conv and linear weights with mean 0 and std 1/sqrt(fan_in), zero biases."
    params = (
        # normal: N(0, 1/fan_in), as Efficient BackProp states it (and as jax/Keras' lecun_normal)
        Param("distribution", str, "normal", "normal N(0, 1/fan_in), or uniform with the same variance",
              choices=("uniform", "normal")),
    )

    def init_weights(self, model: nn.Module, generator: torch.Generator) -> None:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                std = 1.0 / math.sqrt(m.weight[0].numel())     # fan_in = in_channels * kernel area
                if self.p["distribution"] == "normal":
                    nn.init.normal_(m.weight, 0.0, std, generator=generator)
                else:
                    bound = math.sqrt(3.0) * std                   # U(-a, a) has variance a^2 / 3
                    nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

"""He (Kaiming) initialization for ReLU networks."""

from __future__ import annotations

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class KaimingInit(Trick):
    name = "kaiming_init"
    description = "Kaiming init for ReLU on conv and linear weights, zero biases."
    params = (
        Param("distribution", str, "uniform", "draw weights from a uniform or a normal distribution",
              choices=("uniform", "normal")),
        Param("mode", str, "fan_in", "preserve the variance of activations (fan_in) or gradients (fan_out)",
              choices=("fan_in", "fan_out")),
    )

    def init_weights(self, model: nn.Module, generator: torch.Generator) -> None:
        fill = nn.init.kaiming_uniform_ if self.p["distribution"] == "uniform" else nn.init.kaiming_normal_
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fill(m.weight, mode=self.p["mode"], nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

"""Swap the network's ReLUs for another activation function."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class Activation(Trick):
    name = "activation"
    description = "Replace every ReLU (relu1..relu4) with tanh, sigmoid, leaky_relu or relu, keeping the layer names."
    params = (
        # tanh: the symmetric sigmoid Efficient BackProp (LeCun et al. 1998, sec. 4.4) prefers to the logistic
        Param("fn", str, "tanh", "activation function", choices=("tanh", "sigmoid", "leaky_relu", "relu")),
        # 0.01: nn.LeakyReLU's default
        Param("negative_slope", float, 0.01, "slope for x < 0 of leaky_relu (ignored otherwise)", low=0.0, high=1.0),
    )

    def make(self) -> nn.Module:
        fn = self.p["fn"]
        if fn == "leaky_relu":
            return nn.LeakyReLU(self.p["negative_slope"])
        return {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}[fn]()

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        # same names (relu1..relu4), so tricks that insert after them (dropout) still find them
        return nn.Sequential(OrderedDict((n, self.make() if isinstance(m, nn.ReLU) else m)
                                         for n, m in model.named_children()))

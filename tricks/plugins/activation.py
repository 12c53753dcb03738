"""Swap the network's activations (the model's ``activations`` sites) for another function."""

from __future__ import annotations

from torch import nn

from ..errors import SpecError
from ..specs.base import Trick
from ..specs.models import Model, Sites
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.models import replace_site


@register_trick
class Activation(Trick):
    name = "activation"
    description = "Replace every activation (tf_cnn: relu1..relu4) with tanh, sigmoid, leaky_relu or relu, keeping the names."
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

    def check_model(self, model: type[Model]) -> None:
        if not model.sites.activations:
            raise SpecError(f"trick '{self.name}' cannot apply to model '{model.name}': it declares no activation sites")

    def modify_model(self, model: nn.Module, sites: Sites) -> nn.Module:
        # same names, so tricks that insert after them (dropout) still find them
        for path in sites.activations:
            model = replace_site(model, path, self.make())
        return model

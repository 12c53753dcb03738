"""Dropout after the dense layer's ReLU, after each conv layer's ReLU, or both."""

from __future__ import annotations

from torch import nn

from ..base import Trick
from ..model import CONV_RELUS, DENSE_RELUS, insert_after
from ..params import Param
from ..registry import register_trick

SITES = {"conv": CONV_RELUS, "dense": DENSE_RELUS}


@register_trick
class Dropout(Trick):
    name = "dropout"
    description = "Insert Dropout(p) after the ReLU of each conv layer and/or of the first dense layer."
    params = (
        Param("p", float, 0.2, "probability of zeroing an activation (per element, training only)",
              low=0.0, high=1.0, high_open=True),
        Param("after", list, ["dense"], "where to insert dropout", choices=("conv", "dense")),
    )

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        for site in self.p["after"]:
            for relu in SITES[site]:
                model = insert_after(model, relu, f"drop_{relu}", nn.Dropout(self.p["p"]))
        return model

"""Dropout after the dense layer's ReLU, after each conv layer's ReLU, or both."""

from __future__ import annotations

import torch
from torch import nn

from ..base import Trick
from ..model import CONV_RELUS, DENSE_RELUS, insert_after
from ..params import Param
from ..registry import register_trick

SITES = {"conv": CONV_RELUS, "dense": DENSE_RELUS}


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the same semantics (an independent keep/drop draw per element with
    P(drop) = p, kept values scaled by 1/(1-p), identity in eval mode), but the mask is drawn as
    ``rand < 1-p`` in one vectorized pass: on CPU that is about 2.5x faster than the Bernoulli
    sampler behind ``nn.Dropout``, which nearly doubled the time of conv-dropout runs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        mask = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * mask


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
                model = insert_after(model, relu, f"drop_{relu}", FastDropout(self.p["p"]))
        return model

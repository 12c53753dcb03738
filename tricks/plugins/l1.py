"""L1 regularization of the conv and linear weights, added to the training loss."""

from __future__ import annotations

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class L1(Trick):
    name = "l1"
    description = "Add strength x sum of |w| over conv and linear weights (not biases) to the training loss."
    params = (
        # 1e-5: the default-initialized net has sum |w| ~ 2.5e3, so the term starts at ~0.025, about 1% of
        # the initial NLL (ln 10 = 2.3): a noticeable but not dominating pull towards sparse weights. Not tuned.
        Param("strength", float, 1e-5, "coefficient of the sum of absolute weights (added to the per-batch mean loss)",
              low=0.0, high=1e3),
    )

    def loss_term(self, model: nn.Module) -> torch.Tensor:
        weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        return self.p["strength"] * sum(w.abs().sum() for w in weights)

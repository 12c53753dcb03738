"""Plain SGD with (heavy-ball or Nesterov) momentum instead of Adam."""

from __future__ import annotations

import torch

from ..errors import SpecError
from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class SGD(Trick):
    name = "sgd"
    description = "Train with SGD with momentum instead of Adam."
    params = (
        # unset by default, like every schedule's lr, so that sgd composes with a schedule that sets the LR
        # (e.g. exp_lr lr = 2e-2); alone and unset, SGD runs at the baseline's 1e-3 (torch.optim.SGD's
        # default too), usually too low for SGD: 1e-2 is the common SGD+momentum LR for small CIFAR-10 CNNs
        Param("lr", float, None, "learning rate (per optimizer step); unset: the one a schedule trick sets, "
              "else the baseline's 1e-3", low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.9: the standard heavy-ball momentum (Sutskever et al. 2013; ResNet)
        Param("momentum", float, 0.9, "momentum factor", low=0.0, high=1.0, high_open=True),
        # false: classic heavy-ball momentum, as torch.optim.SGD's default; Nesterov is its own ablation
        Param("nesterov", bool, False, "use Nesterov momentum (needs momentum > 0)"),
    )

    def __init__(self, **given):
        super().__init__(**given)
        if self.p["nesterov"] and self.p["momentum"] == 0:
            raise SpecError(f"trick '{self.name}': nesterov = true needs momentum > 0 (got momentum 0)")

    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        return torch.optim.SGD

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"], "momentum": self.p["momentum"], "nesterov": self.p["nesterov"]}   # lr None: unset

"""Cyclical learning rates (Smith 2017): the LR cycles between base_lr and max_lr, per optimizer step.

``CyclicLR`` sets the optimizer's LR to base_lr itself, so this trick has no ``lr`` parameter. Momentum is
not cycled (``cycle_momentum=False``): Adam's parameter groups have no 'momentum' key.
"""

from __future__ import annotations

import torch

from ..errors import SpecError
from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class CyclicLR(Trick):
    name = "cyclic_lr"
    description = "Cycle the LR between base_lr and max_lr in triangles of 2 x step_size_up optimizer steps (CLR)."
    sets_lr_itself = True    # the optimizer's lr is overwritten at the first step
    params = (
        # 1e-3 to 3e-3: from Adam's default (the baseline's stable LR) up by 3x, Smith's max_lr/base_lr ratio of 3-4
        Param("base_lr", float, 1e-3, "lowest LR of a cycle (per optimizer step)", low=0.0, low_open=True, high=1e6, is_lr=True),
        Param("max_lr", float, 3e-3, "highest LR of a cycle (per optimizer step)", low=0.0, low_open=True, high=1e6, is_lr=True),
        # 2000 steps: the class's default, about 2.6 epochs at 782 steps per epoch (Smith: 2-10 epochs)
        Param("step_size_up", int, 2000, "optimizer steps from base_lr up to max_lr (and as many back down)",
              low=1, high=10**9),
        Param("mode", str, "triangular", "triangular: constant amplitude; triangular2: halved every cycle; "
              "exp_range: scaled by gamma**step", choices=("triangular", "triangular2", "exp_range")),
        # 1.0: the class's default (used by exp_range only)
        Param("gamma", float, 1.0, "per-step amplitude factor of mode exp_range", low=0.0, low_open=True, high=1.0),
    )

    def __init__(self, **given):
        super().__init__(**given)
        if self.p["max_lr"] <= self.p["base_lr"]:
            raise SpecError(f"trick '{self.name}': max_lr ({self.p['max_lr']:g}) must be above base_lr "
                            f"({self.p['base_lr']:g})")

    def lr_schedule(self, optimizer, budget) -> Schedule:
        p = self.p
        return Schedule(torch.optim.lr_scheduler.CyclicLR(
            optimizer, base_lr=p["base_lr"], max_lr=p["max_lr"], step_size_up=p["step_size_up"], mode=p["mode"],
            gamma=p["gamma"], cycle_momentum=False), interval="step")

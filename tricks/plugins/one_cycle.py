"""The 1cycle policy (Smith & Topin 2019): LR up to max_lr and down far below the start, per optimizer step.

``OneCycleLR`` sets the optimizer's LR itself (max_lr / div_factor at the first step), so this trick has no
``lr`` parameter: it would be overwritten.
"""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class OneCycle(Trick):
    name = "one_cycle"
    description = "1cycle: ramp the LR up to max_lr, then anneal it far below its start, over the budget (per step)."
    sets_lr_itself = True    # the optimizer's lr is overwritten at the first step
    params = (
        # 3e-3: three times Adam's default 1e-3 (the baseline's stable LR); Smith peaks above the stable LR. Not tuned.
        Param("max_lr", float, 3e-3, "peak LR (per optimizer step)", low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.3, cos, 25, 1e4: OneCycleLR's defaults
        Param("pct_start", float, 0.3, "fraction of the steps spent increasing the LR",
              low=0.0, high=1.0, low_open=True, high_open=True),
        Param("anneal_strategy", str, "cos", "shape of both phases", choices=("cos", "linear")),
        Param("div_factor", float, 25.0, "start LR = max_lr / div_factor", low=1.0, high=1e9),
        Param("final_div_factor", float, 1e4, "final LR = start LR / final_div_factor", low=1.0, high=1e12),
        # true: the class's default and Smith's policy (momentum, or Adam's beta1, cycles 0.95 -> 0.85 -> 0.95)
        Param("cycle_momentum", bool, True, "cycle momentum (SGD) or beta1 (Adam) inversely to the LR"),
    )

    def lr_schedule(self, optimizer, budget) -> Schedule:
        p = self.p
        return Schedule(torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=p["max_lr"], total_steps=budget.main_steps, pct_start=p["pct_start"],
            anneal_strategy=p["anneal_strategy"], div_factor=p["div_factor"], final_div_factor=p["final_div_factor"],
            cycle_momentum=p["cycle_momentum"]), interval="step")

"""Linear learning-rate warm-up over the first optimizer steps, in front of any schedule.

Reference: ``LinearLR(start_factor, 1.0, total_iters=steps)`` chained in front of the main schedule,
as torchvision's classification references chain it (``training.schedule`` composes the two). A
warm-up as long as the run or longer never trains at the full LR and leaves no step to a schedule
behind it: refused where the run's steps are known when the spec loads (a ``train_subset``), else
noted in the run's record (``allow_noop`` runs it anyway, without either)."""

from __future__ import annotations

from ..specs.base import ALLOW_NOOP, Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Warmup


@register_trick
class LinearWarmup(Trick):
    name = "warmup"
    description = "Ramp the LR linearly from start_factor x lr to lr over the first steps, then hand over to the schedule."
    params = (
        # 200 steps = a quarter of an epoch at batch 64 on CIFAR-10's 50,000 images (782 steps per epoch):
        # long enough to tame Adam's first, poorly estimated updates, short against a 10-epoch budget.
        Param("steps", int, 200, "optimizer steps of warm-up", low=1, high=10**7),
        Param("start_factor", float, 0.1, "LR of the first step as a fraction of the full LR",
              low=0.0, low_open=True, high=1.0),
        ALLOW_NOOP,
    )

    def check_budget(self, budget) -> None:
        if budget.steps_per_epoch and self.p["steps"] >= budget.total_steps:
            self.refuse_noop("steps", f"is not below the run's {budget.total_steps} optimizer steps: the LR would "
                             "never reach its full value nor any schedule after it act", budget, "lower steps")

    def warmup(self) -> Warmup:
        return Warmup(self.p["steps"], self.p["start_factor"])

"""Linear learning-rate warm-up over the first optimizer steps, in front of any schedule."""

from __future__ import annotations

from ..specs.base import Trick
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
    )

    def warmup(self) -> Warmup:
        return Warmup(self.p["steps"], self.p["start_factor"])

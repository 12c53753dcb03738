"""L2 weight decay through the optimizer's ``weight_decay`` (coupled L2 in Adam, as the study did)."""

from __future__ import annotations

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class WeightDecay(Trick):
    name = "weight_decay"
    description = "Add L2 weight decay (Adam's coupled weight_decay) to every parameter."
    params = (
        # 1e-4: a common L2 strength for small CNNs on CIFAR-10; the study gives no value.
        Param("weight_decay", float, 1e-4, "L2 coefficient added to the gradient (per step)", low=0.0, high=1.0),
    )

    def optimizer_settings(self) -> dict:
        return {"weight_decay": self.p["weight_decay"]}

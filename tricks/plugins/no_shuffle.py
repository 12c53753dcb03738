"""No shuffling: the lecture's "shuffle the examples" ablated."""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.registry import register_trick


@register_trick
class NoShuffle(Trick):
    name = "no_shuffle"
    description = "Train on the images in their stored order every epoch (an image folder: sorted by class)."

    def data_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.arange(n)

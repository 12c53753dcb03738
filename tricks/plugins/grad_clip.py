"""Gradient clipping by global norm, between backward and the optimizer step."""

from __future__ import annotations

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class GradClip(Trick):
    name = "grad_clip"
    description = "Rescale the gradients so that their global L2 norm is at most max_norm (clip_grad_norm_)."
    params = (
        # 1.0: the customary default (e.g. Hugging Face Trainer's max_grad_norm)
        Param("max_norm", float, 1.0, "largest L2 norm of all gradients together, per optimizer step",
              low=0.0, low_open=True, high=1e9),
    )

    def before_optimizer_step(self, model: nn.Module) -> None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.p["max_norm"])

"""An exponential moving average (EMA) of the weights, evaluated instead of the trained weights.

Convention (pinned by ``tests/test_trick_ema_swa_sam.py``): the shadow starts as an exact copy of
the weights after the first optimizer step, with no bias correction and no warm-up of the decay;
after every later step ``shadow = decay * shadow + (1 - decay) * weights`` (``lerp_``). After k
steps that is ``decay**(k-1) * w_1 + sum_{i=2..k} (1 - decay) * decay**(k-i) * w_i``. Buffers
(batch-norm running statistics) are not averaged: the shadow takes the trained model's after every
step. Until the first step, evaluation sees the trained model itself.

``Shadow`` is the frozen copy and its checkpoint form, shared with ``swa``: a checkpoint holds its
state dict (tensors), and a loaded one is materialized on the next model the hooks are given (the
trick has no model when the engine calls ``load_state_dict``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..specs.types import TrainSplit


class Shadow:
    """A frozen copy of a model (no gradients, eval mode), made on demand; its state is plain data."""

    def __init__(self):
        self.module: nn.Module | None = None
        self._pending: dict[str, torch.Tensor] | None = None   # loaded, not yet given a model

    def start(self, model: nn.Module) -> nn.Module:
        """A fresh copy of ``model``'s weights and buffers (same devices and memory formats)."""
        self.module = copy.deepcopy(model).requires_grad_(False).eval()
        self._pending = None
        return self.module

    def get(self, model: nn.Module) -> nn.Module | None:
        """The copy, materialized from a loaded state on ``model``'s architecture; None before ``start``."""
        if self.module is None and self._pending is not None:
            pending = self._pending
            self.start(model).load_state_dict(pending)   # copies into the copy's own tensors (device, layout)
        return self.module

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        if self.module is not None:
            return {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        return self._pending

    def load_state_dict(self, state: dict[str, torch.Tensor] | None) -> None:
        self.module, self._pending = None, state


@torch.no_grad()
def copy_buffers(target: nn.Module, source: nn.Module) -> None:
    for t, s in zip(target.buffers(), source.buffers(), strict=True):
        t.copy_(s)


@register_trick
class EMA(Trick):
    name = "ema"
    description = "Evaluate an exponential moving average of the weights, updated after every optimizer step."
    params = (
        # 0.999: a horizon 1/(1-decay) of 1,000 steps, ~1.3 epochs of the 782 steps per epoch at batch 64 on
        # CIFAR-10, so ~7,800 steps of a 10-epoch run average over its last epoch or so. timm and
        # torchvision use 0.9998-0.99998 for ImageNet runs of hundreds of thousands of steps; that long a
        # horizon here would still weigh the early, poor weights at the end of the run.
        Param("decay", float, 0.999, "weight of the running average per optimizer step",
              low=0.0, high=1.0, low_open=True, high_open=True),
    )

    def __init__(self, **given: Any):
        super().__init__(**given)
        self.shadow = Shadow()
        self.steps = 0       # optimizer steps seen

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.steps += 1
        shadow = self.shadow.get(model)
        if shadow is None:
            self.shadow.start(model)      # the first step's weights, exactly
            return
        weight = 1.0 - self.p["decay"]
        for s, p in zip(shadow.parameters(), model.parameters(), strict=True):
            s.lerp_(p.detach(), weight)
        copy_buffers(shadow, model)

    def evaluation_model(self, model: nn.Module, train: TrainSplit) -> nn.Module:
        shadow = self.shadow.get(model)
        return model if shadow is None else shadow

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "shadow": self.shadow.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.shadow.load_state_dict(state["shadow"])

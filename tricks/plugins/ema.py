"""An exponential moving average (EMA) of the weights, evaluated instead of the trained weights.

Reference: ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay),
use_buffers=True)`` updated after every optimizer step, as torchvision's classification references
use it (timm's ``ModelEma`` classes average the buffers too); with the default parameters it equals
that step for step, bit for bit (``tests/test_trick_references.py``). The shadow starts as an exact copy of the weights after the
first optimizer step (no bias correction); after every later step ``shadow = decay * shadow +
(1 - decay) * weights``, one vectorized ``torch._foreach_lerp_`` over every floating-point tensor
(bit for bit the per-tensor ``lerp_``). After k steps that is ``decay**(k-1) * w_1 + sum_{i=2..k}
(1 - decay) * decay**(k-i) * w_i``. Until the first step, evaluation sees the trained model itself.

- ``buffers = "average"`` (default): batch-norm running statistics are averaged like the weights
  (``use_buffers=True``; integer buffers such as ``num_batches_tracked`` as ``AveragedModel`` does:
  ``copy_(shadow * decay + weights * (1 - decay))``). ``"copy"``: the shadow takes the trained
  model's buffers after every step, as this trick did before it had the choice. A model without
  buffers (tf_cnn, the committed studies' network) trains and evaluates the same either way, so no
  stored run moved (the version stays 1).
- ``warmup = true``: the decay of the update that folds in the n-th snapshot after the first is
  ``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``ExponentialMovingAverage(num_updates=...)``;
  timm's ``ModelEmaV3`` has a warm-up of another shape), so early averages do not carry the initial weights (without it,
  ``0.999**(k-1)``: 0.46 of the weight after one 782-step epoch). Default off, as in the references.

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


@torch.no_grad()
def ema_update(averaged: list[torch.Tensor], current: list[torch.Tensor], decay: float) -> None:
    """``averaged <- decay * averaged + (1 - decay) * current`` as ``get_ema_multi_avg_fn`` computes it:
    one ``_foreach_lerp_`` over the floating-point tensors, ``copy_`` of the blend for the others."""
    floats = [i for i, a in enumerate(averaged) if a.is_floating_point()]
    if floats:
        torch._foreach_lerp_([averaged[i] for i in floats], [current[i].detach() for i in floats], 1 - decay)
    for a, c in zip(averaged, current, strict=True):
        if not a.is_floating_point():
            a.copy_(a * decay + c.detach() * (1 - decay))


def warmed_decay(decay: float, n: int) -> float:
    """The decay of the update folding in the n-th snapshot after the first, with the warm-up."""
    return min(decay, (1 + n) / (10 + n))


@register_trick
class EMA(Trick):
    name = "ema"
    description = ("Evaluate an exponential moving average of the weights (and batch-norm statistics), updated "
                   "after every optimizer step (AveragedModel with get_ema_multi_avg_fn, use_buffers=True).")
    params = (
        # 0.999: a horizon 1/(1-decay) of 1,000 steps, ~1.3 epochs of the 782 steps per epoch at batch 64 on
        # CIFAR-10, so ~7,800 steps of a 10-epoch run average over its last epoch or so. timm and
        # torchvision use 0.9998-0.99998 for ImageNet runs of hundreds of thousands of steps; that long a
        # horizon here would still weigh the early, poor weights at the end of the run.
        Param("decay", float, 0.999, "weight of the running average per optimizer step",
              low=0.0, high=1.0, low_open=True, high_open=True),
        # average: timm's and torchvision's (AveragedModel use_buffers=True); copy: the trained model's
        Param("buffers", str, "average", "batch-norm statistics of the average: averaged like the weights, "
              "or copied from the trained model", choices=("average", "copy"), omit_default=True),
        # false: the references' default; true: TensorFlow's num_updates warm-up
        Param("warmup", bool, False, "warm the decay up: min(decay, (1 + n) / (10 + n)) at the n-th update",
              omit_default=True),
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
        n = self.steps - 1              # snapshots in the average before this one
        decay = warmed_decay(self.p["decay"], n) if self.p["warmup"] else self.p["decay"]
        if self.p["buffers"] == "average":
            ema_update([*shadow.parameters(), *shadow.buffers()], [*model.parameters(), *model.buffers()], decay)
        else:
            ema_update(list(shadow.parameters()), list(model.parameters()), decay)
            copy_buffers(shadow, model)

    def evaluation_model(self, model: nn.Module, train: TrainSplit) -> nn.Module:
        shadow = self.shadow.get(model)
        return model if shadow is None else shadow

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "shadow": self.shadow.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.shadow.load_state_dict(state["shadow"])

"""Sharpness-aware minimization (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently
Improving Generalization"): each step's gradient is taken at the worst nearby weights ``w + e``.

Per step: a forward/backward pass at ``w`` gives ``g``; ``e = rho * g / (||g||_2 + 1e-12)`` (the
global L2 norm over every parameter with a gradient); the gradients are cleared and a second pass
at ``w + e`` gives the gradients the optimizer uses; the weights are then put back bit for bit (a
saved copy, not ``w + e - e``). The step reports the loss and outputs of the first pass.

The second pass is the same stochastic objective as the first: the global RNG (dropout masks) is
rewound to where the first pass started, so both passes draw the same masks and the stream goes on
exactly as in a one-pass step (the variant differs from its base only in the trick). Batch-norm
running statistics are updated by the first pass only (the second uses the batch's statistics and
tracks none), so a step moves them once, as in a one-pass step.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick

EPS = 1e-12    # keeps e finite when every gradient is zero (as the common PyTorch reimplementations do)


@torch.no_grad()
def perturbation(params: Sequence[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """``e`` for each of ``params`` that has a gradient (in their order): ``rho * g / (||g||_2 + EPS)``,
    whose global L2 norm is ``rho`` (unless every gradient is 0)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return []
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = rho / (norm + EPS)
    return [g * scale for g in grads]


def _rng_state(device: torch.device):
    if device.type == "cuda":
        return torch.get_rng_state(), torch.cuda.get_rng_state(device)
    return torch.get_rng_state(), None


def _set_rng_state(device: torch.device, state) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


@contextlib.contextmanager
def frozen_bn_statistics(model: nn.Module) -> Iterator[None]:
    """Batch-norm layers in training mode normalize with the batch's statistics but track none."""
    tracking = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    for m in tracking:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in tracking:
            m.track_running_stats = True


@register_trick
class SAM(Trick):
    name = "sam"
    description = "Sharpness-aware minimization: take each step's gradient at the weights perturbed by rho along it."
    params = (
        # 0.05: the paper's usual value on CIFAR-10 (its grid: 0.01 to 0.5), the common default of reimplementations
        Param("rho", float, 0.05, "L2 radius of the weight perturbation (all parameters together)",
              low=0.0, low_open=True, high=10.0),
    )

    def compute_gradients(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                          loss_fn: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        rng = _rng_state(inputs.device)
        loss, out = loss_fn(model, inputs, targets)
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        if not params:
            return loss, out
        with torch.no_grad():
            e = perturbation(params, self.p["rho"])
            saved = [p.detach().clone() for p in params]
            for p, ep in zip(params, e):
                p.add_(ep)
        for p in params:
            p.grad = None
        _set_rng_state(inputs.device, rng)          # the second pass draws the first pass's dropout masks
        try:
            with frozen_bn_statistics(model):
                second, _ = loss_fn(model, inputs, targets)
                second.backward()
        finally:
            with torch.no_grad():
                for p, w in zip(params, saved):
                    p.copy_(w)
        return loss, out

"""The training step loop: one pass over the training images for one model (a solo run) or for several
at once (a population), the same code for both.

Per step, for each model (a ``Lane``): its batch from its own order (one gather for all of them),
scaled to [0, 1], its augmentation and batch augmentation from its own generator, its input transform;
then the gradients: a solo model's ``compute_gradients`` hook (by default one forward pass, the
criterion plus any loss terms, backward), or for a population one batched forward pass
(``population.PopulationNet``), each member's own objective, and one backward pass of their sum; then
every model's before-step hooks, the optimizer step (a population's members in one optimizer,
``population.merge_optimizers``), the after-step hooks and the LR controller's step. The losses are
summed on the device: nothing in a step waits for the device (no ``.item()``, ``float()``, ``.cpu()``;
``tests/test_steps.py`` checks), only the epoch's end reads the sums.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.types import Batch
from .build import MEMORY_FORMAT
from .recipe import StepHooks

PROGRESS_EVERY = 50        # training steps between progress events


def autocast(device: torch.device, precision: str):
    """bf16 autocast, or nothing for fp32; any other precision is a bug upstream (it is resolved and
    validated once, where it enters: ``running.device.choose_precision``)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be one of fp32, bf16, got {precision!r}")
    return contextlib.nullcontext()


@dataclass
class Lane:
    """One model's part of a step: its collaborators and this epoch's order of the training images."""
    model: nn.Module
    optimizer: torch.optim.Optimizer
    hooks: StepHooks
    transform: nn.Module
    order: torch.Tensor
    augment: torch.Generator | None = None      # the augmentation hooks' generator
    step: torch.Generator | None = None         # the before-step hooks' generator
    after_step: Callable[[], None] | None = None   # the LR controller's step


def objective(hooks: StepHooks, model: nn.Module, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training objective of ``out`` (log-probabilities): the criterion plus every loss term."""
    loss = hooks.criterion(out, targets)
    for term in hooks.loss_terms:
        loss = loss + term(model)
    return loss


def prepare(lane: Lane, x: torch.Tensor, y: torch.Tensor, num_classes: int | None,
            memory_format: torch.memory_format) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch (scaled to [0, 1]) -> (network inputs, targets): augmentation, batch augmentation, the
    input transform."""
    hooks = lane.hooks
    for aug in hooks.augment:
        x = aug(x, lane.augment)
    targets = y
    if hooks.augment_batch:
        batch = Batch(x, y, num_classes)
        for aug in hooks.augment_batch:
            batch = aug(batch, lane.augment)
        x, targets = batch.images, batch.targets
    return lane.transform(x).contiguous(memory_format=memory_format), targets


Forward = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def step_loop(lanes: list[Lane], images: torch.Tensor, labels: torch.Tensor, batch_size: int, precision: str,
              num_classes: int | None, forward: Forward | None = None,
              optimizers: list[torch.optim.Optimizer] | None = None,
              on_step: Callable[[int, int], None] | None = None,
              memory_format: torch.memory_format = MEMORY_FORMAT) -> list[tuple[float, float]]:
    """One pass of every lane over ``images`` (uint8 NCHW) in its own order. ``forward``: None for one
    model (its ``compute_gradients`` hook), else the lanes' batched forward pass (inputs -> outputs).
    ``optimizers``: the optimizers to step (default: each lane's own). Returns (mean training objective,
    mean NLL of the labels) per image for each lane; the two are the same number unless a hook changes
    the loss or the targets."""
    if forward is None and len(lanes) != 1:
        raise ValueError("several lanes train with a batched forward pass")
    device, n, k = images.device, images.shape[0], len(lanes)
    optimizers = [lane.optimizer for lane in lanes] if optimizers is None else optimizers
    for lane in lanes:
        lane.model.train()
    totals = torch.zeros(k, dtype=torch.float64, device=device)
    nll_lanes = [j for j, lane in enumerate(lanes) if lane.hooks.changes_loss]
    nlls = torch.zeros(k, dtype=torch.float64, device=device) if nll_lanes else totals
    before = [(lane, hook) for lane in lanes for hook in lane.hooks.before_optimizer_step]
    after = [(lane, hook) for lane in lanes for hook in lane.hooks.after_optimizer_step]
    stepping = [lane.after_step for lane in lanes if lane.after_step is not None]
    steps = math.ceil(n / batch_size)
    for step in range(steps):
        idx = torch.stack([lane.order[step * batch_size:(step + 1) * batch_size] for lane in lanes])
        xs = images[idx.flatten()].float().div_(255.0).view(k, -1, *images.shape[1:]).unbind(0)
        ys = labels[idx].unbind(0)
        inputs, targets = zip(*(prepare(lane, x, y, num_classes, memory_format) for lane, x, y in zip(lanes, xs, ys)))
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        if forward is None:
            lane = lanes[0]

            def loss_fn(net: nn.Module, x: torch.Tensor, t: torch.Tensor, hooks=lane.hooks):
                with autocast(device, precision):
                    out = net(x).float()
                    return objective(hooks, net, out, t), out
            loss, out = lane.hooks.compute_gradients(lane.model, inputs[0], targets[0], loss_fn)
            losses, outs = [loss], [out]
        else:
            with autocast(device, precision):
                outs = [o.float() for o in forward(list(inputs))]
                losses = [objective(lane.hooks, lane.model, o, t) for lane, o, t in zip(lanes, outs, targets)]
            torch.stack(losses).sum().backward()
        for lane, hook in before:
            hook(lane.model, lane.step)
        for opt in optimizers:
            opt.step()
        for lane, hook in after:
            hook(lane.model, lane.optimizer)
        for advance in stepping:
            advance()
        size = idx.shape[1]
        totals += torch.stack(losses).detach() * size
        for j in nll_lanes:
            nlls[j] += F.nll_loss(outs[j].detach(), ys[j]) * size
        if on_step is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps):
            on_step(step + 1, steps)
    totals, nlls = totals.tolist(), nlls.tolist()     # the epoch's one wait for the device
    return [(t / n, nl / n) for t, nl in zip(totals, nlls)]

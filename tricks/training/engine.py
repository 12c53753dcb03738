"""Training and evaluation on whole-split tensors: batches by indexing a seeded permutation.

``train_one_epoch`` and ``evaluate`` take their collaborators as arguments and know nothing
about tricks; ``train_run`` wires a ``Recipe`` to them for one (variant, seed).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .allocator import keep_freed_memory
from ..specs.callbacks import EpochState
from .data import Dataset, class_balanced_subset
from ..specs.recipe import Recipe
from ..running.settings import RunSettings

# Images per forward pass when evaluating: larger is faster until a batch's fp32 conv1 output passes
# the allocator's 32 MB heap limit (500 images: 57.6 MB, 1.7x slower than 250; benchmarks/throughput.py).
EVAL_BATCH = 250
# channels_last (NHWC) activations: oneDNN's convolutions and max-pooling are much faster in it on
# CPU (measured: 1.4x per training step at batch 64, 2x for evaluation; benchmarks/throughput.py).
MEMORY_FORMAT = torch.channels_last
PROGRESS_EVERY = 50        # training steps between progress events
SUBSET_SEED = 0            # the --train-subset draw is the same for every variant and seed

Event = Callable[[str, dict], None]


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                    labels: torch.Tensor, transform: nn.Module, batch_size: int, generator: torch.Generator,
                    precision: str = "fp32", on_step: Callable[[int, int], None] | None = None,
                    memory_format: torch.memory_format = MEMORY_FORMAT) -> float:
    """One pass over ``images`` (uint8 NCHW) in the order of a permutation drawn from ``generator``.

    Returns the mean training loss per image. No host sync inside the loop (the loss is summed on
    the device), so the GPU, when there is one, is never waited on per step.
    """
    model.train()
    n = images.shape[0]
    perm = torch.randperm(n, generator=generator).to(images.device)
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    steps = math.ceil(n / batch_size)
    for step in range(steps):
        idx = perm[step * batch_size:(step + 1) * batch_size]
        x = transform(images[idx].float().div_(255.0)).contiguous(memory_format=memory_format)
        with autocast(images.device, precision):
            loss = F.nll_loss(model(x).float(), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * idx.numel()
        if on_step is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps):
            on_step(step + 1, steps)
    return float(total) / n


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform: nn.Module,
             precision: str = "fp32", batch_size: int = EVAL_BATCH) -> tuple[torch.Tensor, float]:
    """Predicted classes for every image, and the mean NLL loss."""
    model.eval()
    preds, loss = [], torch.zeros((), dtype=torch.float64, device=images.device)
    for i in range(0, images.shape[0], batch_size):
        x = transform(images[i:i + batch_size].float().div_(255.0)).contiguous(memory_format=MEMORY_FORMAT)
        with autocast(images.device, precision):
            out = model(x).float()
        loss += F.nll_loss(out, labels[i:i + batch_size], reduction="sum")
        preds.append(out.argmax(dim=1))
    return torch.cat(preds).cpu(), float(loss) / images.shape[0]


def train_run(settings: RunSettings, dataset: Dataset, device: torch.device, on_event: Event | None = None) -> dict:
    """Train one (variant, seed) and return its record: history, final predictions, status."""
    emit = on_event or (lambda kind, payload: None)
    from ..specs.spec import Variant

    if device.type == "cpu":
        keep_freed_memory()   # 1.4-1.6x per CPU training step: no page faults on activations (see allocator)

    recipe = Recipe(settings.variant, Variant(settings.variant, "", None, settings.tricks).instantiate())
    train_x, train_y = dataset.train_x, dataset.train_y
    if settings.train_subset:
        idx = class_balanced_subset(train_y, settings.train_subset, SUBSET_SEED)
        train_x, train_y = train_x[idx], train_y[idx]
    transform = recipe.input_transform(train_x).to(device)
    train_x, train_y = train_x.to(device), train_y.to(device)
    test_x, test_y = dataset.test_x.to(device), dataset.test_y.to(device)

    model = recipe.model(settings.seed, len(dataset.classes)).to(device, memory_format=MEMORY_FORMAT)
    optimizer = recipe.optimizer(model)
    scheduler = recipe.scheduler(optimizer)
    callbacks = recipe.callbacks()
    order = torch.Generator().manual_seed(settings.seed)   # data order: same for every variant
    torch.manual_seed(settings.seed + 1_000_003)           # dropout masks: fixed per seed, apart from init

    history, status, stop_reason = [], "ok", ""
    preds = torch.zeros(0, dtype=torch.int64)
    train_seconds = eval_seconds = 0.0
    for epoch in range(1, settings.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        loss = train_one_epoch(model, optimizer, train_x, train_y, transform, settings.batch_size, order,
                               settings.precision,
                               on_step=lambda s, n, e=epoch: emit("step", {"epoch": e, "step": s, "steps": n}))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        preds, test_loss = evaluate(model, test_x, test_y, transform, settings.precision)
        t2 = time.perf_counter()
        train_seconds += t1 - t0
        eval_seconds += t2 - t1
        acc = float((preds == dataset.test_y).double().mean())
        history.append({"epoch": epoch, "train_loss": loss, "test_loss": test_loss, "test_accuracy": acc,
                        "lr": lr, "train_seconds": t1 - t0, "eval_seconds": t2 - t1})
        emit("epoch", {"epoch": epoch, "epochs": settings.epochs, "loss": loss, "acc": acc})
        if not math.isfinite(loss):
            status, stop_reason = "diverged", f"training loss became {loss} in epoch {epoch}"
            break
        state = EpochState(epoch, settings.epochs, loss, acc, lr)
        for cb in callbacks:
            cb.on_epoch_end(state)
        if scheduler is not None:
            scheduler.step()
        if state.should_stop:
            stop_reason = state.stop_reason or "a callback asked to stop"
            break
    return {"status": status, "stop_reason": stop_reason, "history": history,
            "epochs_run": len(history), "predictions": preds.tolist(),
            "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "optimizer": {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.optimizer_settings().items()},
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_images": int(train_y.numel())}

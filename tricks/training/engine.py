"""Training and evaluation on whole-split tensors: batches by indexing an epoch's order.

``train_one_epoch`` and ``evaluate`` take their collaborators as arguments and know nothing about
tricks; ``train_run`` wires a built ``Recipe`` to them for one (variant, seed). The engine never
parses specs: it receives the recipe and the run's settings.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.callbacks import EpochState
from ..specs.types import Batch
from .allocator import keep_freed_memory
from .build import MEMORY_FORMAT, Run, build_run
from .checkpoint import Checkpoints, rng_state, set_rng_state
from .cuda import strict_math
from .data import Dataset
from .lr_trace import LRTrace
from .recipe import Recipe, StepHooks, forward
from .streams import AUGMENT_SEED_OFFSET, DROPOUT_SEED_OFFSET, STEP_SEED_OFFSET  # noqa: F401 - benchmarks

PRECISIONS = ("fp32", "bf16")
# Images per forward pass when evaluating: larger is faster until a batch's fp32 conv1 output passes
# the allocator's 32 MB heap limit (500 images: 57.6 MB, 1.7x slower than 250; benchmarks/throughput.py).
EVAL_BATCH = 250
PROGRESS_EVERY = 50        # training steps between progress events
# The precisions whose CPU runs keep freed memory in the process (allocator.keep_freed_memory): only
# where it was measured to help. 1-thread training steps, benchmarks/throughput.py, each lever side by
# side in one run: fp32 1.60x faster with it on a 2-core AMD EPYC with avx512_bf16
# (results/bench/throughput_amd_epyc_avx512bf16.txt: 4,391 vs 2,750 img/s) and 1.4-1.9x on the earlier
# machines; bf16 0.99x on that AMD EPYC (6,062 vs 6,000 img/s) and 0.86x on an Intel Xeon with AMX
# (glibc's defaults 1.16x faster), so bf16 runs leave glibc at its defaults. Speed only: the allocator
# never changes a run's numbers.
KEEP_FREED_MEMORY = ("fp32",)
# Subnormal floats (|x| < 1.2e-38) flushed to zero on CPU (FTZ/DAZ, torch.set_flush_denormal). Weight
# decay with Adam drives dead units' weights and Adam's moments of their zero gradients into that range,
# where some x86 CPUs take a microcode assist per operation: a run on this project's Intel machine
# slowed from 30 to 116 s per epoch. From such a run's checkpoint, 100 steps took 2.7x less time
# flushed, left the same test predictions on all 10,000 images, and weights differing by at most
# 6e-31 (benchmarks/denormals_probe.py). Recorded in each run's provenance ("denormals"). The mode is
# the calling thread's (threads started later inherit it); study workers train on one thread.
FLUSH_DENORMALS = True

Event = Callable[[str, dict], None]


def autocast(device: torch.device, precision: str):
    """bf16 autocast, or nothing for fp32; any other precision is a bug upstream (it is resolved and
    validated once, where it enters: ``running.device.choose_precision``)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return contextlib.nullcontext()


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                    labels: torch.Tensor, transform: nn.Module, batch_size: int, order: torch.Tensor,
                    precision: str = "fp32", hooks: StepHooks | None = None,
                    after_step: Callable[[], None] | None = None, augment_generator: torch.Generator | None = None,
                    on_step: Callable[[int, int], None] | None = None,
                    memory_format: torch.memory_format = MEMORY_FORMAT,
                    step_generator: torch.Generator | None = None,
                    num_classes: int | None = None) -> tuple[float, float]:
    """One pass over ``images`` (uint8 NCHW) in ``order`` (a permutation of their indices).

    Per step: scale to [0, 1], augment the images, augment the batch (images and targets), input
    transform, then the step's gradients (``hooks.compute_gradients``: by default one forward pass, the
    criterion plus any loss terms, backward), the before-step hooks, the optimizer step, the after-step
    hooks, then ``after_step`` (the LR controller). Returns (mean training objective, mean NLL of the
    labels) per image; the two are the same number unless a hook changes the loss or the targets. No
    host sync inside the loop (losses are summed on the device).
    """
    hooks = hooks or StepHooks()
    model.train()
    n = images.shape[0]
    order = order.to(images.device)
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    total_nll = torch.zeros((), dtype=torch.float64, device=images.device) if hooks.changes_loss else total
    steps = math.ceil(n / batch_size)
    if hooks.augment_batch and num_classes is None:
        num_classes = int(labels.max()) + 1     # soft targets need the class count (the run passes it)

    def loss_fn(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(images.device, precision):
            out = net(inputs).float()
            loss = hooks.criterion(out, targets)
            for term in hooks.loss_terms:
                loss = loss + term(net)
        return loss, out

    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        x = images[idx].float().div_(255.0)
        for aug in hooks.augment:
            x = aug(x, augment_generator)
        y = labels[idx]
        targets = y
        if hooks.augment_batch:
            batch = Batch(x, y, num_classes)
            for aug in hooks.augment_batch:
                batch = aug(batch, augment_generator)
            x, targets = batch.images, batch.targets
        x = transform(x).contiguous(memory_format=memory_format)
        optimizer.zero_grad(set_to_none=True)
        loss, out = hooks.compute_gradients(model, x, targets, loss_fn)
        for hook in hooks.before_optimizer_step:
            hook(model, step_generator)
        optimizer.step()
        for hook in hooks.after_optimizer_step:
            hook(model, optimizer)
        if after_step is not None:
            after_step()
        total += loss.detach() * idx.numel()
        if hooks.changes_loss:
            total_nll += F.nll_loss(out.detach(), y) * idx.numel()
        if on_step is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps):
            on_step(step + 1, steps)
    return float(total) / n, float(total_nll) / n


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform: nn.Module,
             precision: str = "fp32", batch_size: int = EVAL_BATCH,
             predict: Callable[[nn.Module, torch.Tensor], torch.Tensor] = forward) -> tuple[torch.Tensor, float]:
    """Predicted classes for every image, and the mean NLL loss (never training augmentation;
    ``predict`` is the evaluation hook: test-time augmentation, say)."""
    model.eval()
    preds, loss = [], torch.zeros((), dtype=torch.float64, device=images.device)
    for i in range(0, images.shape[0], batch_size):
        x = transform(images[i:i + batch_size].float().div_(255.0)).contiguous(memory_format=MEMORY_FORMAT)
        with autocast(images.device, precision):
            out = predict(model, x).float()
        loss += F.nll_loss(out, labels[i:i + batch_size], reduction="sum")
        preds.append(out.argmax(dim=1))
    return torch.cat(preds).cpu(), float(loss) / images.shape[0]


def train_run(recipe: Recipe, settings, dataset: Dataset, device: torch.device, on_event: Event | None = None,
              checkpoints: Checkpoints | None = None) -> dict:
    """Train one (variant, seed): see ``_train_run``. On CPU, subnormal floats are flushed to zero for
    the run (``FLUSH_DENORMALS``) and IEEE behaviour is restored afterwards, so a notebook or test
    process that called it keeps its floating-point mode; the outcome says which (``denormals``). On
    CUDA the run trains in IEEE fp32 with deterministic cuDNN (``cuda.strict_math``; ``cuda_math``)."""
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        # The run's own intra-op thread count, whatever else is running or pending: the thread count
        # changes a run's arithmetic, so it is one of the run's settings (``RunSettings.threads``).
        torch.set_num_threads(settings.threads)
    flushed = device.type == "cpu" and FLUSH_DENORMALS and torch.set_flush_denormal(True)
    try:
        with strict_math(device) as cuda_math:   # CUDA: IEEE fp32 (no TF32), deterministic cuDNN
            out = _train_run(recipe, settings, dataset, device, on_event, checkpoints)
        threads = torch.get_num_threads()
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.set_num_threads(threads_before)
    return {**out, "denormals": "flushed" if flushed else "kept", "threads": threads,
            **({"cuda_math": cuda_math} if cuda_math is not None else {})}


def _train_run(recipe: Recipe, settings, dataset: Dataset, device: torch.device, on_event: Event | None = None,
               checkpoints: Checkpoints | None = None) -> dict:
    """Train one (variant, seed) of ``recipe`` and return its outcome: history, final test predictions, status.

    ``settings`` is the run's ``RunSettings`` (seed, epochs, batch size, subset, validation, precision).
    With ``checkpoints``, the run starts from the last epoch a previous, interrupted attempt saved
    there (if any), and saves its own state after every epoch but the last (see ``checkpoint``).
    """
    emit = on_event or (lambda kind, payload: None)
    if device.type == "cpu" and settings.precision in KEEP_FREED_MEMORY:
        keep_freed_memory()   # no page faults on activations (see allocator and KEEP_FREED_MEMORY)
    run = build_run(recipe, settings, dataset, device)
    model, optimizer, lr, hooks, callbacks = run.model, run.optimizer, run.lr, run.hooks, run.callbacks
    trace = LRTrace()

    def after_step():
        lr.after_step()
        trace.record(lr.steps, lr.lr)

    def evaluated_model():
        """The weights evaluation sees (EMA, SWA) and their name, or the trained ones."""
        chosen = hooks.evaluation_model(model, run.train_split(settings.batch_size)) if hooks.evaluation_model \
            else model
        return chosen, ("trained" if chosen is model else recipe.evaluated)

    def test(net):
        return evaluate(net, run.test_x, run.test_y, run.transform, settings.precision, predict=hooks.predict)

    trace.record(0, lr.lr)
    history, status, stop_reason = [], "ok", ""
    train_seconds = eval_seconds = 0.0
    generators = run.streams.generators()
    saved, ignored = checkpoints.load() if checkpoints is not None else (None, None)
    notices = []    # one-line messages for the user, also kept in the run's record
    if ignored is not None:
        notices.append(f"ignored checkpoint {checkpoints.path}: it {ignored}; this run trains from epoch 1")
        emit("notice", {"message": notices[-1]})
    for why in recipe.budget_problems(run.budget):   # a budget the spec's load did not see (--epochs, ...)
        notices.append(f"{settings.variant}: trained as asked (a budget the spec did not have), but {why}")
        emit("notice", {"message": notices[-1]})
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        lr.load_state_dict(saved["lr"])
        for cb, cb_state in zip(callbacks, saved["callbacks"], strict=True):
            cb.load_state_dict(cb_state)
        recipe.load_state_dict(saved["tricks"])
        trace.load_state_dict(saved["trace"])
        set_rng_state(saved["rng"], generators, device)
        history, train_seconds, eval_seconds = saved["history"], saved["train_seconds"], saved["eval_seconds"]
        emit("resume", {"epoch": saved["epoch"], "epochs": settings.epochs})
    first_epoch = saved["epoch"] + 1 if saved is not None else 1
    for epoch in range(first_epoch, settings.epochs + 1):
        epoch_lr = lr.lr
        t0 = time.perf_counter()
        perm = recipe.data_order(run.train_y.numel(), run.streams.order)
        loss, nll = train_one_epoch(model, optimizer, run.train_x, run.train_y, run.transform, settings.batch_size,
                                    perm, settings.precision, hooks, after_step, run.streams.augment,
                                    on_step=lambda s, n, e=epoch: emit("step", {"epoch": e, "step": s, "steps": n}),
                                    step_generator=run.streams.step, num_classes=len(dataset.classes))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        metrics = {"train_loss": loss}
        row = {"epoch": epoch, "train_loss": loss}
        if hooks.changes_loss:
            row["train_nll"] = nll
        net, row["evaluated"] = evaluated_model() if math.isfinite(loss) else (model, "trained")
        if run.val_y.numel():
            val_preds, val_loss = evaluate(net, run.val_x, run.val_y, run.transform, settings.precision,
                                           predict=hooks.predict)
            metrics["val_loss"] = val_loss
            metrics["val_accuracy"] = float((val_preds == run.val_y.cpu()).double().mean())
            row.update(val_loss=val_loss, val_accuracy=metrics["val_accuracy"])
        preds, test_loss = test(net)
        t2 = time.perf_counter()
        train_seconds += t1 - t0
        eval_seconds += t2 - t1
        acc = float((preds == dataset.test_y).double().mean())
        row.update(test_loss=test_loss, test_accuracy=acc, lr=epoch_lr, train_seconds=t1 - t0, eval_seconds=t2 - t1)
        history.append(row)
        emit("epoch", {"epoch": epoch, "epochs": settings.epochs, "loss": loss, "acc": acc})
        if not math.isfinite(loss):
            status, stop_reason = "diverged", f"training loss became {loss} in epoch {epoch}"
            break
        state = EpochState(epoch, settings.epochs, epoch_lr, dict(metrics), model, optimizer=optimizer,
                           train=run.train_split(settings.batch_size))
        for cb in callbacks:
            cb.on_epoch_end(state)
        lr.after_epoch(metrics)
        trace.record(lr.steps, lr.lr)
        if state.should_stop:
            stop_reason = state.stop_reason or "a callback asked to stop"
            break
        if checkpoints is not None and epoch < settings.epochs:
            checkpoints.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "lr": lr.state_dict(), "callbacks": [cb.state_dict() for cb in callbacks],
                              "tricks": recipe.state_dict(), "trace": trace.state_dict(),
                              "rng": rng_state(generators, device), "threads": torch.get_num_threads(),
                              "history": history, "train_seconds": train_seconds, "eval_seconds": eval_seconds})
    if status == "ok" and callbacks:
        for cb in callbacks:
            cb.on_train_end(model)
        t0 = time.perf_counter()
        preds, _ = test(evaluated_model()[0])   # the weights a callback left
        eval_seconds += time.perf_counter() - t0
    return {"status": status, "stop_reason": stop_reason, "history": history,
            "epochs_run": len(history), "predictions": preds.tolist(),
            "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "optimizer": {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.optimizer_settings().items()},
            "optimizer_class": recipe.optimizer_class().__name__,
            "lr_trace": trace.to_dict(run.budget.steps_per_epoch),
            "parameters": sum(p.numel() for p in model.parameters()),
            "resumed_from_epoch": saved["epoch"] if saved is not None else 0, "notices": notices,
            "train_images": int(run.train_y.numel()), "validation_images": int(run.val_y.numel())}

"""Training and evaluation on whole-split tensors: batches by indexing an epoch's order.

``train_one_epoch`` and ``evaluate`` take their collaborators as arguments and know nothing about
tricks; ``train_run`` trains one (variant, seed) of a built ``Recipe``: one ``member.Member`` fitted
alone (``member.fit``, the epoch loop a population's members go through too) with the step loop
``steps.step_loop``. The engine never parses specs: it receives the recipe and the run's settings.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .allocator import keep_freed_memory
from .build import MEMORY_FORMAT
from .checkpoint import Checkpoints
from .cuda import strict_math
from .data import Dataset
from .member import Evaluation, Member, fit
from .recipe import Recipe, StepHooks, forward
from .steps import PROGRESS_EVERY, Lane, autocast, step_loop  # noqa: F401 - re-exported (tests, benchmarks, cohort)
from .streams import AUGMENT_SEED_OFFSET, DROPOUT_SEED_OFFSET, STEP_SEED_OFFSET  # noqa: F401 - benchmarks

PRECISIONS = ("fp32", "bf16")
# Images per forward pass when evaluating: larger is faster until a batch's fp32 conv1 output passes
# the allocator's 32 MB heap limit (500 images: 57.6 MB, 1.7x slower than 250; benchmarks/throughput.py).
EVAL_BATCH = 250
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


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                    labels: torch.Tensor, transform: nn.Module, batch_size: int, order: torch.Tensor,
                    precision: str = "fp32", hooks: StepHooks | None = None,
                    after_step: Callable[[], None] | None = None, augment_generator: torch.Generator | None = None,
                    on_step: Callable[[int, int], None] | None = None,
                    memory_format: torch.memory_format = MEMORY_FORMAT,
                    step_generator: torch.Generator | None = None,
                    num_classes: int | None = None) -> tuple[float, float]:
    """One pass of one model over ``images`` (uint8 NCHW) in ``order`` (a permutation of their indices):
    the step loop (``steps.step_loop``) for a single model. Returns (mean training objective, mean NLL
    of the labels) per image; the two are the same number unless a hook changes the loss or the targets."""
    hooks = hooks or StepHooks()
    if hooks.augment_batch and num_classes is None:
        num_classes = int(labels.max()) + 1     # soft targets need the class count (the run passes it)
    lane = Lane(model, optimizer, hooks, transform, order.to(images.device), augment_generator, step_generator,
                after_step)
    return step_loop([lane], images, labels, batch_size, precision, num_classes, on_step=on_step,
                     memory_format=memory_format)[0]


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


@contextlib.contextmanager
def run_environment(device: torch.device, threads: int):
    """For a run (solo, or a cohort's): on CPU, its thread count (``RunSettings.threads``: it changes a
    run's arithmetic) and subnormal floats flushed to zero (``FLUSH_DENORMALS``), IEEE behaviour restored
    afterwards, so a notebook or test process that called it keeps its floating-point mode; on CUDA, IEEE
    fp32 with deterministic cuDNN (``cuda.strict_math``). Yields the outcome's fields that say so
    (``denormals``, ``threads``, ``cuda_math``), complete once the block has run."""
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    flushed = device.type == "cpu" and FLUSH_DENORMALS and torch.set_flush_denormal(True)
    said = {"denormals": "flushed" if flushed else "kept"}
    try:
        with strict_math(device) as cuda_math:   # CUDA: IEEE fp32 (no TF32), deterministic cuDNN
            yield said
            said["threads"] = torch.get_num_threads()
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.set_num_threads(threads_before)
    if cuda_math is not None:
        said["cuda_math"] = cuda_math


def train_run(recipe: Recipe, settings, dataset: Dataset, device: torch.device, on_event: Event | None = None,
              checkpoints: Checkpoints | None = None) -> dict:
    """Train one (variant, seed) of ``recipe`` and return its outcome: history, final test predictions,
    status, and how it computed (``run_environment``).

    ``settings`` is the run's ``RunSettings`` (seed, epochs, batch size, subset, validation, precision).
    With ``checkpoints``, the run starts from the last epoch a previous, interrupted attempt saved
    there (if any), and saves its own state after every epoch but the last (see ``checkpoint``).
    """
    emit = on_event or (lambda kind, payload: None)
    with run_environment(device, settings.threads) as said:
        if device.type == "cpu" and settings.precision in KEEP_FREED_MEMORY:
            keep_freed_memory()   # no page faults on activations (see allocator and KEEP_FREED_MEMORY)
        member = Member.build(0, recipe, settings, dataset, device, emit, checkpoints)
        num_classes = len(dataset.classes)

        def train_epoch(active: list[Member], epoch: int) -> list[tuple[float, float]]:
            return step_loop([member.lane()], member.run.train_x, member.run.train_y, settings.batch_size,
                             settings.precision, num_classes,
                             on_step=lambda s, n: emit("step", {"epoch": epoch, "step": s, "steps": n}))

        def test(active: list[Member], nets: list[nn.Module], validation: bool) -> list[Evaluation]:
            return [evaluate_solo(member, nets[0], validation)]

        out, = fit([member], train_epoch, test)
    return {**out, **said}


def evaluate_solo(member: Member, net: nn.Module, validation: bool = True) -> Evaluation:
    """A member's evaluation on its own: the validation split (if any and ``validation``), then the test split."""
    run, precision, predict = member.run, member.settings.precision, member.run.hooks.predict
    val_preds = val_loss = None
    if validation and run.val_y.numel():
        val_preds, val_loss = evaluate(net, run.val_x, run.val_y, run.transform, precision, predict=predict)
    preds, test_loss = evaluate(net, run.test_x, run.test_y, run.transform, precision, predict=predict)
    return val_preds, val_loss, preds, test_loss

"""One place that builds a run: a variant's recipe, one seed and the data -> every collaborator of
the training loop (``Run``). The engine trains a built run; the benchmarks build runs here too, so
that what they time or profile is what a study trains.

Order (fixed: it decides the random streams, see ``streams``): split the data, fit the input
transform on the training images, seed the streams, build the model (default init, then the tricks'
modules and init), move it to the device in channels_last, pool before the activation, build the
optimizer, the LR controller, the step hooks and the callbacks, then hand the global RNG to dropout.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from ..specs.types import TrainSplit
from .data import Dataset, split_training
from .model import pool_before_activation
from .recipe import Recipe, StepHooks
from .schedule import Budget, LRController
from .streams import Streams

# channels_last (NHWC) activations: oneDNN's convolutions and max-pooling are much faster in it on
# CPU (measured: 1.4x per training step at batch 64, 2x for evaluation; benchmarks/throughput.py).
MEMORY_FORMAT = torch.channels_last


@dataclass
class Run:
    recipe: Recipe
    device: torch.device
    transform: nn.Module
    train_x: torch.Tensor            # uint8 NCHW on the device
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    model: nn.Module
    optimizer: torch.optim.Optimizer
    budget: Budget
    lr: LRController
    hooks: StepHooks
    callbacks: list
    streams: Streams

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> network inputs (scaled, input transform, channels_last), for evaluation."""
        return self.transform(images.float().div_(255.0)).contiguous(memory_format=MEMORY_FORMAT)

    def train_split(self, batch_size: int) -> TrainSplit:
        return TrainSplit(self.train_x, self.train_y, self.prepare, batch_size)


@dataclass(frozen=True)
class Splits:
    """The training, validation and test tensors of one split of a dataset, on one device."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    host_train_x: torch.Tensor       # the training images on the CPU (the input transform is fitted there)


# One copy of the splits per process: every run a worker trains with the same dataset, split and
# device, and every member of a cohort, shares it (a cohort of 64 used to hold 64 copies of the
# training images on the device). The last ``KEEP_SPLITS`` splits are kept; an entry dies with its
# dataset. The runs never write into these tensors (batches are gathered copies).
KEEP_SPLITS = 2
_splits: list[tuple[weakref.ref, tuple, Splits]] = []


def shared_splits(dataset: Dataset, validation: int, train_subset: int | None, device: torch.device) -> Splits:
    """The dataset's training, validation and test tensors on ``device``, made once per process."""
    key = (validation, train_subset, str(device))
    _splits[:] = [e for e in _splits if e[0]() is not None]
    for ref, k, splits in _splits:
        if ref() is dataset and k == key:
            return splits
    train_idx, val_idx = split_training(dataset.train_y, validation, train_subset)
    host = dataset.train_x[train_idx]
    splits = Splits(host.to(device), dataset.train_y[train_idx].to(device), dataset.train_x[val_idx].to(device),
                    dataset.train_y[val_idx].to(device), dataset.test_x.to(device), dataset.test_y.to(device), host)
    _splits.append((weakref.ref(dataset), key, splits))
    del _splits[:-KEEP_SPLITS]
    return splits


def build_run(recipe: Recipe, settings, dataset: Dataset, device: torch.device) -> Run:
    """Every collaborator of one (variant, seed) run; ``settings`` is the run's ``RunSettings`` (seed,
    batch size, subset, validation split). The data tensors are the process's shared copy (``shared_splits``)."""
    recipe.check_validation(settings.validation)
    data = shared_splits(dataset, settings.validation, settings.train_subset, device)
    transform = recipe.input_transform(data.host_train_x).to(device)
    hooks = recipe.step_hooks()
    streams = Streams.for_run(settings.seed, device, augments=hooks.draws_augmentation,
                              steps=bool(hooks.before_optimizer_step))
    # Pooling before a monotone activation: the same numbers, 1.16x per fp32 training step on 1 thread
    # (benchmarks/throughput.py measures it).
    model = pool_before_activation(recipe.model(settings.seed, len(dataset.classes), streams.init))
    model = model.to(device, memory_format=MEMORY_FORMAT)
    optimizer = recipe.optimizer(model)
    budget = Budget(settings.epochs, math.ceil(data.train_y.numel() / settings.batch_size))
    lr = recipe.lr_controller(optimizer, budget)
    callbacks = recipe.callbacks()
    streams.start_dropout()
    return Run(recipe, device, transform, data.train_x, data.train_y, data.val_x, data.val_y, data.test_x,
               data.test_y, model, optimizer, budget, lr, hooks, callbacks, streams)

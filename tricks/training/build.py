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


def build_run(recipe: Recipe, settings, dataset: Dataset, device: torch.device) -> Run:
    """Every collaborator of one (variant, seed) run; ``settings`` is the run's ``RunSettings`` (seed,
    batch size, subset, validation split)."""
    recipe.check_validation(settings.validation)
    train_idx, val_idx = split_training(dataset.train_y, settings.validation, settings.train_subset)
    train_x, train_y = dataset.train_x[train_idx], dataset.train_y[train_idx]
    transform = recipe.input_transform(train_x).to(device)
    hooks = recipe.step_hooks()
    streams = Streams.for_run(settings.seed, device, augments=hooks.draws_augmentation,
                              steps=bool(hooks.before_optimizer_step))
    # Pooling before a monotone activation: the same numbers, 1.16x per fp32 training step on 1 thread
    # (benchmarks/throughput.py measures it).
    model = pool_before_activation(recipe.model(settings.seed, len(dataset.classes), streams.init))
    model = model.to(device, memory_format=MEMORY_FORMAT)
    optimizer = recipe.optimizer(model)
    budget = Budget(settings.epochs, math.ceil(train_y.numel() / settings.batch_size))
    lr = recipe.lr_controller(optimizer, budget)
    callbacks = recipe.callbacks()
    streams.start_dropout()
    return Run(recipe, device, transform, train_x.to(device), train_y.to(device),
               dataset.train_x[val_idx].to(device), dataset.train_y[val_idx].to(device),
               dataset.test_x.to(device), dataset.test_y.to(device),
               model, optimizer, budget, lr, hooks, callbacks, streams)

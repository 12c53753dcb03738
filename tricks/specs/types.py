"""The types a trick's hooks receive and return: the contract's data, no behaviour beyond checks.

- ``Budget``, ``Schedule``, ``Warmup``: what ``lr_schedule`` and ``warmup`` get and return (the
  engine's ``training.schedule.LRController`` steps them).
- ``Batch``: a training batch, images and targets together, as ``augment_batch`` hooks get and
  return it (targets: class indices, or a probability per class after mixup or cutmix).
- ``TrainSplit``: the run's training split, for hooks and callbacks that need training batches
  (batch-norm statistics re-estimated for averaged weights, say).

Nothing here imports another layer of the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

INTERVALS = ("step", "epoch")
MONITORS = ("val_loss", "val_accuracy", "train_loss")


@dataclass(frozen=True)
class Budget:
    epochs: int              # planned epochs
    steps_per_epoch: int     # optimizer steps per epoch (training images / batch size, rounded up)
    warmup_steps: int = 0    # optimizer steps taken by a warm-up in front of the schedule

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def main_steps(self) -> int:
        """Optimizer steps left for the main schedule after the warm-up (at least 1)."""
        return max(1, self.total_steps - self.warmup_steps)

    @property
    def main_epochs(self) -> int:
        """Epoch ends left for a per-epoch schedule after the warm-up (at least 1)."""
        return max(1, self.epochs - math.ceil(self.warmup_steps / self.steps_per_epoch))


@dataclass(frozen=True)
class Schedule:
    scheduler: Any              # a torch.optim.lr_scheduler object built on the run's optimizer
    interval: str = "epoch"     # "step": after every optimizer step; "epoch": after every epoch
    monitor: str | None = None  # metric-driven schedulers: the metric passed to step(), see MONITORS

    def __post_init__(self):
        if self.interval not in INTERVALS:
            raise ValueError(f"Schedule interval must be one of {', '.join(INTERVALS)}, got {self.interval!r}")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise ValueError(f"Schedule monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if self.monitor is not None and self.interval != "epoch":
            raise ValueError("a metric-driven schedule steps once per epoch (interval='epoch')")


@dataclass(frozen=True)
class Warmup:
    steps: int                 # optimizer steps from start_factor * lr up to lr
    start_factor: float        # the first step's LR as a fraction of the optimizer's lr


@dataclass
class Batch:
    """One training batch: ``images`` float in [0, 1], NCHW, before the input transform; ``targets``
    class indices (int64, shape N) or a probability per class (float, shape N x classes)."""
    images: torch.Tensor
    targets: torch.Tensor
    num_classes: int

    @property
    def soft(self) -> bool:
        return self.targets.dim() == 2

    def probabilities(self) -> torch.Tensor:
        """The targets as a probability per class (one-hot for class indices)."""
        if self.soft:
            return self.targets
        return torch.nn.functional.one_hot(self.targets, self.num_classes).to(self.images.dtype)


@dataclass
class TrainSplit:
    """The run's training split as the model sees it: ``batches()`` yields network inputs (input
    transform applied, no augmentation) in a fixed order, ``batch_size`` images each."""
    images: torch.Tensor            # uint8 NCHW on the training device
    labels: torch.Tensor            # int64 class indices
    prepare: Callable[[torch.Tensor], torch.Tensor]   # uint8 batch -> network input
    batch_size: int

    def batches(self) -> Iterator[torch.Tensor]:
        for i in range(0, self.images.shape[0], self.batch_size):
            yield self.prepare(self.images[i:i + self.batch_size])

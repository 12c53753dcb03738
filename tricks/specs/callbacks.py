"""Per-epoch callbacks: a narrow contract, testable without a trainer.

After each epoch the engine hands every callback an ``EpochState``: the epoch, the LR used, and
the metrics a decision may read (``train_loss`` always; ``val_loss`` and ``val_accuracy`` when the
study has a validation split). Test metrics are deliberately absent: they are what the study
reports, so no decision may depend on them. A callback may set ``state.should_stop`` (with a
``stop_reason``); ``on_train_end(model)`` runs once after the last epoch, before the final test
(e.g. to restore the best weights). ``state.model`` is the live model, for callbacks that keep a
copy of its weights, ``state.optimizer`` the run's optimizer and ``state.train`` the training split
(a ``types.TrainSplit``); scripted tests pass None.

A callback's state goes into the run's per-epoch checkpoint: by default its attributes
(``state_dict``/``load_state_dict``), which must then be plain data: tensors, numbers, strings,
None and lists, tuples or dicts of them (checkpoints are read with ``weights_only=True``, so that a
results folder from someone else cannot run code; a callback holding anything else needs its own
``state_dict``/``load_state_dict`` that convert it, and a checkpoint refuses it with its path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpochState:
    epoch: int                  # 1-based, the epoch just finished
    epochs: int                 # planned epochs
    lr: float                   # the learning rate at the start of this epoch
    metrics: dict[str, float] = field(default_factory=dict)   # train_loss, val_loss, val_accuracy
    model: Any = None           # the model being trained (None in scripted tests)
    should_stop: bool = False
    stop_reason: str = ""
    optimizer: Any = None       # the run's optimizer (None in scripted tests)
    train: Any = None           # the training split (``types.TrainSplit``: batches for BN statistics, ...)


class Callback:
    def on_epoch_end(self, state: EpochState) -> None:  # pragma: no cover - empty by design
        pass

    def on_train_end(self, model: Any) -> None:  # pragma: no cover - empty by design
        pass

    def state_dict(self) -> dict:
        """What a resumed run needs to decide as this one would (checkpoints): the attributes."""
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)

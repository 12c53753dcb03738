"""Per-epoch callbacks: a narrow contract, testable without a trainer.

A callback reads an ``EpochState`` after each epoch and may set ``state.should_stop``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EpochState:
    epoch: int            # 1-based, the epoch just finished
    epochs: int           # planned epochs
    train_loss: float     # mean NLL over the epoch's training batches
    test_accuracy: float  # on the whole test split, after this epoch
    lr: float             # the learning rate used during this epoch
    should_stop: bool = False
    stop_reason: str = ""


class Callback:
    def on_epoch_end(self, state: EpochState) -> None:  # pragma: no cover - empty by design
        pass

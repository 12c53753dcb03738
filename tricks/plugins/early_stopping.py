"""Early stopping on a validation metric (the semantics of Lightning's ``EarlyStopping``).

Reference: Lightning's ``EarlyStopping(monitor, mode, patience, min_delta)`` (an improvement must beat
the best so far by more than ``min_delta``; ``patience`` epochs without one stop the run), with Keras's
``restore_best_weights`` as ``restore_best``. Refused when the spec loads (``allow_noop`` runs it
anyway): a patience of epochs - 1 or more, since the first epoch always improves and the earliest
stop is after epoch patience + 1 (unless ``restore_best`` still has epochs to choose from); and
``restore_best`` beside a trick that supplies the evaluated weights (``ema``, ``swa``), which would
restore the trained weights while the test evaluates the average.
"""

from __future__ import annotations

import math

from ..errors import SpecError
from ..specs.base import ALLOW_NOOP, Trick
from ..specs.callbacks import Callback, EpochState
from ..specs.params import Param
from ..specs.registry import register_trick

MONITORS = {"val_loss": "min", "val_accuracy": "max"}   # metric -> the direction that is better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    An epoch improves when the metric beats the best so far by more than ``min_delta`` (lower in
    mode "min", higher in "max"); ``wait`` counts the epochs since the last improvement. With
    ``restore_best`` the weights of the best epoch are put back before the final test.
    """

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float, restore_best: bool):
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = abs(min_delta), restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_state = None

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: EpochState) -> None:
        value = state.metrics[self.monitor]
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best and state.model is not None:
                self.best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.should_stop = True
            state.stop_reason = (f"early stopping: {self.monitor} did not improve by more than {self.min_delta:g} "
                                 f"for {self.patience} epoch(s); best {self.best:.4f} in epoch {self.best_epoch}")

    def on_train_end(self, model) -> None:
        if self.restore_best and self.best_state is not None and model is not None:
            model.load_state_dict(self.best_state)


@register_trick
class EarlyStoppingTrick(Trick):
    name = "early_stopping"
    description = "Stop training when a validation metric stops improving; optionally restore the best weights."
    needs_validation = True
    params = (
        Param("monitor", str, "val_loss", "validation metric watched", choices=tuple(MONITORS)),
        Param("mode", str, "auto", "min, max, or auto (min for a loss, max for an accuracy)",
              choices=("auto", "min", "max")),
        # 3 epochs: long enough to ride out one noisy validation epoch of a 10-epoch budget
        Param("patience", int, 3, "epochs without improvement before stopping", low=1, high=10**6),
        Param("min_delta", float, 0.0, "smallest change of the metric that counts as an improvement (its units)",
              low=0.0, high=1e6),
        Param("restore_best", bool, False, "load the best epoch's weights before the final test (refused beside "
              "ema or swa, whose average the test evaluates)"),
        ALLOW_NOOP,
    )

    def check_budget(self, budget) -> None:
        # the first epoch always improves, so the earliest stop is after epoch patience + 1; restoring the
        # best epoch can still act when there are at least two epochs to choose from
        if self.p["patience"] + 1 >= budget.epochs and (not self.p["restore_best"] or budget.epochs == 1):
            self.refuse_noop("patience", "leaves no epoch to save: the earliest stop is after epoch "
                             "patience + 1, so it would never stop a run early", budget, "lower patience")

    def check_variant(self, tricks) -> None:
        averaging = [t.name for t in tricks if "evaluation_model" in t.claimed_hooks()]
        if self.p["restore_best"] and averaging:
            raise SpecError(f"trick '{self.name}': restore_best = true beside '{averaging[0]}', which evaluates "
                            "its own average: the best epoch's trained weights would be restored and never "
                            "evaluated; set restore_best = false (the run still stops early)")

    def callbacks(self) -> list:
        mode = MONITORS[self.p["monitor"]] if self.p["mode"] == "auto" else self.p["mode"]
        return [EarlyStopping(self.p["monitor"], mode, self.p["patience"], self.p["min_delta"], self.p["restore_best"])]

"""What an entry point returns, checked and turned into the outcome a run record holds (``specs.entry``
says what it must hold). A result that breaks the contract fails its run with one line naming the
entry point and what is wrong (a ``TricksError``), never with a record the reports would misread.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import TricksError
from .schema import EPOCH, problem

RESULT_KEYS = {"history", "predictions", "labels", "status", "stop_reason", "parameters", "resumed_from_epoch",
               "train_images", "validation_images"}


def _plain(value: Any, what: str) -> Any:
    """A JSON value from what a training loop has at hand (tensors, numpy scalars and arrays included)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    elif hasattr(value, "item") and not isinstance(value, (int, float, bool, str)):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{what}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TricksError(f"{what} must be a number, string, list or dict (JSON), got {type(value).__name__}")


def plain_row(row: Any, entry: str | None) -> dict:
    """A history row as a record stores it; a TricksError naming the entry point when it is not one."""
    if not isinstance(row, dict):
        raise TricksError(f"entry {entry!r}: each history row must be a dict like {{'epoch': 1, 'train_loss': ..., "
                          f"'test_accuracy': ..., 'lr': ...}}, got {type(row).__name__}")
    row = _plain(row, f"entry {entry!r}: history row")
    why = problem(row, EPOCH)
    if why is not None:
        raise TricksError(f"entry {entry!r}: history row {row.get('epoch', '?')}: {why} (each row needs epoch, "
                          "train_loss, test_accuracy in [0, 1] and lr)")
    return row


def _labels(value: Any, what: str, entry: str) -> list[int]:
    values = _plain(value, f"entry {entry!r}: {what}") if value is not None else None
    if not isinstance(values, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        raise TricksError(f"entry {entry!r}: the result's {what!r} must be a list (or 1-d tensor) of class indices")
    return values


def check_result(result: Any, settings, context, wall: float) -> dict:
    """The run's outcome (history, status, test predictions, ...) from the entry point's ``result``."""
    entry = settings.entry
    if not isinstance(result, dict):
        raise TricksError(f"entry {entry!r} returned {type(result).__name__}; it must return a dict with "
                          "history, predictions and labels")
    unknown = sorted(set(result) - RESULT_KEYS)
    if unknown:
        raise TricksError(f"entry {entry!r}: the result has unknown key(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(RESULT_KEYS))}")
    for key in ("history", "predictions", "labels"):
        if key not in result:
            raise TricksError(f"entry {entry!r}: the result has no {key!r}")
    rows = result["history"]
    if not isinstance(rows, list) or not rows:
        raise TricksError(f"entry {entry!r}: the result's history must be a list with a row per finished epoch")
    history = [plain_row(r, entry) for r in rows]
    epochs = [h["epoch"] for h in history]
    if epochs != list(range(1, len(epochs) + 1)) or len(epochs) > settings.epochs:
        raise TricksError(f"entry {entry!r}: the history's epochs must be 1, 2, ... up to the budget's "
                          f"{settings.epochs}, got {epochs}")
    if settings.validation:
        lacking = [h["epoch"] for h in history if "val_accuracy" not in h or "val_loss" not in h]
        if lacking:
            raise TricksError(f"entry {entry!r}: the budget holds out {settings.validation} validation images, but "
                              f"epoch(s) {', '.join(map(str, lacking))} report no val_accuracy and val_loss")
    labels = _labels(result["labels"], "labels", entry)
    predictions = _labels(result["predictions"], "predictions", entry)
    truth = context.test_labels
    if len(labels) != len(truth) or labels != truth:
        wrong = sum(a != b for a, b in zip(labels, truth)) + abs(len(labels) - len(truth))
        raise TricksError(f"entry {entry!r}: its test labels differ from the dataset's test split ({len(labels)} "
                          f"labels, {len(truth)} test images, {wrong} differ): return the predictions in the order "
                          "of context.test_labels (an unshuffled test loader over the same files)")
    n_classes = len(context.classes)
    if len(predictions) != len(truth) or any(not 0 <= p < n_classes for p in predictions):
        raise TricksError(f"entry {entry!r}: predictions must be {len(truth)} class indices in [0, {n_classes}), "
                          f"got {len(predictions)}")
    bad = next((h for h in history if not math.isfinite(h["train_loss"])), None)
    status = result.get("status", "diverged" if bad is not None else "ok")
    if status not in ("ok", "diverged"):
        raise TricksError(f"entry {entry!r}: the result's status must be 'ok' or 'diverged', got {status!r}")
    stop = result.get("stop_reason")
    if stop is None:
        stop = f"training loss became {bad['train_loss']} in epoch {bad['epoch']}" if bad is not None else \
            f"the entry point stopped after epoch {len(history)} of {settings.epochs}" \
            if len(history) < settings.epochs else ""
    timed = all("train_seconds" in h for h in history)
    outcome = {"status": status, "stop_reason": str(stop), "history": history, "epochs_run": len(history),
               "predictions": predictions,
               "train_seconds": sum(h["train_seconds"] for h in history) if timed else wall,
               "eval_seconds": sum(h.get("eval_seconds", 0.0) for h in history),
               "resumed_from_epoch": int(result.get("resumed_from_epoch", context.resumed_from_epoch)),
               "notices": list(context.notices)}
    for key in ("parameters", "train_images", "validation_images"):
        if key in result:
            outcome[key] = _plain(result[key], f"entry {entry!r}: {key}")
    return outcome

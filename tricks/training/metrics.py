"""Scores for one run's final test predictions, with scikit-learn.

The study driver scores every run as its record arrives (``score_record``), so that worker
processes never import scikit-learn (about 1.3-2.2 s of CPU each, on the path to the first run).
No torch here."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from ..predictions import encode_labels


def score(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> dict:
    """accuracy, micro/macro F1, the confusion matrix (rows: true class) and the per-class report."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(classes)))
    report = classification_report(y_true, y_pred, labels=labels, target_names=list(classes),
                                   output_dict=True, zero_division=0)
    per_class = {c: {k: float(report[c][k]) for k in ("precision", "recall", "f1-score", "support")}
                 for c in classes}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "micro_f1": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": per_class,
    }


def score_record(record: dict, y_true: Sequence[int]) -> dict:
    """The record from a worker with its test ``predictions`` scored into ``metrics`` and kept, per image,
    as ``test_predictions`` (``tricks.predictions``: one byte an image), for McNemar tests and test-set
    bootstraps; the study keeps the labels once, in ``test_labels.json``."""
    predictions = record.pop("predictions")
    record["metrics"] = score(y_true, predictions, record["classes"])
    record["test_predictions"] = encode_labels(predictions)
    return record

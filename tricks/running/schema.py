"""Schemas of the files the suite reads back: run records, ``study.json``, the regression reference.

A schema is built from a handful of checkers (``Num``, ``Int``, ``Str``, ``ListOf``, ``Obj``, ...);
``validate(value, schema, what)`` returns nothing or raises ``SchemaError`` with one line naming
the file and the first thing wrong in it (``runs/a__seed0.json: metrics.accuracy must be a number in
[0, 1], got 'high'``). Extra keys are allowed (newer writers may add fields); missing required keys,
wrong types, non-finite numbers where finite ones are needed and out-of-range values are not.
No torch here: the report and the regression check use it.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import TricksError


class SchemaError(TricksError):
    """A file the suite wrote (or was given) does not have the shape it must have."""


class _Bad(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path or 'the top level'} {message}")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


class Check:
    what = "a value"

    def __call__(self, v: Any, path: str) -> None:
        raise NotImplementedError


class Num(Check):
    """A real number (not a bool); finite unless ``finite=False``; optionally in [low, high]."""

    def __init__(self, low: float | None = None, high: float | None = None, finite: bool = True):
        self.low, self.high, self.finite = low, high, finite
        rng = f" in [{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]" \
            if low is not None or high is not None else ""
        self.what = ("a finite number" if finite else "a number") + rng

    def __call__(self, v, path):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Bad(path, f"must be {self.what}, got {_show(v)}")
        if self.finite and not math.isfinite(v):
            raise _Bad(path, f"must be {self.what}, got {v}")
        if math.isfinite(v) and ((self.low is not None and v < self.low) or (self.high is not None and v > self.high)):
            raise _Bad(path, f"must be {self.what}, got {_show(v)}")


class Int(Num):
    def __init__(self, low: int | None = None, high: int | None = None):
        super().__init__(low, high)
        self.what = self.what.replace("a finite number", "an integer")

    def __call__(self, v, path):
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(path, f"must be {self.what}, got {_show(v)}")
        super().__call__(v, path)


class Str(Check):
    what = "a string"

    def __call__(self, v, path):
        if not isinstance(v, str):
            raise _Bad(path, f"must be a string, got {_show(v)}")


class Bool(Check):
    what = "true/false"

    def __call__(self, v, path):
        if not isinstance(v, bool):
            raise _Bad(path, f"must be true/false, got {_show(v)}")


class OneOf(Check):
    def __init__(self, *values):
        self.values = values
        self.what = "one of " + ", ".join(map(repr, values))

    def __call__(self, v, path):
        if isinstance(v, bool) or v not in self.values:
            raise _Bad(path, f"must be {self.what}, got {_show(v)}")


class Opt(Check):
    """``None`` or what ``inner`` accepts."""

    def __init__(self, inner: Check):
        self.inner = inner
        self.what = f"{inner.what} or null"

    def __call__(self, v, path):
        if v is not None:
            self.inner(v, path)


class ListOf(Check):
    def __init__(self, item: Check, min_len: int = 0):
        self.item, self.min_len = item, min_len
        self.what = "a list" + (" (not empty)" if min_len else "")

    def __call__(self, v, path):
        if not isinstance(v, list):
            raise _Bad(path, f"must be a list, got {_show(v)}")
        if len(v) < self.min_len:
            raise _Bad(path, f"must have at least {self.min_len} item(s), got {len(v)}")
        for i, x in enumerate(v):
            self.item(x, f"{path}[{i}]")


class DictOf(Check):
    """A JSON object with any string keys whose values all satisfy ``value``."""

    what = "an object"

    def __init__(self, value: Check):
        self.value = value

    def __call__(self, v, path):
        if not isinstance(v, dict):
            raise _Bad(path, f"must be an object, got {_show(v)}")
        for k, x in v.items():
            self.value(x, f"{path}.{k}" if path else str(k))


class Obj(Check):
    """A JSON object with these required keys (and ``optional`` ones checked when present)."""

    what = "an object"

    def __init__(self, required: dict[str, Check], optional: dict[str, Check] | None = None):
        self.required, self.optional = required, optional or {}

    def __call__(self, v, path):
        if not isinstance(v, dict):
            raise _Bad(path, f"must be an object, got {_show(v)}")
        for k, check in self.required.items():
            where = f"{path}.{k}" if path else k
            if k not in v:
                raise _Bad(where, "is missing")
            check(v[k], where)
        for k, check in self.optional.items():
            if k in v:
                check(v[k], f"{path}.{k}" if path else k)


class Any_(Check):
    what = "anything"

    def __call__(self, v, path):
        return None


def validate(value: Any, schema: Check, what: str) -> None:
    """Raise ``SchemaError("<what>: <path>: <problem>")`` unless ``value`` fits ``schema``."""
    try:
        schema(value, "")
    except _Bad as exc:
        raise SchemaError(f"{what}: {exc}") from None


def problem(value: Any, schema: Check) -> str | None:
    """The first thing wrong with ``value``, or None."""
    try:
        schema(value, "")
    except _Bad as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# the files

FRACTION = Num(0.0, 1.0)
TRICK = Obj({"name": Str()})

DATASET = Obj({}, {"sha256": Str(), "classes": ListOf(Str()), "train_images": Int(0), "test_images": Int(0)})

MANIFEST = Obj({
    "spec": Obj({"name": Str(), "variants": ListOf(Obj({"name": Str(), "tricks": ListOf(TRICK)},
                                                       {"base": Opt(Str()), "description": Str(),
                                                        "default_lr": Num(0.0)}), 1)},
                {"description": Str(), "path": Str()}),
    "seeds": ListOf(Int(0), 1),
    "epochs": Int(1),
    "batch_size": Int(1),
    "train_subset": Opt(Int(1)),
    "dataset": DATASET,
    "runs": ListOf(Obj({"variant": Str(), "seed": Int(0), "settings_key": Str()},
                       {"tuned_lr": Num(0.0), "workload": Str()})),
}, {"validation": Int(0), "precision": Str(), "workers": Int(1), "device": Str(),
    "tuning": Obj({"lr": ListOf(Num(0.0), 2), "select_on": OneOf("val_accuracy", "val_loss")}),
    "workloads": ListOf(Obj({"name": Str(), "model": Str()}, {"epochs": Opt(Int(1)), "train_subset": Opt(Int(1)),
                                                             "dataset": Str(), "data_dir": Str()}), 1),
    "workload_datasets": DictOf(DATASET)})

LABELS = Obj({"encoding": OneOf("uint8-base64"), "n": Int(0), "data": Str()})   # tricks.predictions

EPOCH = Obj({"epoch": Int(1), "train_loss": Num(finite=False), "test_accuracy": FRACTION, "lr": Num(0.0)},
            {"test_loss": Num(finite=False), "val_loss": Num(finite=False), "val_accuracy": FRACTION,
             "train_nll": Num(finite=False), "train_seconds": Num(0.0), "eval_seconds": Num(0.0)})

RUN_RECORD = Obj({
    "schema": OneOf(1, 2),
    "variant": Str(),
    "seed": Int(0),
    "settings_key": Str(),
    "status": OneOf("ok", "diverged"),
    "history": ListOf(EPOCH),
    "metrics": Obj({"accuracy": FRACTION, "micro_f1": FRACTION, "macro_f1": FRACTION,
                    "confusion_matrix": ListOf(ListOf(Int(0))),
                    "per_class": DictOf(Obj({"precision": FRACTION, "recall": FRACTION, "f1-score": FRACTION,
                                             "support": Num(0.0)}))}),
    "classes": ListOf(Str()),
}, {"wall_seconds": Num(0.0), "train_seconds": Num(0.0), "eval_seconds": Num(0.0), "epochs_run": Int(0),
    "stop_reason": Str(), "provenance": Obj({}), "settings": Obj({}), "finished_at": Str(),
    "resumed_from_epoch": Int(0), "tuned_lr": Opt(Num(0.0)), "workload": Opt(Str()),
    "lr_trace": Obj({"steps_per_epoch": Int(1), "step": ListOf(Int(0)), "lr": ListOf(Num(0.0))}),
    "test_predictions": LABELS})

REFERENCE = Obj({
    "schema": OneOf(1),
    "profile": Obj({}),
    "reference_variant": Str(),
    "baseline": Obj({"accuracy": FRACTION, "floor": Num(-1.0, 1.0)}, {"sd": Num(0.0), "per_seed": ListOf(FRACTION)}),
    "variants": DictOf(Obj({"delta": Num(-1.0, 1.0), "tolerance": Num(0.0, 1.0)},
                           {"delta_sd": Num(0.0, finite=False), "n": Int(0), "per_seed": ListOf(Num(-1.0, 1.0))})),
})

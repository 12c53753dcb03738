"""Workloads: the model (and budget) a study's variants run on.

    model = "resnet8"            # every variant on one registered model (default tf_cnn)

    [[workloads]]                # or: several workloads, every variant on each, with the same seeds
    name = "tf_cnn"
    model = "tf_cnn"
    [[workloads]]
    name = "3c3d"
    model = "cifar10_3c3d"
    epochs = 10                  # optional: the workload's own budget (default: [training])
    train_subset = 20000         # optional: images in its class-balanced training subset

A workload's model is part of every run's settings key (``tf_cnn`` is left out of it, so runs stored
before models were a setting keep their keys); its name labels its runs (``<variant>@<workload>``
files, the ``workload`` column) and the transfer report. Every workload uses the study's dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .models import DEFAULT_MODEL, MODELS
from .spec_values import NAME_RE, _check_keys, _int, _str

WORKLOAD_KEYS = {"name", "model", "epochs", "train_subset"}
MAX_WORKLOADS = 16


@dataclass(frozen=True)
class Workload:
    name: str | None                 # None: the study's only workload (its runs are named as before)
    model: str = DEFAULT_MODEL       # a registered model (specs.models.MODELS)
    epochs: int | None = None        # None: the spec's [training] epochs
    train_subset: int | None = None  # images; None: the spec's [training] train_subset

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "epochs": self.epochs, "train_subset": self.train_subset}


def check_model(name: Any, what: str) -> str:
    name = _str(name, what)
    if name not in MODELS:
        raise SpecError(f"{what}: unknown model {name!r}; valid: {', '.join(MODELS.names()) or '(none registered)'}")
    return name


def parse_workloads(raw: dict, where: str) -> tuple[Workload, ...]:
    """The spec's workloads: its ``[[workloads]]``, else one unnamed workload on ``model`` (default tf_cnn)."""
    if "workloads" not in raw:
        return (Workload(None, check_model(raw.get("model", DEFAULT_MODEL), f"{where}: 'model'")),)
    if "model" in raw:
        raise SpecError(f"{where}: give either model = ... or [[workloads]] (each with its model), not both")
    items = raw["workloads"]
    if not isinstance(items, list) or not items or len(items) > MAX_WORKLOADS:
        raise SpecError(f"{where}: [[workloads]] must be 1 to {MAX_WORKLOADS} tables, got {items!r}")
    out: list[Workload] = []
    for i, w in enumerate(items, 1):
        wwhere = f"{where}: workload #{i}"
        if not isinstance(w, dict):
            raise SpecError(f"{wwhere} must be a table, got {w!r}")
        _check_keys(w, WORKLOAD_KEYS, wwhere)
        name = w.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SpecError(f"{wwhere} needs a 'name' of letters, digits, '_', '-' or '.', got {name!r}")
        if name in {x.name for x in out}:
            raise SpecError(f"{where}: workload name {name!r} is used twice")
        wwhere = f"{where}: workload '{name}'"
        out.append(Workload(
            name, check_model(w.get("model", DEFAULT_MODEL), f"{wwhere} 'model'"),
            _int(w["epochs"], f"{wwhere} epochs", 1, 10_000) if "epochs" in w else None,
            _int(w["train_subset"], f"{wwhere} train_subset", 1, 10**9) if "train_subset" in w else None))
    return tuple(out)

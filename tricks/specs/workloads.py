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
    dataset = "cifar100"         # optional: its own dataset (default: the study's --dataset)
    data_dir = "data/c100"       # optional: where that dataset is (default: the study's --data-dir)

A workload's model is part of every run's settings key (``tf_cnn`` is left out of it, so runs stored
before models were a setting keep their keys); its name labels its runs (``<variant>@<workload>``
files, the ``workload`` column) and the transfer report. A workload without a ``dataset`` uses the
study's (``--dataset``, ``--data-dir``); with one, its runs train and are scored on that dataset, whose
decoded checksum is part of their settings keys as the study's is (``data_dir`` is a relative path
from the working directory, like ``--data-dir``; a torchvision archive defaults to the study's
``--data-dir``, where the CIFAR-10 and CIFAR-100 archives can sit side by side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .models import DEFAULT_MODEL, MODELS
from .spec_values import _int, _str, named_table

WORKLOAD_KEYS = {"name", "model", "epochs", "train_subset", "dataset", "data_dir"}
MAX_WORKLOADS = 16
# The dataset registry's names (``--dataset``, a workload's ``dataset``); training.data loads each.
DATASETS = ("cifar10", "cifar100", "imagefolder")


@dataclass(frozen=True)
class Workload:
    name: str | None                 # None: the study's only workload (its runs are named as before)
    model: str = DEFAULT_MODEL       # a registered model (specs.models.MODELS)
    epochs: int | None = None        # None: the spec's [training] epochs
    train_subset: int | None = None  # images; None: the spec's [training] train_subset
    dataset: str | None = None       # one of DATASETS; None: the study's --dataset
    data_dir: str | None = None      # its directory; None: the study's --data-dir

    def to_dict(self) -> dict[str, Any]:
        """The workload as ``study.json`` lists it (dataset and data_dir only when the spec sets them)."""
        d = {"name": self.name, "model": self.model, "epochs": self.epochs, "train_subset": self.train_subset}
        d.update({k: v for k, v in (("dataset", self.dataset), ("data_dir", self.data_dir)) if v is not None})
        return d


def check_model(name: Any, what: str) -> str:
    name = _str(name, what)
    if name not in MODELS:
        raise SpecError(f"{what}: unknown model {name!r}; valid: {', '.join(MODELS.names()) or '(none registered)'}")
    return name


def check_dataset(name: Any, what: str) -> str:
    name = _str(name, what)
    if name not in DATASETS:
        raise SpecError(f"{what}: unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
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
        name = named_table(w, i, WORKLOAD_KEYS, where, "workload")
        if name in {x.name for x in out}:
            raise SpecError(f"{where}: workload name {name!r} is used twice")
        wwhere = f"{where}: workload '{name}'"
        out.append(Workload(
            name, check_model(w.get("model", DEFAULT_MODEL), f"{wwhere} 'model'"),
            _int(w["epochs"], f"{wwhere} epochs", 1, 10_000) if "epochs" in w else None,
            _int(w["train_subset"], f"{wwhere} train_subset", 1, 10**9) if "train_subset" in w else None,
            check_dataset(w["dataset"], f"{wwhere} 'dataset'") if "dataset" in w else None,
            _dir(w["data_dir"], f"{wwhere} 'data_dir'") if "data_dir" in w else None))
    return tuple(out)


def _dir(value: Any, what: str) -> str:
    value = _str(value, what)
    if not value.strip():
        raise SpecError(f"{what} must be a directory path, got an empty string")
    return value

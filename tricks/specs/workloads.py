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
    [[workloads]]
    name = "mine"
    entry = "train:run"          # instead of a model: your own training function (specs.entry)
    config = { lr = 1e-3 }       # its configuration; variants and factors set keys of it

A workload's model is part of every run's settings key (``tf_cnn`` is left out of it, so runs stored
before models were a setting keep their keys); its name labels its runs (``<variant>@<workload>``
files, the ``workload`` column) and the transfer report. A workload without a ``dataset`` uses the
study's (``--dataset``, ``--data-dir``); with one, its runs train and are scored on that dataset, whose
decoded checksum is part of their settings keys as the study's is (``data_dir`` is a relative path
from the working directory, like ``--data-dir``; a torchvision archive defaults to the study's
``--data-dir``, where the CIFAR-10 and CIFAR-100 archives can sit side by side). An entry-point
workload (``entry``, at the top level or in ``[[workloads]]``) has no model: its name labels the runs as
a model's does (``Workload.model`` holds the entry), its entry, configuration and module source are
settings of its runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .datasets import DATASETS
from .entry import check_entry, parse_config
from .models import DEFAULT_MODEL, MODELS
from .spec_values import _int, _str, named_table

WORKLOAD_KEYS = {"name", "model", "epochs", "train_subset", "dataset", "data_dir", "entry", "config"}
MAX_WORKLOADS = 16


@dataclass(frozen=True)
class Workload:
    name: str | None                 # None: the study's only workload (its runs are named as before)
    model: str = DEFAULT_MODEL       # a registered model (specs.models.MODELS)
    epochs: int | None = None        # None: the spec's [training] epochs
    train_subset: int | None = None  # images; None: the spec's [training] train_subset
    dataset: str | None = None       # a registered dataset (specs.datasets); None: the study's --dataset
    data_dir: str | None = None      # its directory; None: the study's --data-dir
    entry: str | None = None         # "module:function" trained instead of a model (specs.entry); then
                                     # ``model`` holds the same name, as the runs' label
    config: dict | None = None       # an entry-point workload's configuration (variants add keys)

    def to_dict(self) -> dict[str, Any]:
        """The workload as ``study.json`` lists it (dataset, data_dir, entry and config only when set)."""
        d = {"name": self.name, "model": self.model, "epochs": self.epochs, "train_subset": self.train_subset}
        d.update({k: v for k, v in (("dataset", self.dataset), ("data_dir", self.data_dir), ("entry", self.entry),
                                    ("config", self.config)) if v is not None})
        return d


def check_model(name: Any, what: str) -> str:
    name = _str(name, what)
    if name not in MODELS:
        raise SpecError(f"{what}: unknown model {name!r}; valid: {', '.join(MODELS.names()) or '(none registered)'}")
    return name


def check_dataset(name: Any, what: str) -> str:
    name = _str(name, what)
    if name not in DATASETS:
        raise SpecError(f"{what}: unknown dataset {name!r}; valid: {', '.join(DATASETS.names()) or '(none registered)'}")
    return name


def parse_workloads(raw: dict, where: str) -> tuple[Workload, ...]:
    """The spec's workloads: its ``[[workloads]]``, else one unnamed workload on ``model`` (default tf_cnn)
    or on ``entry`` (with its ``config``)."""
    if "entry" in raw or "config" in raw:
        for other in ("model", "workloads"):
            if other in raw:
                raise SpecError(f"{where}: give either entry = ... (with its config) or {other}, not both")
        return (_entry_workload(None, raw, where),)
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
        if "entry" in w or "config" in w:
            if "model" in w:
                raise SpecError(f"{wwhere}: give either model = ... or entry = ... (your own training function), "
                                "not both")
            out.append(_entry_workload(name, w, wwhere))
            continue
        out.append(Workload(
            name, check_model(w.get("model", DEFAULT_MODEL), f"{wwhere} 'model'"),
            _int(w["epochs"], f"{wwhere} epochs", 1, 10_000) if "epochs" in w else None,
            _int(w["train_subset"], f"{wwhere} train_subset", 1, 10**9) if "train_subset" in w else None,
            check_dataset(w["dataset"], f"{wwhere} 'dataset'") if "dataset" in w else None,
            _dir(w["data_dir"], f"{wwhere} 'data_dir'") if "data_dir" in w else None))
    return tuple(out)


def _entry_workload(name: str | None, w: dict, where: str) -> Workload:
    """A workload on an entry point: ``entry`` (required with ``config``), its config, budget and data."""
    if "entry" not in w:
        raise SpecError(f"{where}: 'config' configures an entry point; add entry = \"module:function\"")
    entry = check_entry(w["entry"], f"{where}: 'entry'")
    return Workload(name, entry,
                    _int(w["epochs"], f"{where} epochs", 1, 10_000) if name is not None and "epochs" in w else None,
                    _int(w["train_subset"], f"{where} train_subset", 1, 10**9)
                    if name is not None and "train_subset" in w else None,
                    check_dataset(w["dataset"], f"{where} 'dataset'") if name is not None and "dataset" in w else None,
                    _dir(w["data_dir"], f"{where} 'data_dir'") if name is not None and "data_dir" in w else None,
                    entry=entry, config=parse_config(w, where))


def _dir(value: Any, what: str) -> str:
    value = _str(value, what)
    if not value.strip():
        raise SpecError(f"{what} must be a directory path, got an empty string")
    return value

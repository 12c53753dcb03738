"""One run into one record: build the recipe from the run's settings, train, describe (the study
driver scores the predictions: workers never import scikit-learn).

``RunContext`` holds what a process keeps between runs (the loaded dataset); each worker process
makes its own, and an in-process study makes one around the dataset it already loaded, so no state
is shared between the study process and its workers. ``run_one`` returns the record; the study
driver writes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import TricksError
from ..training.data import DataSource
from .settings import RunSettings


@dataclass
class RunContext:
    source: DataSource                # the study's dataset (--dataset, --data-dir)
    device: str                       # "cpu", "cuda", "cuda:1", ...
    dataset: object | None = None     # training.data.Dataset of ``source``, loaded on first use
    checkpoint_dir: str | None = None # where runs keep per-epoch checkpoints; None: no checkpoints
    others: dict = field(default_factory=dict)   # DataSource -> Dataset: workloads' own datasets

    def data(self, source: DataSource | None = None):
        """The dataset of ``source`` (default: the study's), loaded on first use."""
        from ..training.data import load_dataset

        if source is None or source == self.source:
            if self.dataset is None:
                self.dataset = load_dataset(self.source, progress=False)
            return self.dataset
        if source not in self.others:
            self.others[source] = load_dataset(source, progress=False)
        return self.others[source]

    def data_for(self, settings: RunSettings):
        """The dataset a run trains on: its workload's own (``data_root``) or the study's, checked
        against the checksum it was planned with."""
        source = self.source if settings.data_root is None else DataSource(settings.data_kind, settings.data_root)
        dataset = self.data(source)
        if dataset.checksum != settings.data_sha256:
            raise TricksError(f"the dataset in {source.root} changed while the study was running")
        return dataset


def recipe_for(settings: RunSettings):
    """The run's recipe, built from its settings: the one place that does, for solo runs and cohorts."""
    from ..training.recipe import build_recipe

    return build_recipe(settings.variant, settings.tricks, settings.tuned_lr, settings.model)


def run_one(settings: RunSettings, ctx: RunContext, emit=None, executor: dict | None = None) -> dict:
    """Train one (variant, seed) and return its record, not yet scored nor written: it carries the
    final test ``predictions``, which the study driver turns into ``metrics`` (``metrics.score_record``).

    ``executor`` describes where it ran (kind, and for Ray its version and node), for provenance.
    A run resumed from a checkpoint says so (``resumed_from_epoch``); its ``wall_seconds`` are this
    attempt's, its ``train_seconds`` and ``eval_seconds`` all epochs'. An entry-point workload's run
    calls the user's function instead of the engine (``entry.run_entry``)."""
    import torch

    from ..plugins import load_plugins
    from ..specs.user_code import with_root
    from ..training.checkpoint import Checkpoints, checkpoint_path
    from ..training.engine import train_run
    from .provenance import provenance
    from .records import make_record

    with_root(settings.code_root)    # the spec's folder first: its imports and entry point (a Ray worker too)
    if settings.entry is not None:   # the user's own training function (specs.entry)
        from .entry import run_entry

        load_plugins(settings.imports)
        return run_entry(settings, ctx, emit, executor)
    emit = emit or (lambda kind, payload: None)
    device = torch.device(ctx.device)
    if device.type != settings.device:   # a run planned for one device kind never trains on another
        raise TricksError(f"{settings.stem} was planned for {settings.device} but handed to a {device.type} "
                          "worker; its settings key names the device kind")
    load_plugins(settings.imports)
    recipe = recipe_for(settings)
    dataset = ctx.data_for(settings)
    emit("start", {"epochs": settings.epochs})
    t0 = time.perf_counter()
    checkpoints = Checkpoints(checkpoint_path(ctx.checkpoint_dir, settings.stem), settings.key(), settings.device) \
        if ctx.checkpoint_dir else None
    out = train_run(recipe, settings, dataset, device, emit, checkpoints)
    prov = {**provenance(device), "denormals": out.pop("denormals"), "torch_threads": out.pop("threads"),
            "executor": executor or {"kind": "local"}}
    if "cuda_math" in out:    # CUDA runs: IEEE fp32 (TF32 off), deterministic cuDNN (training.cuda)
        prov["cuda_math"] = out.pop("cuda_math")
    return make_record(settings, out, None, dataset.describe(), dataset.classes, prov,
                       wall_seconds=time.perf_counter() - t0, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

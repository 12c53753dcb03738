"""Population training in a study (``--population K``): which runs train as members of a population,
the cohorts they form, and how a cohort job becomes one record per member.

``--population K`` trains the runs that share a network shape and a training setup in cohorts of up
to K, each cohort one job of the executor (``training.cohort.train_cohort``). It is opt-in: off by
default on the CPU, where it does not pay, and on CUDA until a GPU check has measured it
(``CUDA_DEFAULT_POPULATION``; docs/gpu.md). A run that trains in a population says so in its settings
(``RunSettings.population``: grouped kernels round differently from a solo run's, so the two are never
mixed under one settings key); whether a run is a member depends only on its variant and K, never on
which runs are pending, so a resumed study plans the same keys. A variant that cannot be batched (its
tricks compute gradients in passes of their own, or its model is not an ``nn.Sequential``) trains
solo; ``plan_population`` says which and why. Every built-in model joins (``resnet8`` too: its
residual blocks run per member inside the population, ``training.population``). Each member's
record names its cohort and the cohort's size (``provenance["population"]``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from ..errors import TricksError
from .runner import RunContext, recipe_for, run_one
from .settings import RunSettings

# Members per cohort on CUDA by default: 0, off, until benchmarks/gpu_check.sh has measured populations
# against solo workers on a GPU (no default without a measurement). Its last line says which default
# its numbers support (benchmarks/gpu_verdict.py: 40, the whole 8 x 5 study's widest shape group in
# one cohort, or 0); set it here, with the check's summary beside it in docs/gpu.md.
CUDA_DEFAULT_POPULATION = 0


@dataclass(frozen=True)
class Cohort:
    """Runs trained as one population: one executor job, one record per member."""
    members: tuple[RunSettings, ...]

    @property
    def stem(self) -> str:            # progress and crash handling follow the first member
        return self.members[0].stem

    @property
    def device(self) -> str:
        return self.members[0].device

    @property
    def threads(self) -> int:
        return self.members[0].threads

    @property
    def name(self) -> str:
        return f"{self.members[0].stem}+{len(self.members) - 1}"


def population_size(requested: int | None, device) -> int:
    """Members per cohort: ``requested``, else ``CUDA_DEFAULT_POPULATION`` on CUDA and 0 (off) on the CPU."""
    if requested is None:
        return CUDA_DEFAULT_POPULATION if device.type == "cuda" else 0
    if requested < 0:
        raise TricksError(f"--population must be 0 (off) or a number of runs per cohort, got {requested}")
    return requested if requested >= 2 else 0


def shape_key(run: RunSettings, num_classes: int | Mapping[str, int]) -> tuple[tuple, str | None]:
    """(what a run's cohort mates must share, why it cannot join a population or None).

    ``num_classes``: the dataset's classes, or {data_sha256: classes} when workloads have datasets of
    their own."""
    from ..plugins import load_plugins
    from ..training.cohort import can_join
    from ..training.population import signature

    if run.entry is not None:   # the user's own loop (specs.entry): nothing to batch
        return ((run.stem,), None), "an entry-point workload trains its own loop"
    load_plugins(run.imports)
    recipe = recipe_for(run)
    why = can_join(recipe)
    n = num_classes if isinstance(num_classes, int) else num_classes[run.data_sha256]
    sig = signature(recipe.model(run.seed, n)) if why is None else None
    if why is None and sig is None:
        why = "its model is not a plain nn.Sequential"
    setup = (run.device, run.precision, run.epochs, run.batch_size, run.train_subset, run.validation, run.threads,
             run.engine, run.data_sha256, run.data_kind, run.imports)
    return (setup, sig), why


def plan_population(runs: list[RunSettings], k: int, num_classes: int | Mapping[str, int]) -> tuple[list[RunSettings], dict[str, str]]:
    """The runs with ``population`` set on those that train as members (none when ``k`` is 0), and
    {variant: why it trains solo} for the variants that cannot."""
    if k < 2:
        return runs, {}
    solo: dict[str, str] = {}
    out = []
    for r in runs:
        _, why = shape_key(r, num_classes)
        if why is not None:
            solo.setdefault(r.arm, why)
        out.append(r if why is not None else replace(r, population=True))
    return out, solo


def form_cohorts(todo: list[RunSettings], k: int, num_classes: int | Mapping[str, int]) -> list[RunSettings | Cohort]:
    """The jobs for ``todo``: members grouped by shape and setup into cohorts of at most ``k`` (a group
    of n runs into ceil(n / k) cohorts of nearly equal size), the other runs alone."""
    groups: dict[tuple, list[RunSettings]] = {}
    jobs: list[RunSettings | Cohort] = []
    for r in todo:
        if r.population:
            groups.setdefault(shape_key(r, num_classes)[0], []).append(r)
        else:
            jobs.append(r)
    cohorts = []
    for group in groups.values():
        n = math.ceil(len(group) / max(k, 1))
        base, extra = divmod(len(group), n)       # n cohorts, sizes differing by one at most
        start = 0
        for i in range(n):
            size = base + (i < extra)
            cohorts.append(Cohort(tuple(group[start:start + size])))
            start += size
    return cohorts + jobs


def run_cohort(cohort: Cohort, ctx: RunContext, emit_for: Callable[[str], Callable], executor: dict | None = None
               ) -> list[dict]:
    """Train a cohort and return its members' records, in member order (not yet scored nor written)."""
    import torch

    from ..plugins import load_plugins
    from ..training.checkpoint import Checkpoints, checkpoint_path
    from ..training.cohort import train_cohort
    from .provenance import provenance
    from .records import make_record

    device = torch.device(ctx.device)
    members = cohort.members
    for s in members:
        if device.type != s.device:
            raise TricksError(f"{s.stem} was planned for {s.device} but handed to a {device.type} worker; "
                              "its settings key names the device kind")
        load_plugins(s.imports)
    recipes = [recipe_for(s) for s in members]
    dataset = ctx.data_for(members[0])     # members share the dataset (shape_key)
    emits = [emit_for(s.stem) for s in members]
    for s, emit in zip(members, emits):
        emit("start", {"epochs": s.epochs})
    checkpoints = [Checkpoints(checkpoint_path(ctx.checkpoint_dir, s.stem), s.key(), s.device)
                   if ctx.checkpoint_dir else None for s in members]
    t0 = time.perf_counter()
    info = {"cohort": cohort.name, "size": len(members)}
    outs = train_cohort(recipes, list(members), dataset, device, emits, checkpoints, info)
    wall = time.perf_counter() - t0
    records = []
    for s, out in zip(members, outs):
        prov = {**provenance(device), "denormals": out.pop("denormals"), "torch_threads": out.pop("threads"),
                "executor": executor or {"kind": "local"}, "population": out.pop("population")}
        if "cuda_math" in out:
            prov["cuda_math"] = out.pop("cuda_math")
        records.append(make_record(s, out, None, dataset.describe(), dataset.classes, prov, wall_seconds=wall,
                                   finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
    return records


def run_job(job: RunSettings | Cohort, ctx: RunContext, emit_for: Callable[[str], Callable],
            executor: dict | None = None):
    """A solo run's record, or a cohort's records (a list, in member order)."""
    if isinstance(job, Cohort):
        return run_cohort(job, ctx, emit_for, executor)
    return run_one(job, ctx, emit_for(job.stem), executor)


def members(job: RunSettings | Cohort) -> tuple[RunSettings, ...]:
    return job.members if isinstance(job, Cohort) else (job,)

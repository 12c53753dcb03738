"""Planning a study: the (variant, seed) runs with their resolved settings, what is already done,
and the manifest (``study.json``) that records what was planned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..training.recipe import build_recipe, trick_versions
from ..specs.spec import Spec
from ..specs.entry import run_code, run_config, variant_default_lr
from ..specs.workloads import Workload
from ..training.data import DataSource
from .records import check_record, run_path
from .settings import RunSettings


@dataclass
class StudyOptions:
    spec: Spec
    source: DataSource
    out_dir: Path
    variants: list[str] | None = None
    seeds: tuple[int, ...] | None = None     # None: the spec's seeds
    epochs: int | None = None                # None: the spec's epochs
    train_subset: int | None = None          # images; None: the spec's (else the whole training split)
    validation: int | None = None            # images; None: the spec's (default 0: no validation split)
    precision: str = "auto"                  # auto | fp32 | bf16 (auto: bf16 where the device runs it natively)
    device: str = "auto"                     # auto | cpu | cuda
    workers: int | None = None               # None: one per `threads` cores on CPU, one per GPU on CUDA
    threads: int = 1                         # intra-op threads per CPU run; part of each run's settings
    replace: bool = False                    # move stored runs of other settings aside instead of refusing
    until: dict | None = None                # --until-halfwidth: the stopping rule and rounds so far (study.json)
    progress: bool = True
    executor: str = "local"                  # local (process pool) | ray (one Ray task per run)
    ray_address: str | None = None           # None: $RAY_ADDRESS, else a local Ray started for the study
    ray_cpus_per_run: float = 1.0            # CPUs per Ray task (and torch threads in it)
    ray_gpus_per_run: float | None = None    # None: 1 on a cluster with GPUs when training on CUDA, else 0
    workloads: tuple[str, ...] | None = None  # a subset of the spec's workloads (by name); None: all
    fixed_lr: dict[str, float] | None = None  # variant -> the one tuned LR it trains at (a confirmation of a
                                              # tuned claim); None: the spec's [tuning] grid, if any


def validation_size(opts: StudyOptions) -> int:
    return opts.spec.training.validation if opts.validation is None else opts.validation


def check_variants(opts: StudyOptions) -> None:
    """Refuse, before any data is loaded, a variant whose tricks need a validation split when there is
    none, and a ``[tuning]`` grid without one (a grid value is chosen on validation, never on test)."""
    if opts.spec.tuning is not None and validation_size(opts) < 1:
        raise SpecError(f"spec '{opts.spec.name}' tunes the LR over {len(opts.spec.tuning.lr)} values, chosen on "
                        f"{opts.spec.tuning.select_on}, but the validation split is 0 images; set [training] "
                        "validation = N in the spec or pass --validation N (e.g. 5000)")
    for v in opts.spec.select(opts.variants):
        build_recipe(v.name, v.tricks).check_validation(validation_size(opts))


def planned_seeds(opts: StudyOptions) -> tuple[int, ...]:
    """The seeds asked for on the command line, else the spec's."""
    return tuple(opts.seeds or opts.spec.training.seeds)


def grid(opts: StudyOptions, variant: str | None = None) -> tuple[float | None, ...]:
    """The tuned LRs ``variant`` runs at: its fixed LR (``opts.fixed_lr``), else the spec's ``[tuning]``
    grid, else (None,): its own LRs."""
    if opts.fixed_lr and variant in opts.fixed_lr:
        return (opts.fixed_lr[variant],)
    return opts.spec.tuning.lr if opts.spec.tuning is not None else (None,)


def planned_workloads(opts: StudyOptions) -> list[Workload]:
    """The spec's workloads, or the subset ``opts.workloads`` names (in spec order)."""
    if opts.workloads is None:
        return list(opts.spec.workloads)
    names = [w.name for w in opts.spec.workloads]
    unknown = [n for n in opts.workloads if n not in names]
    if unknown:
        raise SpecError(f"spec '{opts.spec.name}' has no workload {', '.join(unknown)}; its workloads: "
                        f"{', '.join(str(n) for n in names)}")
    return [w for w in opts.spec.workloads if w.name in opts.workloads]


def workload_source(opts: StudyOptions, w: Workload) -> DataSource:
    """Where a workload's data is: its own ``dataset``/``data_dir``, else the study's source."""
    if w.dataset is None and w.data_dir is None:
        return opts.source
    return DataSource(w.dataset or opts.source.kind, w.data_dir or opts.source.root)


def data_sources(opts: StudyOptions) -> list[DataSource]:
    """The study's source first, then each other source its workloads train on, once."""
    return list(dict.fromkeys([opts.source] + [workload_source(opts, w) for w in planned_workloads(opts)]))


def plan(opts: StudyOptions, checksums: dict[DataSource, str]) -> list[RunSettings]:
    """Every (variant, seed) run, at every grid value when the spec tunes; seed-major (whole seeds
    finish first). ``checksums``: each of ``data_sources(opts)`` with its decoded dataset's sha256."""
    check_variants(opts)
    spec = opts.spec
    seeds = planned_seeds(opts)
    validation = validation_size(opts)
    variants = spec.select(opts.variants)
    versions = {v.name: tuple(trick_versions(v.tricks).items()) for v in variants}
    workloads = planned_workloads(opts)
    sources = {w.name: workload_source(opts, w) for w in workloads}
    code = {w.name: run_code(spec, w) for w in workloads}   # entry point, user modules' sources (specs.entry)
    return [RunSettings(spec=spec.name, variant=v.name, tricks=v.tricks, imports=spec.imports, seed=s,
                        epochs=opts.epochs or w.epochs or spec.training.epochs, batch_size=spec.training.batch_size,
                        train_subset=opts.train_subset or w.train_subset or spec.training.train_subset,
                        precision=opts.precision, data_kind=sources[w.name].kind,
                        data_sha256=checksums[sources[w.name]],
                        validation=validation, trick_versions=versions[v.name], threads=opts.threads,
                        tuned_lr=lr, model=w.model, workload=w.name,
                        data_root=None if sources[w.name] == opts.source else sources[w.name].root,
                        config=run_config(w, v, lr), **code[w.name])
            for s in seeds for w in workloads for v in variants for lr in grid(opts, v.name)]


def planned_keys(runs: list[RunSettings]) -> dict[tuple[str, int], str]:
    return {(r.arm, r.seed): r.key() for r in runs}


def split_done(runs: list[RunSettings], out_dir: Path, index=None
               ) -> tuple[list[RunSettings], list[RunSettings], dict[str, str]]:
    """(already finished with the same settings, still to run, {corrupted run file: why}); ``index``:
    the folder's ``index.RecordIndex`` (read once), else each planned run's file is read.

    A corrupted file (torn by a crash, edited, truncated) is trained again and overwritten."""
    done, todo, corrupted = [], [], {}
    for r in runs:
        path = run_path(out_dir, r.stem)
        if index is not None:
            rec, why = index.record(r.stem), index.problem(r.stem)
        else:
            rec, why = check_record(path) if path.exists() else (None, None)
        if why is not None:
            corrupted[str(path)] = why
        (done if rec is not None and rec["settings_key"] == r.key() else todo).append(r)
    return done, todo, corrupted


def manifest(opts: StudyOptions, runs: list[RunSettings], dataset_info: dict, device, workers: int,
             workload_datasets: dict[str, dict] | None = None) -> dict:
    """``study.json``; ``workload_datasets``: {workload: its dataset's description} for the workloads
    with a dataset of their own."""
    spec = opts.spec
    chosen = {r.variant for r in runs}
    tuned = spec.tuning is not None
    return {
        "spec": {"name": spec.name, "description": spec.description, "path": spec.path,
                 "variants": [{"name": v.name, "base": v.base, "description": v.description,
                               "tricks": [dict(t) for t in v.tricks],
                               **({"config": dict(v.config)} if any(w.entry for w in spec.workloads) else {}),
                               **({"default_lr": variant_default_lr(spec, v)} if tuned else {})}
                              for v in spec.variants if v.name in chosen],
                 **({"design": spec.design} if spec.design else {})},
        **({"tuning": spec.tuning.to_dict()} if tuned else {}),
        **({"workloads": [w.to_dict() for w in spec.workloads]} if spec.multi_workload else {}),
        **({"workload_datasets": workload_datasets} if workload_datasets else {}),
        "seeds": sorted({r.seed for r in runs}),
        "epochs": runs[0].epochs, "batch_size": runs[0].batch_size, "train_subset": runs[0].train_subset,
        "validation": runs[0].validation,
        "precision": runs[0].precision, "threads": runs[0].threads, "dataset": dataset_info,
        "device": str(device), "workers": workers,
        "executor": opts.executor, **({"until": opts.until} if opts.until else {}),
        "runs": [{"variant": r.variant, "seed": r.seed, "settings_key": r.key(),
                  **({"workload": r.workload} if r.workload is not None else {}),
                  **({"tuned_lr": r.tuned_lr} if r.tuned_lr is not None else {})} for r in runs],
    }

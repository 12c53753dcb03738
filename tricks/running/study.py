"""The study driver: plan (variant, seed) runs, skip what is done, hand the rest to an executor,
write every record it returns, atomically, under the results directory's lock.

Every finished run is written as soon as it arrives, so an interrupted study resumes where it
stopped; ``runs.csv`` and ``failures.json`` are refreshed on the way out, whatever happened.
``study.json`` and ``runs.csv`` cover the folder's whole study, not only the runs one command asked
for (``folder.study_runs``).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..errors import DataError, Terminated, TricksError
from ..training.checkpoint import CHECKPOINTS_DIR, discard, remove_if_empty
from .cohorts import form_cohorts, plan_population, population_size
from .device import bf16_is_native, choose_precision, default_workers, resolve_device
from .executors import CRASHED, JobSink, LocalExecutor
from .conflicts import find_conflicts, move_aside, refusal, stored_precision
from .lock import DirectoryLock
from .checks import check_split
from .folder import study_runs
from .plan import (StudyOptions, check_variants, data_sources, manifest, plan, planned_keys, split_done,
                   workload_source)
from .progress import Progress
from .provenance import git_revision
from .index import RecordIndex
from .records import RUNS_DIR, matching, run_path, write_json, write_runs_csv, write_test_labels
from .settings import RunSettings

FAILURES = "failures.json"   # the runs that failed in the latest invocation, with reasons
CSV_EVERY = 2.0              # seconds between refreshes of runs.csv while runs finish (and once at the end)

__all__ = ["StudyOptions", "StudyOutcome", "run_study"]


@dataclass
class StudyOutcome:
    out_dir: Path
    planned: int
    reused: int
    finished: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)      # finished, but the training loss became non-finite
    failed: dict[str, str] = field(default_factory=dict)   # stem -> reason
    tracebacks: dict[str, str] = field(default_factory=dict)   # stem -> traceback, for bugs in tricks/engine
    corrupted: dict[str, str] = field(default_factory=dict)    # run file -> why; trained again
    wall_seconds: float = 0.0
    in_folder: int = 0     # the runs of the folder's study (its tables): these planned ones and the others


def _raise_terminated(signum, frame):
    raise Terminated


def _check_out_dir(out_dir: Path) -> None:
    """Fail before any work if ``out_dir`` cannot become a results directory; creates nothing."""
    import os

    p = out_dir
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise TricksError(f"--out {out_dir}: {p} is a file, not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise TricksError(f"cannot write to the output directory {out_dir} ({p} is not writable)")


def _prepare(*dirs: Path) -> None:
    """Create each directory and prove it writable (before the first run trains, not after)."""
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise TricksError(f"cannot write to {d}: {exc.strerror or exc}") from None


def _say(message: str) -> None:
    print(f"tricks: {message}", file=sys.stderr, flush=True)


def _resolve_precision(opts: StudyOptions, device, notice: Callable[[str], None], native: bool | None,
                       index: RecordIndex) -> str:
    """``auto``: the one precision of the runs already stored in the folder (said), else the device's
    (``native``: whether bf16 is native where the runs execute, when that is not this machine: Ray)."""
    if opts.precision == "auto":
        stored, n = stored_precision(Path(opts.out_dir), index)
        if stored is not None:
            notice(f"--precision auto: using {stored}, the precision of the {n} run(s) stored in {opts.out_dir} "
                   "(a study never mixes precisions; --precision to choose)")
            return stored
    return choose_precision(opts.precision, bf16_is_native(device) if native is None else native)


def run_study(opts: StudyOptions, on_wait: Callable[[], None] | None = None,
              on_notice: Callable[[str], None] = _say, population: int | None = None) -> StudyOutcome:
    """Run the study's unfinished runs and write their records.

    Everything that can refuse the study (options, data, splits, stored runs of other settings) is
    checked before any worker process, shared queue or folder is made; local workers start only
    then, forked from the fork server (which has been importing for them since the command began).
    ``on_wait`` is called once, when runs are handed to local worker processes: from then on this
    process only waits (the CLI imports the report's modules meanwhile, while the workers start).
    ``on_notice`` receives one-line messages for the user (default: printed on stderr).
    ``population``: runs per cohort of population training (``cohorts``); None: the device's default
    (on for CUDA, off for the CPU), 0 or 1: off."""
    from ..training.data import split_training

    t_start = time.perf_counter()
    git_revision()   # cached now: the revision of the code this process loaded (in-process runs record it)
    native = None       # whether bf16 is native on the device: decided here, or on the Ray cluster
    if opts.executor == "ray":
        ray_executor = _ray_executor(opts)   # fails fast, before the data (Ray missing, cluster unreachable)
        device, native = _on_cluster(ray_executor, opts.device)   # where the runs execute, not here
    else:
        ray_executor, device = None, resolve_device(opts.device)
    local = None
    try:
        if opts.threads < 1:
            raise TricksError(f"--threads must be at least 1, got {opts.threads}")
        if opts.workers is not None and opts.workers < 1:
            raise TricksError(f"--workers must be at least 1, got {opts.workers}")
        k = population_size(population, device)     # members per cohort; 0: every run solo
        index = RecordIndex(opts.out_dir)           # the folder's stored runs, each file read once
        opts = replace(opts, precision=_resolve_precision(opts, device, on_notice, native, index))
        check_variants(opts)
        out_dir = Path(opts.out_dir)
        _check_out_dir(out_dir)
        checkpoints = out_dir / CHECKPOINTS_DIR    # per-epoch: an interrupted run resumes at its last epoch
        # decoded and cached once, here: the study's dataset, then each workload's own
        dataset, *rest = [_load(opts, src) for src in data_sources(opts)]
        others = {d.source: d for d in rest}
        by_sha = {d.checksum: d for d in [dataset, *rest]}
        checksums = {d.source: d.checksum for d in [dataset, *rest]}
        num_classes = {sha: len(d.classes) for sha, d in by_sha.items()}   # cohorts' models: per dataset

        def settle(planned: list[RunSettings]) -> list[RunSettings]:   # as this command trains them
            return plan_population(on_device(planned, device), k, num_classes)[0]

        runs = on_device(plan(opts, checksums), device)
        runs, solo = plan_population(runs, k, num_classes)
        # the driver scores every run's predictions, against its own dataset's test labels
        test_labels = {sha: d.test_y.tolist() for sha, d in by_sha.items()}
        for sha, subset in sorted({(r.data_sha256, r.train_subset or 0) for r in runs}):   # checked before any run
            d = by_sha[sha]
            check_split(d.train_y.numel(), len(d.classes), runs[0].validation, subset or None,
                        f"{d.source.kind} in {d.source.root}")
            split_training(d.train_y, runs[0].validation, subset or None)
        workload_datasets = {r.workload: by_sha[r.data_sha256].describe() for r in runs if r.data_root is not None}
        labels = {sha: (list(d.classes), test_labels[sha]) for sha, d in by_sha.items()}
        del by_sha
        if not opts.replace and (conflicts := find_conflicts(runs, out_dir, index)):
            raise refusal(conflicts, out_dir)      # before any folder or worker: checked again under the lock
        for arm, why in solo.items():
            on_notice(f"--population {k}: {arm} trains solo ({why})")
        _prepare(out_dir)   # only now: a data or size error leaves no empty directory behind
        with DirectoryLock(out_dir):
            index.refresh()     # what another process wrote meanwhile: only new or changed files are read
            conflicts = find_conflicts(runs, out_dir, index)
            if conflicts and not opts.replace:
                raise refusal(conflicts, out_dir)
            if conflicts:
                on_notice(f"--replace: moved {len(conflicts)} stored run(s) made with other settings to "
                          f"{move_aside(conflicts, out_dir)}")
                index.refresh()
            _prepare(out_dir / RUNS_DIR)
            write_test_labels(out_dir, labels)   # once per study: the runs store their predictions per image
            done, todo, corrupted = split_done(runs, out_dir, index)
            jobs = form_cohorts(todo, k, num_classes) if k else todo
            workers = opts.workers or default_workers(device, len(jobs), opts.threads)
            study, other = study_runs(opts, runs, checksums, settle, out_dir, index)
            if other:
                on_notice(f"{other} finished run(s) in {out_dir / RUNS_DIR} were made with other settings than "
                          "these (or of variants, grid values or workloads not planned now): kept, but not in "
                          "this study's tables")
            write_json(out_dir / "study.json", {**manifest(opts, study, dataset.describe(), device, workers,
                                                         workload_datasets),
                                                **({"population": {"size": k, "solo": solo}} if k else {})})
            outcome = StudyOutcome(out_dir, planned=len(runs), reused=len(done), corrupted=corrupted,
                                   in_folder=len(study))
            if ray_executor is None and todo:   # the workers start now, every check passed
                local = LocalExecutor(opts.source, device, workers, checkpoint_dir=checkpoints, threads=opts.threads)
                local.start()
                local.data_ready(dataset, others)
            executor = ray_executor or local
            old_term = signal.signal(signal.SIGTERM, _raise_terminated)
            try:
                if todo:
                    executor.dataset = dataset    # Ray puts it in the object store; an in-process run reuses it
                    executor.others = others
                    del dataset, rest, others
                    if on_wait is not None and isinstance(executor, LocalExecutor) and not executor.in_process:
                        on_wait()
                    _execute(executor, todo, study, opts, outcome, test_labels, jobs, index)
            finally:
                signal.signal(signal.SIGTERM, old_term)
                remove_if_empty(checkpoints)
                _refresh_runs_csv(out_dir, study, index)
                write_json(out_dir / FAILURES, {stem: {"reason": reason, "traceback": outcome.tracebacks.get(stem)}
                                                for stem, reason in outcome.failed.items()})
    finally:
        if local is not None:
            local.close()    # its workers, stopped and joined here, once (an error or an interrupt came first)
        if ray_executor is not None:
            ray_executor.close()   # a local Ray started for the study (already closed after its runs)
    outcome.wall_seconds = time.perf_counter() - t_start
    return outcome


def _load(opts: StudyOptions, source):
    """A dataset of the study; a workload's own that fails to load is named with its workload(s)."""
    from ..training.data import load_dataset

    try:
        return load_dataset(source, progress=opts.progress)
    except DataError as exc:
        if source == opts.source:
            raise
        mine = [w for w in opts.spec.workloads if workload_source(opts, w) == source]
        names = ", ".join(w.name for w in mine)
        where = "its spec's dataset and data_dir" if any(w.data_dir for w in mine) else \
            "its spec's dataset, read from the study's --data-dir: the workload sets no data_dir of its own"
        raise DataError(f"workload {names} (dataset {source.kind} in {source.root}, {where}): {exc}") from None


def _ray_executor(opts: StudyOptions):
    from .ray_executor import RayExecutor

    return RayExecutor(opts.source, opts.device, opts.ray_address, opts.ray_cpus_per_run, opts.ray_gpus_per_run)


def _on_cluster(executor, requested: str):
    """(the device runs train on, whether bf16 is native there), asked of the Ray cluster."""
    import torch

    try:
        kind, native = executor.resolve(requested)
    except BaseException:
        executor.close()
        raise
    return torch.device(kind), native


def on_device(runs: list[RunSettings], device) -> list[RunSettings]:
    """The planned runs with the device kind they train on in their settings (CPU: as planned, so that
    every stored CPU run keeps its settings key)."""
    return runs if device.type == "cpu" else [replace(r, device=device.type) for r in runs]


def _refresh_runs_csv(out_dir: Path, runs: list[RunSettings], index: RecordIndex) -> None:
    write_runs_csv(out_dir, matching(index.records(), planned_keys(runs)),
                   order=list(dict.fromkeys(r.variant for r in runs)))


def _execute(executor, todo: list[RunSettings], runs: list[RunSettings], opts: StudyOptions,
             outcome: StudyOutcome, test_labels: dict[str, list[int]], jobs: list, index: RecordIndex) -> None:
    """Hand ``jobs`` (the runs of ``todo``, alone or in cohorts) to the executor; write what comes back,
    filed in ``index`` (never read back). ``test_labels``: {dataset checksum: its test labels}."""
    from ..training.metrics import score_record

    progress = Progress(len(todo), opts.progress)
    checkpoints = Path(opts.out_dir) / CHECKPOINTS_DIR
    csv_at = [time.perf_counter()]    # when runs.csv was last written (the driver writes it on the way out)

    def record(job: RunSettings, rec: dict) -> None:
        rec = score_record(rec, test_labels[job.data_sha256])   # the driver scores ...
        write_json(run_path(opts.out_dir, job.stem), rec)     # ... and writes; atomically
        index.add(job.stem, rec)
        discard(checkpoints, job.stem)                         # only now: the record is safe
        outcome.finished.append(job.stem)
        if rec["status"] == "diverged":
            outcome.diverged.append(job.stem)
        progress.finished(job.stem, rec["status"])
        if time.perf_counter() - csv_at[0] >= CSV_EVERY:
            _refresh_runs_csv(Path(opts.out_dir), runs, index)
            csv_at[0] = time.perf_counter()

    def failure(job: RunSettings, reason: str, tb: str | None) -> None:
        outcome.failed[job.stem] = reason
        crashed = CRASHED in reason   # the local pool reports CRASHED, Ray CRASHED plus the error
        if not crashed:   # a bug: its next attempt starts afresh; a crashed run resumes
            discard(checkpoints, job.stem)
        if tb:
            outcome.tracebacks[job.stem] = tb
        progress.finished(job.stem, "crashed" if crashed else "failed")

    try:
        executor.run(jobs, JobSink(record, failure, progress.event, progress.started))
    finally:
        progress.close()

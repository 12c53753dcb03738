"""Plan a study (variants x seeds), skip what is already done, run the rest in parallel.

On CPU each worker process trains one run at a time with ``cpu_count // workers`` intra-op
threads (on a 2-core machine two 1-thread workers get more done than one 2-thread process);
on CUDA there is one worker per GPU. Every finished run is written at once,
atomically, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..training.data import DataSource
from ..errors import TricksError
from .lock import DirectoryLock
from .records import load_runs, read_run, run_path, write_json, write_runs_csv
from .settings import PRECISION_CHOICES, PRECISIONS, RunSettings
from ..specs.spec import Spec

FAILURES = "failures.json"   # the runs that failed in the latest invocation, with reasons


@dataclass
class StudyOptions:
    spec: Spec
    source: DataSource
    out_dir: Path
    variants: list[str] | None = None
    seeds: tuple[int, ...] | None = None     # None: the spec's seeds
    epochs: int | None = None                # None: the spec's epochs
    train_subset: int | None = None          # images; None: the whole training split
    precision: str = "auto"                  # auto | fp32 | bf16 (auto: bf16 where the device runs it natively)
    device: str = "auto"                     # auto | cpu | cuda
    workers: int | None = None               # None: one per core on CPU, one per GPU on CUDA
    progress: bool = True


@dataclass
class StudyOutcome:
    out_dir: Path
    planned: int
    reused: int
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)   # stem -> reason
    tracebacks: dict[str, str] = field(default_factory=dict)   # stem -> traceback, for bugs in tricks/engine
    wall_seconds: float = 0.0


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TricksError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise TricksError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


def bf16_is_native(device) -> bool:
    """Whether bf16 autocast runs in hardware on ``device`` (not emulated, which is slower than fp32)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8        # Ampere and newer
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")   # private, so looked up defensively
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def choose_precision(requested: str, native_bf16: bool) -> str:
    """``auto`` means bf16 autocast where the hardware has bf16, else fp32; the others are taken as they are.

    bf16 is the default where native because it trains 1.4-1.6x faster on this project's CPU with
    accuracy within seed noise of fp32 (measured over the whole study; see results/bench/).
    """
    if requested == "auto":
        return "bf16" if native_bf16 else "fp32"
    if requested not in PRECISIONS:
        raise TricksError(f"unknown precision {requested!r}; valid: {', '.join(PRECISION_CHOICES)}")
    return requested


def plan(opts: StudyOptions, data_kind: str, data_sha256: str) -> list[RunSettings]:
    spec = opts.spec
    seeds = opts.seeds or spec.training.seeds
    epochs = opts.epochs or spec.training.epochs
    subset = opts.train_subset or spec.training.train_subset
    return [RunSettings(spec=spec.name, variant=v.name, tricks=v.tricks, imports=spec.imports, seed=s,
                        epochs=epochs, batch_size=spec.training.batch_size, train_subset=subset,
                        precision=opts.precision, data_kind=data_kind, data_sha256=data_sha256)
            for s in seeds for v in spec.select(opts.variants)]   # seed-major: whole seeds finish first


def split_done(runs: list[RunSettings], out_dir: Path) -> tuple[list[RunSettings], list[RunSettings]]:
    """(already finished with the same settings, still to run)."""
    done, todo = [], []
    for r in runs:
        rec = read_run(run_path(out_dir, r.stem))
        (done if rec is not None and rec["settings_key"] == r.key() else todo).append(r)
    return done, todo


def manifest(opts: StudyOptions, runs: list[RunSettings], dataset_info: dict, device, workers: int) -> dict:
    spec = opts.spec
    chosen = {r.variant for r in runs}
    return {
        "spec": {"name": spec.name, "description": spec.description, "path": spec.path,
                 "variants": [{"name": v.name, "base": v.base, "description": v.description,
                               "tricks": [dict(t) for t in v.tricks]} for v in spec.variants if v.name in chosen]},
        "seeds": sorted({r.seed for r in runs}),
        "epochs": runs[0].epochs, "batch_size": runs[0].batch_size, "train_subset": runs[0].train_subset,
        "precision": runs[0].precision, "dataset": dataset_info, "device": str(device), "workers": workers,
        "runs": [{"variant": r.variant, "seed": r.seed, "settings_key": r.key()} for r in runs],
    }


# ---------------------------------------------------------------------------------------------
# worker side

_WORKER: dict = {}


def _init_worker(events, threads: int, device_queue) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides what an interrupt means
    torch.set_num_threads(threads)
    _WORKER.update(events=events, parent=os.getppid(),
                   device=device_queue.get() if device_queue is not None else None)


def _emit_factory(stem: str):
    events = _WORKER.get("events")
    parent = _WORKER.get("parent")

    def emit(kind: str, payload: dict) -> None:
        if parent is not None and os.getppid() != parent:   # the study process died: stop, don't orphan
            os._exit(3)
        if events is not None:
            events.put((os.getpid(), stem, kind, payload))
    return emit


def execute(settings: RunSettings, source: DataSource, out_dir: str, device_name: str, emit=None) -> dict:
    """Train one run and store its record; returns the record. Runs in a worker or in-process."""
    import torch

    from ..training.data import load_dataset
    from ..training.engine import train_run
    from ..training.metrics import score
    from ..plugins import load_plugins
    from .provenance import provenance

    device = torch.device(_WORKER.get("device") or device_name)
    emit = emit or _emit_factory(settings.stem)
    load_plugins(settings.imports)
    key = (source, str(device))
    if _WORKER.get("data_key") != key:
        _WORKER["dataset"] = load_dataset(source, progress=False)
        _WORKER["data_key"] = key
    dataset = _WORKER["dataset"]
    if dataset.checksum != settings.data_sha256:
        raise TricksError(f"the dataset in {source.root} changed while the study was running")
    emit("start", {"epochs": settings.epochs})
    t0 = time.perf_counter()
    out = train_run(settings, dataset, device, emit)
    preds = out.pop("predictions")
    metrics = score(dataset.test_y.tolist(), preds, dataset.classes)
    record = {"schema": 1, "variant": settings.variant, "seed": settings.seed,
              "settings": settings.to_dict(), "settings_key": settings.key(), **out,
              "metrics": metrics, "classes": dataset.classes,
              "wall_seconds": time.perf_counter() - t0,
              "dataset": dataset.describe(), "provenance": provenance(device),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(run_path(Path(out_dir), settings.stem), record)
    return record


# ---------------------------------------------------------------------------------------------
# parent side

class _Progress:
    """A study bar plus one bar per worker (epoch, loss, test accuracy), fed from worker events."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.tqdm, self.enabled = tqdm, enabled
        self.study = tqdm(total=total, desc="study", unit="run", disable=not enabled, position=0)
        self.bars: dict = {}
        self.started: set[str] = set()

    def event(self, pid, stem: str, kind: str, p: dict) -> None:
        if kind == "start":
            self.started.add(stem)
        if not self.enabled:
            return
        if kind == "start":
            bar = self.bars.get(pid)
            if bar is None:
                bar = self.tqdm(desc=stem, total=p["epochs"], unit="epoch", position=len(self.bars) + 1,
                                leave=False)
                self.bars[pid] = bar
            bar.reset(total=p["epochs"])
            bar.set_description(stem)
        bar = self.bars.get(pid)
        if bar is None:
            return
        if kind == "step":
            bar.n = p["epoch"] - 1 + p["step"] / p["steps"]
            bar.refresh()
        elif kind == "epoch":
            bar.n = p["epoch"]
            bar.set_postfix(loss=f"{p['loss']:.3f}", acc=f"{p['acc']:.3f}")

    def finished(self, stem: str, status: str) -> None:
        self.study.update(1)
        self.study.set_postfix_str(f"last: {stem} {status}")

    def close(self) -> None:
        for b in self.bars.values():
            b.close()
        self.study.close()


def _terminate(pool: ProcessPoolExecutor) -> None:
    for p in list(getattr(pool, "_processes", {}).values()):
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_study(opts: StudyOptions) -> StudyOutcome:
    from ..training.data import load_dataset

    t_start = time.perf_counter()
    device = resolve_device(opts.device)
    opts = replace(opts, precision=choose_precision(opts.precision, bf16_is_native(device)))
    out_dir = Path(opts.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise TricksError(f"cannot write to the output directory {out_dir}: {exc.strerror or exc}") from None
    dataset = load_dataset(opts.source, progress=opts.progress)    # decodes and caches once, here
    runs = plan(opts, opts.source.kind, dataset.checksum)
    if runs[0].train_subset is not None:
        from ..training.data import class_balanced_subset

        class_balanced_subset(dataset.train_y, runs[0].train_subset)  # validates the size before any run
    with DirectoryLock(out_dir):
        done, todo = split_done(runs, out_dir)
        if device.type == "cuda":
            import torch

            workers = opts.workers or torch.cuda.device_count()
        else:
            workers = opts.workers or min(os.cpu_count() or 1, max(1, len(todo)))
        if workers < 1:
            raise TricksError(f"--workers must be at least 1, got {workers}")
        write_json(out_dir / "study.json", manifest(opts, runs, dataset.describe(), device, workers))
        outcome = StudyOutcome(out_dir, planned=len(runs), reused=len(done))
        if workers == 1 and device.type == "cpu":   # runs in this process: keep the loaded data
            _WORKER.update(dataset=dataset, data_key=(opts.source, str(device)))
        del dataset
        old_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            if todo:
                _run_all(todo, opts, device, workers, outcome)
        finally:
            signal.signal(signal.SIGTERM, old_term)
            _refresh_runs_csv(out_dir, runs)
            write_json(out_dir / FAILURES, {stem: {"reason": reason, "traceback": outcome.tracebacks.get(stem)}
                                            for stem, reason in outcome.failed.items()})
        outcome.wall_seconds = time.perf_counter() - t_start
    return outcome


def _refresh_runs_csv(out_dir: Path, runs: list[RunSettings]) -> None:
    wanted = {(r.variant, r.seed): r.key() for r in runs}
    records = [r for r in load_runs(out_dir) if wanted.get((r["variant"], r["seed"])) == r["settings_key"]]
    write_runs_csv(out_dir, records, order=list(dict.fromkeys(r.variant for r in runs)))


def _run_all(todo: list[RunSettings], opts: StudyOptions, device, workers: int, outcome: StudyOutcome) -> None:
    import torch

    progress = _Progress(len(todo), opts.progress)
    try:
        if workers == 1 and device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
            for r in todo:
                _finish(r, lambda r=r: execute(r, opts.source, str(opts.out_dir), str(device),
                                               emit=lambda k, p, s=r.stem: progress.event(0, s, k, p)),
                        progress, outcome, opts.out_dir, todo)
        else:
            _run_pool(todo, opts, device, workers, progress, outcome)
    finally:
        progress.close()


def _finish(r: RunSettings, call, progress: _Progress, outcome: StudyOutcome, out_dir, runs) -> None:
    try:
        record = call()
    except TricksError as exc:
        outcome.failed[r.stem] = str(exc)
        progress.finished(r.stem, "failed")
        return
    except (KeyboardInterrupt, BrokenProcessPool):
        raise
    except Exception as exc:  # a bug in a trick or the engine: report it with the run, keep going
        outcome.failed[r.stem] = f"{type(exc).__name__}: {exc}"
        outcome.tracebacks[r.stem] = traceback.format_exc()
        progress.finished(r.stem, "failed")
        return
    outcome.finished.append(r.stem)
    progress.finished(r.stem, record["status"])
    _refresh_runs_csv(Path(out_dir), runs)


def _pool_round(batch, n, ctx, events, threads, opts, device, progress, outcome, todo) -> list[RunSettings]:
    """Run ``batch`` in a fresh pool of ``n`` workers; returns the runs lost to a broken pool."""
    device_queue = None
    if device.type == "cuda":
        import torch

        device_queue = ctx.Queue()
        for i in range(n):
            device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
    pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(events, threads, device_queue))
    broken = []
    try:
        futures = {pool.submit(execute, r, opts.source, str(opts.out_dir), str(device)): r for r in batch}
        not_done = set(futures)
        while not_done:
            finished, not_done = wait(not_done, timeout=1.0, return_when=FIRST_COMPLETED)
            for f in finished:
                if isinstance(f.exception(), BrokenProcessPool):
                    broken.append(futures[f])
                else:
                    _finish(futures[f], f.result, progress, outcome, opts.out_dir, todo)
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)
    return broken


def _run_pool(todo, opts, device, workers, progress: _Progress, outcome: StudyOutcome) -> None:
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    threads = 1 if device.type == "cuda" else max(1, (os.cpu_count() or 1) // workers)
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            try:
                progress.event(*events.get(timeout=0.2))
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return

    listener = threading.Thread(target=pump, daemon=True)
    listener.start()
    queue, isolate = list(todo), []   # isolate: runs in flight when a worker died, retried one at a time
    try:
        while queue or isolate:
            solo = not queue
            batch, n = ([isolate.pop(0)], 1) if solo else (queue, workers)
            queue = []
            broken = _pool_round(batch, n, ctx, events, threads, opts, device, progress, outcome, todo)
            if not broken:
                continue
            # A worker died (killed, out of memory, segfault) and took the pool down. A run that had
            # started may be the culprit or a bystander: run each such run alone to tell which.
            time.sleep(0.3)   # let the last progress events arrive
            for r in broken:
                if read_run(run_path(opts.out_dir, r.stem)) is not None:
                    outcome.finished.append(r.stem)
                    progress.finished(r.stem, "ok")
                elif solo:
                    outcome.failed[r.stem] = "its worker process died (killed, out of memory, or crashed)"
                    progress.finished(r.stem, "crashed")
                elif r.stem in progress.started:
                    isolate.append(r)
                else:
                    queue.append(r)
    finally:
        stop.set()
        listener.join(timeout=2)

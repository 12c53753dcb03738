"""Executors: they schedule (variant, seed) jobs and hand back records; they never write results.

``LocalExecutor`` runs jobs in this process (one worker on CPU) or in a pool of spawned worker
processes, one run at a time per worker. On CPU each run trains on its own setting's count of
intra-op threads (``RunSettings.threads``, 1 by default), however many runs are pending; on CUDA
there is one worker per GPU. A worker that dies (killed, out of
memory, segfault) takes the pool down: the runs that had started are then run again one at a
time, to tell the culprit (reported as crashed) from bystanders (finished normally).

The driver (``study.run_study``) gives an executor a ``JobSink``: ``record(job, record)`` for a
finished run, ``failure(job, reason, traceback)`` for a failed one, ``event(worker, stem, kind,
payload)`` for progress. Another executor (a cluster, say) plugs in by implementing ``run``.

Workers are forked from a preloaded fork server (``forkserver``), and the driver calls
``LocalExecutor.start()`` before it loads the dataset, so that the workers' start overlaps that
load instead of following it; ``data_ready`` then tells them which cache file to map.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable

from ..errors import TricksError
from ..training.data import DataSource
from .forkserver import context as mp_context
from .runner import RunContext, run_one
from .settings import RunSettings

CRASHED = "its worker process died (killed, out of memory, or crashed)"


@dataclass
class JobSink:
    record: Callable[[RunSettings, dict], None]
    failure: Callable[[RunSettings, str, str | None], None]
    event: Callable[[object, str, str, dict], None]
    started: set          # stems of runs that have started (filled by ``event`` on "start")


def _call(job: RunSettings, fn, sink: JobSink) -> None:
    """Run ``fn()`` (returns a record) and hand the outcome to ``sink``; bugs keep their traceback."""
    try:
        record = fn()
    except TricksError as exc:
        sink.failure(job, str(exc), None)
        return
    except (KeyboardInterrupt, BrokenProcessPool):
        raise
    except Exception as exc:  # a bug in a trick or the engine: report it with the run, keep going
        sink.failure(job, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return
    sink.record(job, record)


# ---------------------------------------------------------------------------------------------
# worker side: each spawned worker process has its own context, set by the pool initializer

_worker_context: RunContext | None = None
_worker_events = None
_worker_study = None      # the read end of a pipe whose only write end the study process holds


def _study_gone() -> bool:
    """Whether the study process has died (killed with -9, say): then a worker stops, not orphaned.

    The pipe reads end-of-file once the study's end is closed, which the kernel does when the study
    dies (a zombie included). Not the parent's pid: a forked worker's parent is the fork server,
    which outlives the study while any worker it forked is alive."""
    return _worker_study is not None and _worker_study.poll()


def _init_worker(events, threads: int, device_queue, source: DataSource, device: str, study_alive,
                 data_queue=None, sys_path: list[str] | None = None, environ: dict | None = None,
                 checkpoint_dir: str | None = None) -> None:
    """Set up one worker: threads, device, and everything a run needs imported and loaded.

    A worker forked from the fork server (``forkserver``) starts with the imports done, and with the
    fork server's ``sys.path`` and environment, which date from its start: the study's current ones
    (a plugin folder added since, a cache directory) are passed along and set here. Started early
    (``LocalExecutor.start``), a worker then waits on ``data_queue`` for the cache file of the
    dataset the study process loaded (and its checksum) and maps it. Without a cache file, or when
    mapping it fails, the first run loads the dataset itself (and reports any error)."""
    if sys_path is not None:
        sys.path[:] = sys_path
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    import torch

    global _worker_context, _worker_events, _worker_study
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides what an interrupt means
    torch.set_num_threads(threads)
    _worker_events, _worker_study = events, study_alive
    _worker_context = RunContext(source, device_queue.get() if device_queue is not None else device,
                                 checkpoint_dir=checkpoint_dir)
    from . import preload  # noqa: F401 - already imported when forked from the fork server
    from ..training.data import load_cached

    if data_queue is None:
        return
    while True:
        try:
            cached = data_queue.get(timeout=0.5)
            break
        except queue_mod.Empty:
            if _study_gone():     # the study process died before its data was ready
                os._exit(3)
    if cached is not None:
        _worker_context.dataset = load_cached(source, *cached)


def _warm_up() -> None:
    """A no-op job: submitting one per worker makes the pool start its processes now."""


def _worker_run(job: RunSettings) -> dict:
    def emit(kind: str, payload: dict) -> None:
        if _study_gone():   # the study process died: stop, don't orphan
            os._exit(3)
        _worker_events.put((os.getpid(), job.stem, kind, payload))
    return run_one(job, _worker_context, emit)


# ---------------------------------------------------------------------------------------------
# parent side

class LocalExecutor:
    def __init__(self, source: DataSource, device, workers: int, dataset=None, checkpoint_dir=None,
                 threads: int = 1):
        self.source, self.device, self.workers = source, device, workers
        self._threads = threads     # intra-op threads per CPU run (RunSettings.threads)
        self.dataset = dataset      # reused by an in-process run, so the data is not loaded twice
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir is not None else None   # per-epoch checkpoints
        self._warm = None           # (mp context, events queue, data queue, pool) once started
        self._starting = None       # the thread that starts the workers (it waits on the fork server)
        self._alive = None          # (read end, write end) of the pipe workers poll to see this process die

    @property
    def in_process(self) -> bool:
        return self.workers == 1 and self.device.type == "cpu"

    @property
    def threads(self) -> int:
        """Intra-op threads per worker: the runs' own count on CPU (never what happens to be left over
        by the number of runs pending), 1 per GPU worker on CUDA. The engine sets each run's count
        again from its settings."""
        return 1 if self.device.type == "cuda" else self._threads

    def start(self) -> None:
        """Start the worker processes now, before the dataset is loaded, so that their start (waiting
        on the fork server's imports: seconds) overlaps the study process's own loading; call
        ``data_ready(dataset)`` once the dataset is loaded. No-op for an in-process study."""
        if self.in_process or self._warm is not None:
            return
        ctx = mp_context()
        events, data_queue = ctx.Queue(), ctx.Queue()
        pool = self._new_pool(ctx, self.workers, events, data_queue)
        self._warm = (ctx, events, data_queue, pool)

        def spawn():   # the pool starts one process per job submitted while no worker is idle; each
            for _ in range(self.workers):   # start waits until the fork server has done its imports
                pool.submit(_warm_up)
        self._starting = threading.Thread(target=spawn, name="start-workers", daemon=True)
        self._starting.start()

    def _wait_started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def data_ready(self, dataset) -> None:
        """Tell the started workers where the loaded dataset is cached (they map that file); without
        a dataset or a cache file, each worker loads the dataset at its first run."""
        if self._warm is not None:
            cached = (dataset.cache_file, dataset.checksum) if dataset is not None and dataset.cache_file else None
            for _ in range(self.workers):
                self._warm[2].put(cached)

    def close(self) -> None:
        """Stop workers started by ``start`` that ``run`` never used (nothing to run, or an error first)."""
        if self._warm is not None:
            self._wait_started()
            _terminate(self._warm[3])
            self._warm = None

    def run(self, jobs: list[RunSettings], sink: JobSink) -> None:
        if self.in_process:
            import torch

            torch.set_num_threads(self.threads)
            ctx = RunContext(self.source, str(self.device), self.dataset, self.checkpoint_dir)
            for job in jobs:
                _call(job, lambda job=job: run_one(job, ctx, lambda k, p, s=job.stem: sink.event(0, s, k, p)), sink)
        else:
            self._run_pool(jobs, sink)

    def _new_pool(self, ctx, n: int, events, data_queue=None) -> ProcessPoolExecutor:
        device_queue = None
        if self.device.type == "cuda":
            import torch

            device_queue = ctx.Queue()
            for i in range(n):
                device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker,
                                   initargs=(events, self.threads, device_queue, self.source, str(self.device),
                                             self._study_alive(ctx), data_queue, list(sys.path), dict(os.environ),
                                             self.checkpoint_dir))

    def _study_alive(self, ctx):
        """The read end of a pipe that only this process writes to (never), for the workers to poll."""
        if self._alive is None:
            self._alive = ctx.Pipe(duplex=False)
        return self._alive[0]

    def _pool_round(self, batch, n, ctx, events, sink, pool=None) -> list[RunSettings]:
        """Run ``batch`` in ``pool`` (the started one) or a fresh pool of ``n`` workers; returns the
        runs lost to a broken pool."""
        pool = pool or self._new_pool(ctx, n, events)
        broken = []
        try:
            futures = {pool.submit(_worker_run, job): job for job in batch}
            not_done = set(futures)
            while not_done:
                finished, not_done = wait(not_done, timeout=1.0, return_when=FIRST_COMPLETED)
                for f in finished:
                    if isinstance(f.exception(), BrokenProcessPool):
                        broken.append(futures[f])
                    else:
                        _call(futures[f], f.result, sink)
        except BaseException:
            _terminate(pool)
            raise
        # Every job is done: the workers exit on their own (a torch process takes about a second to
        # tear down) while the study writes its tables and report; the interpreter joins them at exit.
        pool.shutdown(wait=bool(broken))
        return broken

    def _run_pool(self, jobs: list[RunSettings], sink: JobSink) -> None:
        if self._warm is None:
            self.start()
            self.data_ready(self.dataset)
        self._wait_started()
        ctx, events, _, warm_pool = self._warm
        self._warm = None        # from here on the pool belongs to the first round below
        stop = threading.Event()

        def pump():
            while not stop.is_set():
                try:
                    sink.event(*events.get(timeout=0.2))
                except queue_mod.Empty:
                    continue
                except (EOFError, OSError):
                    return

        listener = threading.Thread(target=pump, daemon=True)
        listener.start()
        queue, isolate = list(jobs), []   # isolate: runs in flight when a worker died, retried one at a time
        try:
            while queue or isolate:
                solo = not queue
                batch, n = ([isolate.pop(0)], 1) if solo else (queue, self.workers)
                queue = []
                broken = self._pool_round(batch, n, ctx, events, sink, warm_pool)
                warm_pool = None   # a round after a crash gets a fresh pool
                if not broken:
                    continue
                # A worker died and took the pool down. A run that had started may be the culprit
                # or a bystander: run each such run alone to tell which.
                time.sleep(0.3)   # let the last progress events arrive
                for job in broken:
                    if solo:
                        sink.failure(job, CRASHED, None)
                    elif job.stem in sink.started:
                        isolate.append(job)
                    else:
                        queue.append(job)
        finally:
            stop.set()
            listener.join(timeout=2)


def _terminate(pool: ProcessPoolExecutor) -> None:
    for p in list(getattr(pool, "_processes", {}).values()):
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)

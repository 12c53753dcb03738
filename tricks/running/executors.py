"""Executors: they schedule (variant, seed) jobs and hand back records; they never write results.

``LocalExecutor`` runs jobs in this process (one worker on CPU) or in a pool of spawned worker
processes, one run at a time per worker. On CPU each worker gets ``cpu_count // workers``
intra-op threads; on CUDA there is one worker per GPU. A worker that dies (killed, out of
memory, segfault) takes the pool down: the runs that had started are then run again one at a
time, to tell the culprit (reported as crashed) from bystanders (finished normally).

The driver (``study.run_study``) gives an executor a ``JobSink``: ``record(job, record)`` for a
finished run, ``failure(job, reason, traceback)`` for a failed one, ``event(worker, stem, kind,
payload)`` for progress. Another executor (a cluster, say) plugs in by implementing ``run``.
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
from dataclasses import dataclass
from typing import Callable

from ..errors import TricksError
from ..training.data import DataSource
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
_worker_parent: int | None = None


def _init_worker(events, threads: int, device_queue, source: DataSource, device: str) -> None:
    import torch

    global _worker_context, _worker_events, _worker_parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides what an interrupt means
    torch.set_num_threads(threads)
    _worker_events, _worker_parent = events, os.getppid()
    _worker_context = RunContext(source, device_queue.get() if device_queue is not None else device)


def _worker_run(job: RunSettings) -> dict:
    def emit(kind: str, payload: dict) -> None:
        if os.getppid() != _worker_parent:   # the study process died: stop, don't orphan
            os._exit(3)
        _worker_events.put((os.getpid(), job.stem, kind, payload))
    return run_one(job, _worker_context, emit)


# ---------------------------------------------------------------------------------------------
# parent side

class LocalExecutor:
    def __init__(self, source: DataSource, device, workers: int, dataset=None):
        self.source, self.device, self.workers = source, device, workers
        self.dataset = dataset      # reused by an in-process run, so the data is not loaded twice

    @property
    def in_process(self) -> bool:
        return self.workers == 1 and self.device.type == "cpu"

    def run(self, jobs: list[RunSettings], sink: JobSink) -> None:
        if self.in_process:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
            ctx = RunContext(self.source, str(self.device), self.dataset)
            for job in jobs:
                _call(job, lambda job=job: run_one(job, ctx, lambda k, p, s=job.stem: sink.event(0, s, k, p)), sink)
        else:
            self._run_pool(jobs, sink)

    def _pool_round(self, batch, n, ctx, events, threads, sink) -> list[RunSettings]:
        """Run ``batch`` in a fresh pool of ``n`` workers; returns the runs lost to a broken pool."""
        device_queue = None
        if self.device.type == "cuda":
            import torch

            device_queue = ctx.Queue()
            for i in range(n):
                device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
        pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker,
                                   initargs=(events, threads, device_queue, self.source, str(self.device)))
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
        pool.shutdown(wait=True)
        return broken

    def _run_pool(self, jobs: list[RunSettings], sink: JobSink) -> None:
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        threads = 1 if self.device.type == "cuda" else max(1, (os.cpu_count() or 1) // self.workers)
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
                broken = self._pool_round(batch, n, ctx, events, threads, sink)
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

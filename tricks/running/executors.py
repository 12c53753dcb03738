"""Executors: they schedule (variant, seed) jobs and hand back records; they never write results.

``LocalExecutor`` runs jobs in this process (one worker on CPU) or in a pool of spawned worker
processes, one run at a time per worker. On CPU each run trains on its own setting's count of
intra-op threads (``RunSettings.threads``, 1 by default), however many runs are pending; on CUDA
several workers share each GPU (``device.RUNS_PER_GPU``, round-robin over the GPUs; the worker side is
``worker``). A worker that dies (killed, out of
memory, segfault) takes the pool down: the runs that had started are then run again one at a
time, to tell the culprit (reported as crashed) from bystanders (finished normally). A worker whose
run hits a CUDA error (a device-side assert, an illegal memory access: its CUDA context is then
unusable) says so and exits on purpose, so that a fresh worker, never the broken one, takes the
next run; the run is retried alone like any crash, and reported with the CUDA error if it recurs.

The driver (``study.run_study``) gives an executor a ``JobSink``: ``record(job, record)`` for a
finished run, ``failure(job, reason, traceback)`` for a failed one, ``event(worker, stem, kind,
payload)`` for progress. Another executor (a cluster, say) plugs in by implementing ``run``.

Workers are forked from a preloaded fork server (``forkserver``), started as the command begins so
that its imports overlap the study process's loading of the spec and the dataset. The driver calls
``LocalExecutor.start()`` only once every check of the study has passed (no pool, queue or semaphore
exists before), then ``data_ready`` tells the workers which cache file to map. A pool is torn down
once and to the end (``_terminate``, ``_drain``).
"""

from __future__ import annotations

import os
import queue as queue_mod
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
from .cohorts import Cohort, members, run_job
from .runner import RunContext
from .settings import RunSettings
from .worker import init_worker, warm_up, worker_run

CRASHED = "its worker process died (killed, out of memory, or crashed)"


@dataclass
class JobSink:
    record: Callable[[RunSettings, dict], None]
    failure: Callable[[RunSettings, str, str | None], None]
    event: Callable[[object, str, str, dict], None]
    started: set          # stems of runs that have started (filled by ``event`` on "start")


def _call(job: RunSettings | Cohort, fn, sink: JobSink) -> None:
    """Run ``fn()`` (returns a record, or a cohort's records) and hand the outcome to ``sink``, one
    record or failure per run; bugs keep their traceback."""
    try:
        record = fn()
    except TricksError as exc:
        fail(job, str(exc), None, sink)
        return
    except (KeyboardInterrupt, BrokenProcessPool):
        raise
    except Exception as exc:  # a bug in a trick or the engine: report it with the run, keep going
        fail(job, f"{type(exc).__name__}: {exc}", traceback.format_exc(), sink)
        return
    for run, rec in zip(members(job), record if isinstance(job, Cohort) else [record], strict=True):
        sink.record(run, rec)


def fail(job: RunSettings | Cohort, reason: str, tb: str | None, sink: JobSink) -> None:
    """The job failed: each of its runs (a cohort's members all) with the same reason."""
    for run in members(job):
        sink.failure(run, reason, tb)


# ---------------------------------------------------------------------------------------------
# parent side

class LocalExecutor:
    def __init__(self, source: DataSource, device, workers: int, dataset=None, checkpoint_dir=None,
                 threads: int = 1):
        self.source, self.device, self.workers = source, device, workers
        self._threads = threads     # intra-op threads per CPU run (RunSettings.threads)
        self.dataset = dataset      # reused by an in-process run, so the data is not loaded twice
        self.others: dict = {}      # DataSource -> Dataset: workloads' own datasets, reused likewise
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
        by the number of runs pending), 1 per worker on CUDA. The engine sets each run's count
        again from its settings."""
        return 1 if self.device.type == "cuda" else self._threads

    def start(self) -> None:
        """Start the worker processes now (in a thread: each start waits until the fork server has
        done its imports); call ``data_ready(dataset)`` to tell them where the loaded dataset is
        cached. No-op for an in-process study."""
        if self.in_process or self._warm is not None:
            return
        ctx = mp_context()
        events, data_queue = ctx.Queue(), ctx.Queue()
        pool = self._new_pool(ctx, self.workers, events, data_queue)
        self._warm = (ctx, events, data_queue, pool)

        def spawn():   # the pool starts one process per job submitted while no worker is idle; each
            for _ in range(self.workers):   # start waits until the fork server has done its imports
                pool.submit(warm_up)
        self._starting = threading.Thread(target=spawn, name="start-workers", daemon=True)
        self._starting.start()

    def _wait_started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def data_ready(self, dataset, others: dict | None = None) -> None:
        """Tell the started workers where the loaded datasets are cached (they map those files): the
        study's, and ``others`` ({DataSource: Dataset}, the workloads' own); without a dataset or a
        cache file, each worker loads the dataset at its first run that needs it."""
        if self._warm is not None:
            cached = (dataset.cache_file, dataset.checksum) if dataset is not None and dataset.cache_file else None
            extra = [(src, d.cache_file, d.checksum) for src, d in (others or {}).items() if d.cache_file]
            for _ in range(self.workers):
                self._warm[2].put((cached, extra))

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
            ctx = RunContext(self.source, str(self.device), self.dataset, self.checkpoint_dir, dict(self.others))
            for job in jobs:
                emit_for = lambda stem: (lambda k, p: sink.event(0, stem, k, p))   # noqa: E731
                _call(job, lambda job=job: run_job(job, ctx, emit_for), sink)
        else:
            self._run_pool(jobs, sink)

    def _new_pool(self, ctx, n: int, events, data_queue=None) -> ProcessPoolExecutor:
        device_queue = None
        if self.device.type == "cuda":
            import torch

            device_queue = ctx.Queue()
            for i in range(n):
                device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=init_worker,
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
            futures = {pool.submit(worker_run, job): job for job in batch}
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
        if broken:
            pool.shutdown(wait=True)
        else:   # every job is done: the workers exit on their own (a torch process takes about a second
            _drain(pool)   # to tear down) while the study writes its tables and report
        return broken

    def _run_pool(self, jobs: list[RunSettings], sink: JobSink) -> None:
        if self._warm is None:
            self.start()
            self.data_ready(self.dataset, self.others)
        self._wait_started()
        ctx, events, _, warm_pool = self._warm
        self._warm = None        # from here on the pool belongs to the first round below
        stop = threading.Event()
        cuda_errors: dict[str, str] = {}   # stem -> the CUDA error its worker reported before exiting

        def pump():
            while not stop.is_set():
                try:
                    item = events.get(timeout=0.2)
                except queue_mod.Empty:
                    continue
                except (EOFError, OSError):
                    return
                if item[2] == "notice" and "cuda_error" in item[3]:
                    cuda_errors[item[1]] = item[3]["cuda_error"]
                sink.event(*item)

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
                        why = cuda_errors.get(job.stem)
                        said = f" after a CUDA error: {why.removeprefix('CUDA error: ')}" if why else ""
                        fail(job, CRASHED + said, None, sink)
                    elif job.stem in sink.started:
                        isolate.append(job)
                    else:
                        queue.append(job)
        finally:
            stop.set()
            listener.join(timeout=2)


# Tearing a pool down, once and to the end. A pool's queues hold named semaphores, registered with
# multiprocessing's resource tracker, and its manager thread holds the pool's call queue. Shut down
# without waiting, the pool was released by that thread as it ended, a daemon thread when the pool was
# started by ``start``'s: at an early exit (a bad --train-subset, say) that raced the interpreter's
# exit, which could cut the thread off between unlinking a semaphore and unregistering it. The tracker
# then unlinked it again at its own exit and printed "resource_tracker: ... leaked semaphore" and
# "'/mp-...': [Errno 2] No such file or directory" warnings (or the thread's traceback) after the
# one-line error. So: the study starts no pool before its checks pass, and every pool is shut down
# with ``wait=True``, here or in a non-daemon thread the interpreter waits for.

def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's workers and wait until the pool, its manager thread and its queues are gone."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _drain(pool: ProcessPoolExecutor) -> None:
    """Shut a pool whose jobs are all done down in a non-daemon thread: the study goes on meanwhile, and
    the interpreter waits for the thread before it exits (the pool is released in it, not in a daemon)."""
    threading.Thread(target=pool.shutdown, kwargs={"wait": True}, name="drain-workers", daemon=False).start()

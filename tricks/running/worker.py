"""The worker side of the local pool: each worker process has its own ``RunContext``, set up by the
pool's initializer (``init_worker``), and runs one job at a time (``worker_run``).

A worker stops on its own when the study process dies (``study_gone``), and exits on purpose after a
CUDA error (``EXIT_CUDA_ERROR``): the error breaks the process's CUDA context, so every later run in
it would fail too; the study replaces the pool (``executors.LocalExecutor``).
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import sys

from ..training.cuda import is_cuda_error
from ..training.data import DataSource
from .cohorts import Cohort, run_job
from .runner import RunContext
from .settings import RunSettings

EXIT_CUDA_ERROR = 70      # a worker's exit status after a CUDA error (its CUDA context is broken)


_worker_context: RunContext | None = None
_worker_events = None
_worker_study = None      # the read end of a pipe whose only write end the study process holds


def study_gone() -> bool:
    """Whether the study process has died (killed with -9, say): then a worker stops, not orphaned.

    The pipe reads end-of-file once the study's end is closed, which the kernel does when the study
    dies (a zombie included). Not the parent's pid: a forked worker's parent is the fork server,
    which outlives the study while any worker it forked is alive."""
    return _worker_study is not None and _worker_study.poll()


def init_worker(events, threads: int, device_queue, source: DataSource, device: str, study_alive,
                data_queue=None, sys_path: list[str] | None = None, environ: dict | None = None,
                checkpoint_dir: str | None = None) -> None:
    """Set up one worker: threads, device, and everything a run needs imported and loaded.

    A worker forked from the fork server (``forkserver``) starts with the imports done, and with the
    fork server's ``sys.path`` and environment, which date from its start: the study's current ones
    (a plugin folder added since, a cache directory) are passed along and set here. Started early
    (``LocalExecutor.start``), a worker then waits on ``data_queue`` for the cache file of the
    dataset(s) the study process loaded (and their checksums) and maps them. Without a cache file, or when
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
            if study_gone():     # the study process died before its data was ready
                os._exit(3)
    cached, extra = cached
    if cached is not None:
        _worker_context.dataset = load_cached(source, *cached)
    for src, cache_file, checksum in extra:      # workloads' own datasets
        ds = load_cached(src, cache_file, checksum)
        if ds is not None:
            _worker_context.others[src] = ds


def warm_up() -> None:
    """A no-op job: submitting one per worker makes the pool start its processes now."""


def worker_run(job: RunSettings | Cohort):
    """A solo run's record, or a cohort's records (``cohorts.run_job``); progress goes to the study."""
    def emit_for(stem: str):
        def emit(kind: str, payload: dict) -> None:
            if study_gone():   # the study process died: stop, don't orphan
                os._exit(3)
            _worker_events.put((os.getpid(), stem, kind, payload))
        return emit
    try:
        return run_job(job, _worker_context, emit_for)
    except Exception as exc:
        if is_cuda_error(exc):
            exit_after_cuda_error(job.stem, exc)
        raise


def exit_after_cuda_error(stem: str, exc: BaseException) -> None:
    """Tell the study which run hit a CUDA error, then end this worker: its CUDA context is broken and
    every later run in it would fail too. The pool breaks and the study replaces the workers."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    message = f"CUDA error ({type(exc).__name__}: {first}); its worker exits and is replaced"
    try:
        _worker_events.put((os.getpid(), stem, "notice", {"message": message, "cuda_error": first}))
        _worker_events.close()
        _worker_events.join_thread()   # the message is out before the process ends
    finally:
        os._exit(EXIT_CUDA_ERROR)

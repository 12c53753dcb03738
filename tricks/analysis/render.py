"""Drawing a report's figures: each one an independent call of a ``figures`` function on tables,
spread over forked processes where that is safe, one by one otherwise.

With two cores the figures of a report take about half the time (``benchmarks/short_studies.py``
measures the whole command). Forking is used on Linux only (macOS system frameworks are not
fork-safe); the children only draw with matplotlib's Agg backend. If the pool cannot start or a
child dies, the figures are drawn in this process instead; an exception raised by a figure
function is raised here, as it would be when drawn in this process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Sequence

Job = tuple[Callable[..., Path], tuple[Any, ...]]   # (a figures function, its arguments)


def can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


def draw_all(jobs: Sequence[Job], workers: int | None = None) -> list[Path]:
    """The path each job returns, in job order. Jobs are handed out in order: put the slowest first.

    ``workers``: processes drawing at once (default: one per core; 1 draws here, one by one)."""
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers < 2 or not can_fork():
        return [fn(*args) for fn, args in jobs]
    try:
        with warnings.catch_warnings():   # Python 3.12+ warns about fork in a process with threads;
            warnings.simplefilter("ignore", DeprecationWarning)   # the children only draw
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                futures = [pool.submit(fn, *args) for fn, args in jobs]
                return [f.result() for f in futures]
    except (BrokenProcessPool, OSError):   # no child could start, or one died: draw them here
        return [fn(*args) for fn, args in jobs]

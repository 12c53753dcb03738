"""Figures drawn in forked processes are the same files as figures drawn one by one."""

import numpy as np
import pytest

from tricks.analysis import figures as F
from tricks.analysis.render import can_fork, draw_all

CLASSES = ["cat", "dog", "frog"]


def jobs(d):
    rng = np.random.default_rng(0)
    mats = {f"v{i}": rng.integers(0, 50, size=(3, 3)) for i in range(5)}
    mats["v5"] = None     # a variant without finished runs
    return [(F.confusion_grid, (mats, CLASSES, d / "confusion.png")),
            (F.confusion_grid, ({"a": mats["v0"]}, CLASSES, d / "one.png"))]


def test_parallel_drawing_gives_the_same_files_in_job_order(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    a = draw_all(jobs(serial), workers=1)
    b = draw_all(jobs(parallel), workers=2)
    assert [p.name for p in a] == [p.name for p in b] == ["confusion.png", "one.png"]
    for p, q in zip(a, b):
        assert p.read_bytes() == q.read_bytes() and p.stat().st_size > 5_000


def boom(path):
    raise ValueError(f"cannot draw {path.name}")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_figure_function_is_raised_either_way(tmp_path, workers):
    with pytest.raises(ValueError, match="cannot draw x.png"):
        draw_all(jobs(tmp_path) + [(boom, (tmp_path / "x.png",))], workers=workers)


def test_forking_is_linux_only():
    import sys

    assert can_fork() == sys.platform.startswith("linux")

"""A study for notebooks: ``tricks.load_study(path)`` -> tables as pandas DataFrames (no torch).

    import tricks
    study = tricks.load_study("results/backprop_tricks")
    study.summary          # one row per variant: seeds, mean micro-F1, interval, ...
    study.deltas           # one row per comparison: paired delta, interval, Holm p, MDE, verdict
    study.effects          # factorial/fractional designs: main effects and interactions (else None)
    study.runs, study.history, study.corrupted, study.missing

Everything is computed from the stored runs exactly as ``tricks figures`` computes it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from .stats import comparisons, delta_table, summarize
from .studydata import StudyData
from .studydata import load_study as _load


class Study:
    def __init__(self, data: StudyData):
        self.data = data

    @property
    def name(self) -> str:
        return self.data.manifest["spec"]["name"]

    @property
    def missing(self) -> list[tuple[str, int]]:
        return list(self.data.missing)

    @property
    def corrupted(self) -> dict[str, str]:
        return dict(self.data.corrupted)

    @cached_property
    def runs(self) -> pd.DataFrame:
        return self.data.runs()

    @cached_property
    def history(self) -> pd.DataFrame:
        return self.data.history()

    @cached_property
    def summary(self) -> pd.DataFrame:
        return summarize(self.runs, self.data.order)

    @cached_property
    def deltas(self) -> pd.DataFrame:
        return delta_table(self.runs, comparisons(self.data.manifest["spec"]["variants"], self.data.reference))

    @cached_property
    def effects(self) -> pd.DataFrame | None:
        design = self.data.manifest["spec"].get("design")
        if not design or design["kind"] not in ("factorial", "fractional"):
            return None
        from .effects import effects

        return effects(self.runs, design)

    def __repr__(self) -> str:
        return (f"Study({self.name!r}: {len(self.data.order)} variants, {len(self.data.records)} finished runs, "
                f"{len(self.data.missing)} missing, {len(self.data.corrupted)} corrupted)")


def load_study(path: str | Path) -> Study:
    """The study stored in ``path`` (a directory written by ``tricks ablation``)."""
    return Study(_load(Path(path)))

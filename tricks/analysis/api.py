"""A study for notebooks: ``tricks.load_study(path)`` -> tables as pandas DataFrames (no torch).

    import tricks
    study = tricks.load_study("results/backprop_tricks")
    study.summary          # one row per variant: seeds, mean micro-F1, interval, ...
    study.deltas           # one row per comparison: paired delta, interval, Holm p, MDE, verdict
    study.effects          # factorial/fractional designs: main effects and interactions (else None)
    study.runs, study.history, study.corrupted, study.missing
    study.selection        # a tuned study ([tuning] grid): each variant's LR chosen on validation (else None)
    study.tuned            # a tuned study: default-LR vs tuned-LR paired deltas, tuned.csv (else None)
    study.transfer         # a multi-workload study: per trick and workload its delta, and pooled (else None)
    study.workload("res")  # a multi-workload study: one workload's runs as a Study of their own
    help(tricks.analysis.api.Study)   # what each table holds

Everything is computed from the stored runs exactly as ``tricks figures`` computes it: in a tuned
study, ``runs`` and ``history`` hold every run of the grid, and ``summary``, ``deltas`` and
``effects`` each variant at its default LR, as REPORT.md's main body does. In a multi-workload study
(``[[workloads]]``), ``summary``, ``deltas`` and ``effects`` are each workload's own table (as in
``workloads/<name>/``), stacked with a leading ``workload`` column; Holm adjusts within each workload;
``runs`` and ``history`` carry the ``workload`` of each row too.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from .stats import comparisons, delta_table, summarize
from .studydata import StudyData
from .studydata import load_study as _load
from .tuning import Tuned, is_tuned, tuned
from . import transfer as X


class Study:
    """A stored study's tables (pandas DataFrames, computed on first use, as ``tricks figures`` computes them).

    - ``runs``: one row per counted run (runs.csv): variant, seed, status, accuracy, micro/macro F1, epochs,
      train/eval/wall seconds, device, settings_key, tuned_lr, val_accuracy, workload, model, dataset.
    - ``history``: one row per (variant, seed, epoch) of those runs: train_loss, test_loss, test_accuracy, lr,
      seconds, and val_loss, val_accuracy, train_nll, tuned_lr where recorded.
    - ``summary``: one row per variant (summary.csv): seeds, mean micro-F1 with its 95% interval, spread.
    - ``deltas``: one row per comparison (deltas.csv): paired delta, interval, t / Holm / sign-flip p, MDE,
      P(better), verdict.
    - ``effects``: factorial and fractional designs' main effects and interactions (effects.csv), else None.
    - ``selection`` and ``tuned``: a tuned study's chosen LRs (selection.csv) and its default-LR and tuned-LR
      comparisons (tuned.csv), else None.
    - ``transfer``: a multi-workload study's per-workload and pooled deltas (transfer.csv), else None.
    - ``missing`` ((arm, seed) planned without a finished record), ``corrupted`` ({run file: why}), ``name``.

    In a multi-workload study every table has a leading ``workload`` column (``summary``, ``deltas`` and
    ``effects`` are each workload's own, Holm within each), and ``workload(name)`` is one workload's runs
    as a ``Study`` of their own. A tuned study's ``summary``, ``deltas`` and ``effects`` are each variant at
    its default LR; ``runs`` and ``history`` hold every grid value (``tuned_lr``).
    """

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
    def _tuning(self) -> Tuned | None:
        """A tuned study's selection, tuned table and default-LR view (``tuning.tuned``), else None."""
        return tuned(self.data) if is_tuned(self.data.manifest) else None

    @property
    def _main(self) -> StudyData:
        """What summary, deltas and effects read: the study, or a tuned study's default-LR view."""
        return self._tuning.main if self._tuning else self.data

    @cached_property
    def _main_runs(self) -> pd.DataFrame:
        return self._main.runs() if self._tuning else self.runs

    @cached_property
    def _workloads(self) -> dict[str, "Study"]:
        """{name: the Study of that workload's runs} in manifest order; {} for a single-workload study."""
        return {w["name"]: Study(X.workload_view(self.data, w["name"])) for w in X.workloads_of(self.data.manifest)}

    def workload(self, name: str) -> "Study":
        """The study restricted to workload ``name`` (``transfer.workload_view``): TricksError if it has none."""
        if name not in self._workloads:
            X.workload_view(self.data, name)   # raises, naming the study's workloads
        return self._workloads[name]

    def _stacked(self, table: str) -> pd.DataFrame | None:
        """Each workload's ``table``, a leading ``workload`` column; None where no workload has one."""
        parts = [getattr(s, table).assign(workload=name) for name, s in self._workloads.items()
                 if getattr(s, table) is not None]
        if not parts:
            return None
        out = pd.concat(parts, ignore_index=True)
        return out[["workload", *[c for c in out.columns if c != "workload"]]]

    @cached_property
    def transfer(self) -> pd.DataFrame | None:
        """transfer.csv: each trick's delta per workload and pooled (multi-workload studies only, else None)."""
        return X.transfer_table(self.data) if self._workloads else None

    @cached_property
    def summary(self) -> pd.DataFrame:
        if self._workloads:
            return self._stacked("summary")
        return summarize(self._main_runs, self._main.order)

    @cached_property
    def deltas(self) -> pd.DataFrame:
        if self._workloads:
            return self._stacked("deltas")
        main = self._main
        return delta_table(self._main_runs, comparisons(main.manifest["spec"]["variants"], main.reference))

    @cached_property
    def effects(self) -> pd.DataFrame | None:
        design = self.data.manifest["spec"].get("design")
        if not design or design["kind"] not in ("factorial", "fractional"):
            return None
        if self._workloads:
            return self._stacked("effects")
        from .effects import effects

        return effects(self._main_runs, design)

    @property
    def selection(self) -> pd.DataFrame | None:
        """selection.csv: per variant its default and selected LR, edge flag, grid values left out (tuned only)."""
        return self._tuning.selection if self._tuning else None

    @property
    def tuned(self) -> pd.DataFrame | None:
        """tuned.csv: each variant vs the reference at the default and at the selected LRs (tuned only)."""
        return self._tuning.table if self._tuning else None

    def __repr__(self) -> str:
        return (f"Study({self.name!r}: {len(self.data.order)} variants, {len(self.data.records)} finished runs, "
                f"{len(self.data.missing)} missing, {len(self.data.corrupted)} corrupted)")


def load_study(path: str | Path) -> Study:
    """The study stored in ``path`` (a directory written by ``tricks ablation``: its ``study.json`` and
    ``runs/``), as a ``Study`` whose tables are computed from the stored runs on first use. Reads data only
    and never imports torch; a run counts when its record is complete and its settings key is the one
    ``study.json`` planned (others are ``missing`` or ``corrupted``). A folder without ``study.json``, or
    with a malformed one, raises ``TricksError`` with one line naming it."""
    return Study(_load(Path(path)))

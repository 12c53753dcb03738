"""Read a results directory into tables: the only input of the figures and the report.

Needs no torch. A run counts if its stored record is complete and its ``settings_key`` is the
one the study's manifest (``study.json``) planned for its (arm, seed); planned runs without such a
record are listed as missing, by (arm, seed). An arm is a variant at one value of a tuning grid
(``records.run_arm``: ``baseline@lr0.001``); in an ordinary study the arm is the variant's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import TricksError
from ..running.records import RUNS_CSV_COLUMNS, matching, record_arm, run_row, scan_runs, stem_key
from ..running.schema import MANIFEST, Obj, DictOf, Str, Opt, validate


@dataclass
class StudyData:
    directory: Path
    manifest: dict
    records: list[dict]
    missing: list[tuple[str, int]] = field(default_factory=list)   # (arm, seed): see records.run_arm
    failures: dict[str, dict] = field(default_factory=dict)   # stem -> {"reason", "traceback"}
    corrupted: dict[str, str] = field(default_factory=dict)   # run file path -> why it cannot be used

    @property
    def order(self) -> list[str]:
        return [v["name"] for v in self.manifest["spec"]["variants"]]

    @property
    def reference(self) -> str:
        """The variant every other is compared with: 'baseline' if the spec has one, else its first."""
        return "baseline" if "baseline" in self.order else self.order[0]

    @property
    def classes(self) -> list[str]:
        return self.records[0]["classes"] if self.records else self.manifest["dataset"].get("classes", [])

    def runs(self) -> pd.DataFrame:
        """One row per counted run, with the columns of runs.csv."""
        return pd.DataFrame([run_row(r) for r in self.records], columns=list(RUNS_CSV_COLUMNS))

    def history(self) -> pd.DataFrame:
        """One row per (variant, seed, epoch): losses, accuracies, lr (validation columns when recorded;
        ``tuned_lr``, the run's grid value, in a tuned study; a leading ``workload`` column in a
        multi-workload study, where (variant, seed, epoch) repeats once per workload)."""
        rows = [{**_workload(r), "variant": r["variant"], "seed": r["seed"], **h, **_tuned(r)} for r in self.records
                for h in r["history"]]
        cols = ["variant", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "lr", "train_seconds",
                "eval_seconds"]
        extra = [c for c in ("train_nll", "val_loss", "val_accuracy", "tuned_lr") if any(c in h for h in rows)]
        return pd.DataFrame(rows, columns=_leading(rows) + cols + extra)

    def lr_steps(self) -> pd.DataFrame:
        """One row per recorded LR change: variant, seed, step, epoch (fractional: step / steps per epoch), lr.

        Each run closes with a row at its end (its last step, epochs run x steps per epoch) holding
        the LR then in force, unless a change was recorded there: the trace records changes only, so
        a constant LR is one point at step 0 and the last LR of a step schedule would otherwise end
        where it began. Runs recorded before the per-step trace existed (schema 1) contribute their
        per-epoch LR, closed at the end of their last epoch. A multi-workload study's rows lead with their
        ``workload``."""
        rows = []
        for r in self.records:
            trace = r.get("lr_trace")
            epochs = r.get("epochs_run", len(r["history"]))
            if trace:
                spe = trace["steps_per_epoch"]
                points = list(zip(trace["step"], trace["lr"]))
                if points and points[-1][0] < epochs * spe:
                    points.append((epochs * spe, points[-1][1]))
                rows += [{**_workload(r), "variant": r["variant"], "seed": r["seed"], "step": s, "epoch": s / spe,
                          "lr": lr} for s, lr in points]
            elif r["history"]:
                points = [(h["epoch"] - 1, h["lr"]) for h in r["history"]]
                points.append((r["history"][-1]["epoch"], points[-1][1]))
                rows += [{**_workload(r), "variant": r["variant"], "seed": r["seed"], "step": None, "epoch": e,
                          "lr": lr} for e, lr in points]
        return pd.DataFrame(rows, columns=_leading(rows) + ["variant", "seed", "step", "epoch", "lr"])

    def confusion(self, variant: str) -> np.ndarray | None:
        """The confusion matrix of ``variant`` summed over its ok seeds (rows: true class)."""
        mats = [np.asarray(r["metrics"]["confusion_matrix"]) for r in self.records
                if r["variant"] == variant and r["status"] == "ok"]
        return np.sum(mats, axis=0) if mats else None

    def per_class_f1(self) -> pd.DataFrame:
        """variants x classes: F1 per class, mean over ok seeds."""
        rows = [{"variant": r["variant"], "class": c, "f1": v["f1-score"]}
                for r in self.records if r["status"] == "ok" for c, v in r["metrics"]["per_class"].items()]
        if not rows:
            return pd.DataFrame()
        t = pd.DataFrame(rows).groupby(["variant", "class"])["f1"].mean().unstack("class")
        return t.reindex(index=[v for v in self.order if v in t.index], columns=self.classes)


def _workload(record: dict) -> dict:
    """{"workload": name} for a run of a multi-workload study, else {} (a one-workload study's tables are unchanged)."""
    return {} if record.get("workload") is None else {"workload": record["workload"]}


def _leading(rows: list[dict]) -> list[str]:
    """``["workload"]`` when the rows come from a multi-workload study, else []."""
    return ["workload"] if any("workload" in r for r in rows) else []


def _tuned(record: dict) -> dict:
    """{"tuned_lr": value} for a run of a tuned study, else {} (an ordinary study's history is unchanged)."""
    lr = record.get("tuned_lr")
    return {} if lr is None else {"tuned_lr": float(lr)}


def _lr_key(lr) -> float:
    """A run's place among its variant's grid values (an ordinary run sorts as one value)."""
    return -1.0 if lr is None else float(lr)


FAILURES = DictOf(Obj({"reason": Str()}, {"traceback": Opt(Str())}))


def _read_json(path: Path, schema, what: str):
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TricksError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise TricksError(f"{path} is not valid JSON ({exc}); {what}") from None
    validate(obj, schema, str(path))
    return obj


def load_study(directory: Path) -> StudyData:
    """The study's manifest and its counted runs; corrupted run files are named, not dropped silently.

    ``study.json`` and ``failures.json`` must have their schema (else one-line ``TricksError``);
    a run file that is not a complete record is listed in ``corrupted`` with the reason.
    """
    directory = Path(directory)
    path = directory / "study.json"
    if not path.is_file():
        raise TricksError(f"{directory} has no study.json, so it is not a results directory written by "
                          "'tricks ablation' (try results/backprop_tricks)")
    manifest = _read_json(path, MANIFEST, "run 'tricks ablation' again to rewrite it")
    plan = {(record_arm(r), r["seed"]): r for r in manifest["runs"]}   # a planned run names its arm as a record does
    stored, corrupted = scan_runs(directory)
    records = matching(stored, {k: r["settings_key"] for k, r in plan.items()})
    have = {(record_arm(r), r["seed"]) for r in records}
    broken = {stem_key(p) for p in corrupted}
    order = {v["name"]: i for i, v in enumerate(manifest["spec"]["variants"])}
    records.sort(key=lambda r: (order.get(r["variant"], 1 << 30), _lr_key(r.get("tuned_lr")), r["seed"]))
    missing = sorted((k for k in plan if k not in have and k not in broken),
                     key=lambda k: (order.get(plan[k]["variant"], 1 << 30), _lr_key(plan[k].get("tuned_lr")), k[1]))
    failures = {}
    if (directory / "failures.json").is_file():
        failures = _read_json(directory / "failures.json", FAILURES, "delete it (it is rewritten by every study)")
    return StudyData(directory, manifest, records, missing, failures, corrupted)

"""The run record, and the results directory that holds them: one JSON per (variant, seed) under
``runs/``, and ``runs.csv``. This module owns the record's schema, its file name, writing,
reading, the completeness check and the matching against a plan. It needs no torch.

Files are written atomically (temporary file, fsync, rename), so a reader never sees half a
file. A stored run counts only if it is complete (status ok or diverged, with history and
metrics) and its ``settings_key`` is the one planned for its (variant, seed).

Schema history: 1, the first; 2 adds per-epoch validation metrics (``val_loss``,
``val_accuracy``) and ``train_nll`` when a trick changes the training loss, ``lr_trace`` (the LR
at every change, by optimizer step), ``optimizer_class`` and ``validation_images``. Schema-1
records stay readable (the new fields are optional for readers).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable

from ..files import write_atomic  # noqa: F401 - the results layer writes through it

RUNS_DIR = "runs"
SCHEMA = 2                 # written by this version
READABLE_SCHEMAS = (1, 2)  # accepted when reading
FINAL_STATUSES = ("ok", "diverged")   # a run in one of these is finished and is not redone
RUNS_CSV_COLUMNS = ("variant", "seed", "status", "accuracy", "micro_f1", "macro_f1", "epochs",
                    "train_seconds", "eval_seconds", "wall_seconds", "device", "settings_key",
                    "tuned_lr", "val_accuracy",   # empty unless the study tunes / validates
                    "workload", "model", "dataset")   # workload: empty unless the spec has [[workloads]]


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def run_arm(variant: str, tuned_lr: float | None = None, workload: str | None = None) -> str:
    """The arm a run belongs to: its variant, then ``@<workload>`` in a multi-workload spec, then
    ``@lr<value>`` at a tuning grid's value (``baseline@resnet8@lr0.001``)."""
    return variant + (f"@{workload}" if workload else "") + ("" if tuned_lr is None else f"@lr{tuned_lr:g}")


def record_arm(record: dict) -> str:
    return run_arm(record["variant"], record.get("tuned_lr"), record.get("workload"))


def run_stem(arm: str, seed: int) -> str:
    """The file-name stem of a run: ``<arm>__seed<k>`` (the arm is the variant unless the study tunes)."""
    return f"{arm}__seed{seed}"


def run_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / RUNS_DIR / f"{stem}.json"


def make_record(settings, outcome: dict, metrics: dict, dataset: dict, classes: list[str], provenance: dict,
                wall_seconds: float, finished_at: str) -> dict:
    """A run record: the settings and their key, the engine's outcome (history, status, ...), scores.

    ``metrics`` is None while the record is in flight from a worker: the outcome then still holds the
    test ``predictions``, which the study driver scores before writing (``metrics.score_record``)."""
    tuned = {"tuned_lr": settings.tuned_lr} if settings.tuned_lr is not None else {}
    workload = {"workload": settings.workload} if settings.workload is not None else {}
    return {"schema": SCHEMA, "variant": settings.variant, **workload, **tuned, "seed": settings.seed,
            "settings": settings.to_dict(), "settings_key": settings.key(), **outcome,
            "metrics": metrics, "classes": classes, "wall_seconds": wall_seconds,
            "dataset": dataset, "provenance": provenance, "finished_at": finished_at}


def check_record(path: Path) -> tuple[dict | None, str | None]:
    """(the record, None) if the file holds a complete run; else (None, why not)."""
    from .schema import RUN_RECORD, problem

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    try:
        record = json.loads(text)
    except ValueError as exc:
        return None, f"is not valid JSON ({exc}; truncated?)"
    why = problem(record, RUN_RECORD)
    return (record, None) if why is None else (None, why)


def read_run(path: Path) -> dict | None:
    """The record at ``path`` if it is a complete run, else None (missing, torn or partial)."""
    return check_record(path)[0]


def scan_runs(out_dir: Path) -> tuple[list[dict], dict[str, str]]:
    """(every complete run record in ``out_dir/runs``, {file path: why it is corrupted}), by file name."""
    d = Path(out_dir) / RUNS_DIR
    if not d.is_dir():
        return [], {}
    records, corrupted = [], {}
    for p in sorted(d.glob("*.json")):
        record, why = check_record(p)
        if record is not None:
            records.append(record)
        else:
            corrupted[str(p)] = why
    return records, corrupted


def load_runs(out_dir: Path) -> list[dict]:
    """Every complete run record in ``out_dir/runs``, sorted by file name."""
    return scan_runs(out_dir)[0]


def stem_key(path: str | Path) -> tuple[str, int] | None:
    """(arm, seed) from a run file's name ``<arm>__seed<k>.json``, or None."""
    stem = Path(path).stem
    variant, sep, seed = stem.rpartition("__seed")
    return (variant, int(seed)) if sep and seed.isdigit() else None


def matching(records: Iterable[dict], planned: dict[tuple[str, int], str]) -> list[dict]:
    """The records whose (arm, seed) is planned with exactly their ``settings_key``."""
    return [r for r in records if planned.get((record_arm(r), r["seed"])) == r["settings_key"]]


def run_row(record: dict) -> dict:
    m = record.get("metrics") or {}
    return {"variant": record["variant"], "seed": record["seed"], "status": record["status"],
            "accuracy": m.get("accuracy"), "micro_f1": m.get("micro_f1"), "macro_f1": m.get("macro_f1"),
            "epochs": record.get("epochs_run"), "train_seconds": round(record.get("train_seconds", 0.0), 3),
            "eval_seconds": round(record.get("eval_seconds", 0.0), 3),
            "wall_seconds": round(record.get("wall_seconds", 0.0), 3),
            "device": (record.get("provenance") or {}).get("device"), "settings_key": record["settings_key"],
            "tuned_lr": record.get("tuned_lr"), "val_accuracy": final_val_accuracy(record),
            "workload": record.get("workload"), "model": (record.get("settings") or {}).get("model", "tf_cnn"),
            "dataset": (record.get("settings") or {}).get("data_kind") or (record.get("dataset") or {}).get("kind")}


def final_val_accuracy(record: dict) -> float | None:
    """The validation accuracy of the run's last epoch, or None without a validation split."""
    history = record.get("history") or []
    return history[-1].get("val_accuracy") if history else None


def write_runs_csv(out_dir: Path, records: Iterable[dict], order: list[str] | None = None) -> Path:
    """``runs.csv``: one row per run, variants in ``order`` (spec order) then by seed."""
    rows = [run_row(r) for r in records]
    rank = {v: i for i, v in enumerate(order or [])}
    rows.sort(key=lambda r: (r["workload"] or "", rank.get(r["variant"], len(rank)), r["variant"], r["tuned_lr"] or 0.0,
                             r["seed"]))
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUNS_CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = Path(out_dir) / "runs.csv"
    write_atomic(path, buf.getvalue())
    return path


TEST_LABELS = "test_labels.json"   # {dataset sha256: {"classes": [...], "labels": encoded}}, once per study


def write_test_labels(out_dir: Path, labels: dict[str, tuple[list[str], list[int]]]) -> None:
    """Add each dataset's test labels (``{sha256: (classes, labels)}``) to the study's ``test_labels.json``."""
    from ..predictions import encode_labels

    stored = read_test_labels(out_dir)
    fresh = {sha: {"classes": list(classes), "labels": encode_labels(y)} for sha, (classes, y) in labels.items()}
    if any(stored.get(sha) != v for sha, v in fresh.items()):
        write_json(Path(out_dir) / TEST_LABELS, {**stored, **fresh})


def read_test_labels(out_dir: Path) -> dict[str, dict]:
    """``test_labels.json`` as stored ({} when the study has none: runs made before predictions were kept)."""
    path = Path(out_dir) / TEST_LABELS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

"""The results directory: one JSON per (variant, seed) under ``runs/``, and ``runs.csv``.

Files are written atomically (temporary file, fsync, rename), so a reader never sees half a
file. A stored run is reused only if it is complete (status ok or diverged, with history and
metrics) and its ``settings_key`` matches the current settings. This module needs no torch.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

RUNS_DIR = "runs"
SCHEMA = 1
FINAL_STATUSES = ("ok", "diverged")   # a run in one of these is finished and is not redone
RUNS_CSV_COLUMNS = ("variant", "seed", "status", "accuracy", "micro_f1", "macro_f1", "epochs",
                    "train_seconds", "eval_seconds", "wall_seconds", "device", "settings_key")


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)   # mkstemp's 0600 would make shared results unreadable to others
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def run_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / RUNS_DIR / f"{stem}.json"


def is_complete(record: dict) -> bool:
    return (isinstance(record, dict) and record.get("schema") == SCHEMA
            and record.get("status") in FINAL_STATUSES and isinstance(record.get("history"), list)
            and isinstance(record.get("metrics"), dict) and isinstance(record.get("settings_key"), str))


def read_run(path: Path) -> dict | None:
    """The record at ``path`` if it is a complete run, else None (missing, torn or partial)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if is_complete(record) else None


def load_runs(out_dir: Path) -> list[dict]:
    """Every complete run record in ``out_dir/runs``, sorted by file name."""
    d = Path(out_dir) / RUNS_DIR
    if not d.is_dir():
        return []
    return [r for p in sorted(d.glob("*.json")) if (r := read_run(p)) is not None]


def run_row(record: dict) -> dict:
    m = record.get("metrics") or {}
    return {"variant": record["variant"], "seed": record["seed"], "status": record["status"],
            "accuracy": m.get("accuracy"), "micro_f1": m.get("micro_f1"), "macro_f1": m.get("macro_f1"),
            "epochs": record.get("epochs_run"), "train_seconds": round(record.get("train_seconds", 0.0), 3),
            "eval_seconds": round(record.get("eval_seconds", 0.0), 3),
            "wall_seconds": round(record.get("wall_seconds", 0.0), 3),
            "device": (record.get("provenance") or {}).get("device"), "settings_key": record["settings_key"]}


def write_runs_csv(out_dir: Path, records: Iterable[dict], order: list[str] | None = None) -> Path:
    """``runs.csv``: one row per run, variants in ``order`` (spec order) then by seed."""
    rows = [run_row(r) for r in records]
    rank = {v: i for i, v in enumerate(order or [])}
    rows.sort(key=lambda r: (rank.get(r["variant"], len(rank)), r["variant"], r["seed"]))
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUNS_CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = Path(out_dir) / "runs.csv"
    write_atomic(path, buf.getvalue())
    return path

"""Stored runs are never replaced silently.

A results folder that already holds a finished run of a planned (variant, seed) with other settings
(more epochs, another precision, another dataset, another engine) is not overwritten: the study
refuses before anything trains, with one line per kind of difference (which setting, stored value,
asked value, how many runs), and names the two ways on: ``--out`` for a new study, or
``--replace``, which moves the old records aside under ``replaced/<time>/`` (kept, never deleted)
and says where. A study that only adds seeds or variants, or resumes, finds no conflict.

``--precision auto`` in a folder whose stored runs all share one precision takes that precision
(``stored_precision``), so that ``auto`` on a machine with native bf16 does not silently retrain an
fp32 study. No torch here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import TricksError
from .records import RUNS_DIR, check_record, load_runs, run_path
from .settings import RunSettings

REPLACED_DIR = "replaced"      # under a results folder: records moved aside by --replace
EXAMPLES = 3                   # (stored, asked) value pairs shown per setting before "..."


@dataclass(frozen=True)
class Conflict:
    planned: RunSettings
    path: Path                 # the stored run file
    stored: dict               # its settings, as recorded


def find_conflicts(runs: list[RunSettings], out_dir: Path, index=None) -> list[Conflict]:
    """The planned runs whose run file holds a complete record made with other settings (``index``: the
    folder's ``index.RecordIndex``, read once; else each planned run's file is read)."""
    found = []
    for r in runs:
        path = run_path(out_dir, r.stem)
        if index is not None:
            rec = index.record(r.stem)
        elif not path.exists():
            continue
        else:
            rec, _ = check_record(path)
        if rec is not None and rec["settings_key"] != r.key():
            found.append(Conflict(r, path, dict(rec.get("settings") or {})))
    return found


def _show(value) -> str:
    if isinstance(value, str) and len(value) > 16 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"          # a checksum
    text = repr(value) if not isinstance(value, (int, float)) else f"{value:g}" if isinstance(value, float) \
        else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def differences(conflicts: list[Conflict]) -> list[str]:
    """One line per setting that differs: its name, (stored -> asked) values and how many runs."""
    by_field: dict[str, Counter] = {}
    for c in conflicts:
        new = c.planned.to_dict()
        old = c.stored
        if "threads" not in old:
            old = {**old, "threads": 1}     # records made before threads were a setting: all on one thread
        # records made before tuning and models were settings: the variant's own LRs, the study's net
        old = {"tuned_lr": None, "model": "tf_cnn", "workload": None, **old}
        new, old = _by_module(new), _by_module(old)   # an imported module's changed source, by its name
        for name in sorted(set(new) | set(old)):
            if name in ("variant", "seed", "workload"):
                continue
            a, b = old.get(name, "(not recorded)"), new.get(name, "(not recorded)")
            if a != b:
                by_field.setdefault(name, Counter())[(_show(a), _show(b))] += 1
    lines = []
    for name, pairs in sorted(by_field.items()):
        shown = ", ".join(f"stored {a} -> asked {b} ({n} run{'s' * (n != 1)})"
                          for (a, b), n in pairs.most_common(EXAMPLES))
        more = f", and {len(pairs) - EXAMPLES} other value pairs" if len(pairs) > EXAMPLES else ""
        lines.append(f"  {name}: {shown}{more}")
    if not lines:   # same recorded settings but another key: an older record layout
        lines.append(f"  settings key: {len(conflicts)} run(s) stored under a key this version does not make")
    return lines


def _by_module(settings: dict) -> dict:
    """The settings with ``sources`` ({module: sha256}) spread into one entry per module."""
    out = {k: v for k, v in settings.items() if k not in ("sources", "code_root")}
    out.update({f"source of module {m!r}": sha for m, sha in dict(settings.get("sources") or {}).items()})
    return out


def refusal(conflicts: list[Conflict], out_dir: Path) -> TricksError:
    n = len(conflicts)
    return TricksError(
        f"{out_dir} already holds {n} finished run{'s' * (n != 1)} of this study's (variant, seed) pairs "
        f"made with other settings; nothing was trained or changed. What differs:\n"
        + "\n".join(differences(conflicts)) + "\n"
        f"  To keep them: run the new settings in another folder (--out DIR, make ... OUT=DIR).\n"
        f"  To replace them: add --replace (make ... REPLACE=1); the old records are moved to "
        f"{Path(out_dir) / REPLACED_DIR}/<time>/, never deleted.")


def move_aside(conflicts: list[Conflict], out_dir: Path) -> Path:
    """Move the conflicting run files to ``out_dir/replaced/<time>/runs/``; returns that folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = Path(out_dir) / REPLACED_DIR / stamp / RUNS_DIR
    k = 1
    while dest.exists():
        k += 1
        dest = Path(out_dir) / REPLACED_DIR / f"{stamp}-{k}" / RUNS_DIR
    dest.mkdir(parents=True)
    for c in conflicts:
        c.path.replace(dest / c.path.name)
    return dest.parent


def stored_precision(out_dir: Path, index=None) -> tuple[str | None, int]:
    """(the one precision every complete stored run of ``out_dir`` has, how many), or (None, n) when
    there are none or they differ (``index``: the folder's ``index.RecordIndex``, read once)."""
    if index is None and not (Path(out_dir) / RUNS_DIR).is_dir():
        return None, 0
    found = Counter((r.get("settings") or {}).get("precision")
                    for r in (index.records() if index is not None else load_runs(out_dir)))
    if len(found) == 1:
        (value, n), = found.items()
        return value, n
    return None, sum(found.values())

"""What a study folder's tables cover: every finished run that belongs to the study, whatever subset
of variants and seeds one command asked to train.

A command that names fewer variants or seeds than the folder holds (``--variants baseline --seeds 0``
on a whole study, or the rounds of ``--until-halfwidth`` from seed 0) trains and reuses only those,
but ``study.json``, ``runs.csv`` and everything the report makes from them still cover the study:
the runs planned now, plus every other (arm, seed) the folder knows of, from the runs its
``study.json`` planned before or from a finished run file, whose settings under this command's
options are exactly the ones stored. A stored run made with other settings (more epochs, another
precision) is kept in ``runs/`` but counted apart, and the command says so. No torch here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..errors import TricksError
from .plan import StudyOptions, plan
from .records import load_runs, record_arm
from .settings import RunSettings

MANIFEST = "study.json"


def prior_pairs(out_dir: Path) -> set[tuple[str, int]]:
    """The (arm, seed) pairs the folder's ``study.json`` planned (none without a readable one)."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
        return {(record_arm(r), int(r["seed"])) for r in manifest["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def study_runs(opts: StudyOptions, runs: list[RunSettings], checksums: dict, settle: Callable[[list], list],
               out_dir: Path, index=None) -> tuple[list[RunSettings], int]:
    """(the study's runs: ``runs``, the ones planned now, and every other run that belongs to the
    folder's study, seed-major; how many finished runs in the folder were made with other settings).

    ``checksums``: as for ``plan``; ``settle(runs)``: the planned runs as this command trains them (the
    device kind, population membership), so that their settings keys are the ones it would store.
    ``index``: the folder's ``index.RecordIndex`` (its runs read once), else the run files are read."""
    current = {(r.arm, r.seed) for r in runs}
    earlier = prior_pairs(out_dir)
    stored = {(record_arm(r), r["seed"]): r["settings_key"]
              for r in (index.records() if index is not None else load_runs(out_dir))}
    candidates = (earlier | set(stored)) - current
    if not candidates:
        return runs, 0
    seeds = tuple(sorted({s for _, s in candidates}))
    spec_variants = [v.name for v in opts.spec.variants]
    wanted = {arm.split("@")[0] for arm, _ in candidates}
    by_pair: dict[tuple[str, int], RunSettings] = {}
    for name in (v for v in spec_variants if v in wanted):
        try:
            wide = plan(replace(opts, variants=[name], seeds=seeds), checksums)
        except TricksError:   # the variant cannot run with these options (a validation split it needs, say)
            continue
        by_pair.update(((w.arm, w.seed), w) for w in settle(wide))
    extra, other = [], 0
    for pair in candidates:
        w, key = by_pair.get(pair), stored.get(pair)
        if w is not None and (key == w.key() or (key is None and pair in earlier)):
            extra.append(w)   # finished with these settings, or planned before and not finished yet
        elif key is not None:
            other += 1        # finished with other settings (or of a variant, grid value or workload not planned)
    rank = {name: i for i, name in enumerate(spec_variants)}
    workloads = {w.name: i for i, w in enumerate(opts.spec.workloads)}
    union = runs + extra
    union.sort(key=lambda r: (r.seed, workloads.get(r.workload, 0), rank.get(r.variant, len(rank)),
                              r.tuned_lr or 0.0))
    return union, other

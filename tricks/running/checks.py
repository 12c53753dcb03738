"""Checks that refuse an impossible study before anything starts: before a folder is created, and
before any worker process, shared queue or semaphore exists (``study.run_study`` runs them first).

``check_split``: the validation split and the training subset against the training images a dataset
has. ``stored_seeds`` and ``check_max_seeds``: ``--max-seeds`` against the seeds a results folder
already holds for the planned variants. No torch here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError, TricksError
from .records import RUNS_DIR, stem_key


def check_split(n_train: int, n_classes: int, validation: int, subset: int | None, dataset: str) -> None:
    """Refuse a validation split or a training subset that the training split of ``dataset`` (``n_train``
    images of ``n_classes`` classes) cannot give, or that leaves a class nothing to train on."""
    left = n_train - validation
    if validation and left < n_classes:
        what = (f"is at or above the training split of {dataset} ({n_train} images): nothing would be left to "
                "train on" if left <= 0 else f"leaves {left} of the {n_train} training images of {dataset} to "
                f"train on, fewer than its {n_classes} classes")
        raise DataError(f"--validation {validation} {what}; hold out at most {max(0, n_train - n_classes)}"
                        + (f" (at most {max(0, n_train - subset)} with --train-subset {subset})" if subset else ""))
    if subset is not None and subset < n_classes:
        raise DataError(f"--train-subset {subset} is smaller than the number of classes ({n_classes})")
    if subset is not None and subset > left:
        raise DataError(f"--train-subset {subset} is larger than the training split available to it in {dataset}: "
                        + (f"{n_train} images less the {validation}-image validation split = {left}" if validation
                           else f"{n_train} images")
                        + (f"; lower --train-subset or --validation (together at most {n_train})"
                           if validation else ""))


def stored_seeds(out_dir: Path, variants: list[str]) -> list[int]:
    """The seeds of the run files in ``out_dir/runs`` that belong to ``variants`` (by file name, so no
    file is parsed: any arm of a variant counts, at any grid value or workload)."""
    d = Path(out_dir) / RUNS_DIR
    if not d.is_dir():
        return []
    wanted = set(variants)
    seeds = set()
    for p in d.glob("*.json"):
        key = stem_key(p)
        if key is not None and key[0].split("@")[0] in wanted:
            seeds.add(key[1])
    return sorted(seeds)


def check_max_seeds(out_dir: Path, variants: list[str], seeds: list[int], max_seeds: int) -> None:
    """``--max-seeds`` must not be below the seeds a round-based study starts with, nor below the seeds
    already stored in the folder for the planned variants (its tables count those: the rounds could
    never stop by the seed limit they state)."""
    if len(seeds) > max_seeds:
        raise TricksError(f"--max-seeds {max_seeds} is fewer than the {len(seeds)} seeds the study starts with "
                          f"({','.join(map(str, seeds))})")
    stored = stored_seeds(out_dir, variants)
    if len(stored) > max_seeds:
        shown = ",".join(map(str, stored[:12])) + (",..." if len(stored) > 12 else "")
        raise TricksError(f"--max-seeds {max_seeds} is below the {len(stored)} seeds already stored in {out_dir} for "
                          f"the planned variants ({shown}); raise --max-seeds to at least {len(stored)}, or use "
                          "another --out")

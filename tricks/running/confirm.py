"""``tricks confirm``: train exactly the (variant, seed) runs a claims file needs, seed by seed, on
fresh seeds, at one revision, precision and thread count, after writing its pre-registration.

Each source spec's runs go into an ordinary study folder, ``<out>/studies/<spec name>/``, with the
settings of that spec (the seeds and the precision excepted), so every tool that reads a study reads
them. Whole seeds finish first (every arm of seed k before seed k+1), and every run of a seed trains
on one machine kind (``seed_machines.json``): a session that lands on another CPU leaves a started
seed for its own kind and goes on with the next. The analysis is ``analysis.confirm``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import TricksError
from ..specs.claims import Claims
from .confirm_plan import (SEED_MACHINES, check_fresh, check_registration, registration, resolve_groups,
                           seed_machine, source_seeds)
from .plan import StudyOptions
from .provenance import cpu_model, git_revision
from .records import RUNS_DIR, write_json


@dataclass
class ConfirmOutcome:
    out_dir: Path
    planned: int = 0
    reused: int = 0
    trained: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[int, str] = field(default_factory=dict)    # seed -> the machine it was started on
    wall_seconds: float = 0.0


def run_confirmation(claims: Claims, base: StudyOptions, seeds: tuple[int, ...], *, allow_dirty: bool = False,
                     run_study: Callable, on_notice: Callable[[str], None] = print) -> ConfirmOutcome:
    """Register (first time) or check the registration, then train seed by seed. ``base``: the options
    every sub-study shares (data source, precision resolved, threads, workers, device, progress);
    ``run_study(opts)`` trains one sub-study and returns its ``StudyOutcome``."""
    from ..plugins import load_spec

    out_dir = Path(base.out_dir)
    groups = resolve_groups(claims, load_spec)
    check_fresh(seeds, source_seeds(claims))
    git = git_revision()
    if not allow_dirty and (git.get("revision") is None or git.get("dirty")):
        raise TricksError("a confirmation trains at one committed revision with a clean tree; this code is "
                          + ("not in a git checkout" if git.get("revision") is None else
                             f"at {git['revision'][:12]} with uncommitted changes")
                          + " (commit first, or --allow-dirty for a trial run that the report marks as such)")
    if base.precision not in ("fp32", "bf16"):
        raise TricksError(f"a confirmation needs one precision, fp32 or bf16, got {base.precision}")
    out_dir.mkdir(parents=True, exist_ok=True)
    check_registration(out_dir, registration(claims, groups, seeds, base.precision, base.threads, git, allow_dirty))
    write_json(out_dir / "claims.json", _claims_table(claims, groups))
    machine = _machine(base.device)
    outcome = ConfirmOutcome(out_dir)
    t0 = time.perf_counter()
    for seed in seeds:
        started = any(_has_runs(out_dir / g.folder, seed) for g in groups.values())
        where = seed_machine(out_dir, seed, machine, started)
        if where is None:
            outcome.deferred[seed] = json.loads((out_dir / SEED_MACHINES).read_text())[str(seed)]
            on_notice(f"seed {seed} was started on {outcome.deferred[seed]}; this is {machine}: it is left for "
                      "that machine, so that no pair of runs spans two machines")
            continue
        for name, g in groups.items():
            opts = StudyOptions(**{**base.__dict__, "spec": g.spec, "out_dir": out_dir / g.folder,
                                   "variants": list(g.variants), "seeds": (seed,),
                                   "workloads": tuple(g.workloads) if g.workloads else None,
                                   "fixed_lr": dict(g.fixed_lr) or None})
            o = run_study(opts)
            outcome.planned += o.planned
            outcome.reused += o.reused
            outcome.trained += len(o.finished)
            outcome.failed.update({f"{name}/{k}": v for k, v in o.failed.items()})
            if o.failed:   # a bug or a crash: stop here, so that no later seed starts before this one is whole
                outcome.wall_seconds = time.perf_counter() - t0
                return outcome
    outcome.wall_seconds = time.perf_counter() - t0
    return outcome


def _machine(device: str) -> str:
    return cpu_model() if device in ("cpu", "auto") else device


def _has_runs(folder: Path, seed: int) -> bool:
    return any((folder / RUNS_DIR).glob(f"*__seed{seed}.json"))


def _claims_table(claims: Claims, groups) -> dict:
    """``claims.json``: what the analysis needs of each claim, with the sub-study folder of its runs."""
    by_path = {str(g.spec_path.resolve()): g for g in groups.values()}
    return {"name": claims.name, "description": claims.description, "claims": [
        {"name": c.name, "statement": c.statement, "folder": by_path[str(claims.spec_path(c).resolve())].folder,
         "study": str(c.study), "weights": [[v, w] for v, w in c.weights], "direction": c.direction,
         "margin": c.margin, "workload": c.workload, "tuned": c.tuned,
         "fixed_lr": {v: by_path[str(claims.spec_path(c).resolve())].fixed_lr.get(v) for v in c.variants}
         if c.tuned else None, "contrast": c.describe()} for c in claims.claims]}

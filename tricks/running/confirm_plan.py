"""What a confirmation trains, and its pre-registration: the claims resolved against their specs, the
seeds the exploratory studies used (refused), and ``preregistration.json``, written before the first run
and compared at every later start (a changed claims file, spec, revision, precision, thread count or
seed list is refused, naming what changed). No torch here."""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TricksError
from ..specs.claims import Claim, Claims, parse_claims
from ..specs.spec import Spec
from .records import RUNS_DIR, stem_key, write_json

PREREGISTRATION = "preregistration.json"
STUDIES_DIR = "studies"         # under a confirmation folder: one ordinary study folder per source spec
SEED_MACHINES = "seed_machines.json"   # {seed: the CPU (or GPU) every run of that seed trained on}
GRID_MATCH = 1e-5   # relative: a selection.csv LR (6 significant digits) names the grid value this close


@dataclass
class Group:
    """The runs one source spec contributes: its variants (spec order), workloads and fixed tuned LRs."""
    spec: Spec
    spec_path: Path
    variants: list[str] = field(default_factory=list)
    workloads: list[str] | None = None
    fixed_lr: dict[str, float] = field(default_factory=dict)
    untuned: set[str] = field(default_factory=set)   # variants some claim needs at their default LR

    @property
    def folder(self) -> str:
        return f"{STUDIES_DIR}/{self.spec.name}"


def resolve_groups(claims: Claims, load_spec) -> dict[str, Group]:
    """{spec name: Group}, every claim's variants checked against its spec (``load_spec(path) -> Spec``)."""
    groups: dict[str, Group] = {}
    for c in claims.claims:
        path = claims.spec_path(c)
        spec = load_spec(path)
        g = groups.setdefault(spec.name, Group(spec, path))
        if g.spec_path.resolve() != path.resolve():
            raise TricksError(f"claim {c.name}: spec {path} is named '{spec.name}' like {g.spec_path}; "
                              "the specs a confirmation trains need distinct names")
        names = [v.name for v in spec.variants]
        unknown = [v for v in c.variants if v not in names]
        if unknown:
            raise TricksError(f"claim {c.name}: spec {spec.name} has no variant {', '.join(unknown)}; "
                              f"its variants: {', '.join(names)}")
        if c.workload is not None:
            wnames = [w.name for w in spec.workloads]
            if c.workload not in wnames:
                raise TricksError(f"claim {c.name}: spec {spec.name} has no workload {c.workload}; its workloads: "
                                  f"{', '.join(str(w) for w in wnames)}")
            g.workloads = sorted(set(g.workloads or []) | {c.workload}, key=wnames.index)
        elif spec.multi_workload:
            raise TricksError(f"claim {c.name}: spec {spec.name} has several workloads; name one with 'workload'")
        if c.tuned:
            for v, lr in selected_lrs(c, claims.study_path(c), spec).items():
                if g.fixed_lr.setdefault(v, lr) != lr:
                    raise TricksError(f"claim {c.name}: variant {v} has two selected LRs")
        both = {v for v in c.variants if (v in g.untuned if c.tuned else v in g.fixed_lr)}
        if both:   # each (spec, variant) trains once, at one LR: a tuned and an untuned claim cannot share it
            raise TricksError(f"claim {c.name}: variant {', '.join(sorted(both))} of spec {spec.name} is claimed both "
                              "at its selected LR (tuned = true) and at its default LR; a confirmation trains each "
                              "variant of a spec once: make every claim on it tuned, or none")
        if not c.tuned:
            g.untuned |= set(c.variants)
        g.variants = [v for v in names if v in set(g.variants) | set(c.variants)]
    return groups


def selected_lrs(claim: Claim, study: Path, spec: Spec) -> dict[str, float]:
    """{variant: the LR the exploratory study selected on validation}, read from its ``selection.csv``."""
    if spec.tuning is None:
        raise TricksError(f"claim {claim.name}: tuned = true, but spec {spec.name} has no [tuning] grid")
    path = study / "selection.csv"
    try:
        rows = {r["variant"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}
    except OSError:
        raise TricksError(f"claim {claim.name}: tuned = true needs the exploratory study's {path} "
                          "(run 'tricks figures --results' on it)") from None
    out = {}
    for v in claim.variants:
        try:
            written = float(rows[v]["selected_lr"])
        except (KeyError, ValueError):
            raise TricksError(f"claim {claim.name}: {path} has no selected LR for variant {v}") from None
        # selection.csv rounds to 6 significant digits: train at (and match records by) the grid's own value
        grid = [g for g in spec.tuning.lr if math.isclose(g, written, rel_tol=GRID_MATCH)]
        if not grid:
            raise TricksError(f"claim {claim.name}: {path} selects LR {written:g} for variant {v}, not a value of "
                              f"spec {spec.name}'s grid ({', '.join(f'{g:g}' for g in spec.tuning.lr)})")
        out[v] = grid[0]
    return out


def source_seeds(claims: Claims) -> dict[str, list[int]]:
    """{exploratory study folder: every seed it planned or stored}: seeds a confirmation may not reuse."""
    out = {}
    for c in claims.claims:
        study = claims.study_path(c)
        seeds: set[int] = set()
        try:
            seeds |= set(json.loads((study / "study.json").read_text(encoding="utf-8")).get("seeds") or [])
        except (OSError, ValueError):
            pass
        seeds |= {k[1] for p in (study / RUNS_DIR).glob("*.json") if (k := stem_key(p)) is not None}
        if not seeds:
            raise TricksError(f"claim {c.name}: the exploratory study {study} holds no runs (its 'study' must be "
                              "the results folder the claim came from)")
        out[str(c.study)] = sorted(seeds)
    return out


def check_fresh(seeds: tuple[int, ...], used: dict[str, list[int]]) -> None:
    clash = {study: sorted(set(s) & set(seeds)) for study, s in used.items()}
    clash = {k: v for k, v in clash.items() if v}
    if clash:
        raise TricksError("a confirmation trains fresh seeds; these were used by the exploratory studies: "
                          + "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in clash.items())
                          + f" (pick seeds above {max(max(v) for v in used.values())})")


def exploratory(claims: Claims, groups: dict[str, Group]) -> dict[str, dict]:
    """{claim: {"study", "seeds", "per_seed"}}: each claim's contrast (accuracy points) on every seed of the
    exploratory study it came from, fixed in the registration (a later retrain of that study cannot move it)."""
    from .records import load_runs

    out = {}
    for c in claims.claims:
        lrs = next(g.fixed_lr for g in groups.values() if g.spec_path.resolve() == claims.spec_path(c).resolve())
        arms = {v: {} for v in c.variants}
        for r in load_runs(claims.study_path(c)):
            lr = lrs.get(r["variant"]) if c.tuned else None
            if r["variant"] in arms and r.get("workload") == c.workload and r.get("tuned_lr") == lr:
                arms[r["variant"]][r["seed"]] = r["metrics"]["accuracy"]
        seeds = sorted(set.intersection(*(set(a) for a in arms.values())))
        out[c.name] = {"study": str(claims.study_path(c)), "seeds": seeds,
                       "per_seed": [round(100.0 * sum(w * arms[v][s] for v, w in c.weights), 6) for s in seeds]}
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def registration(claims: Claims, groups: dict[str, Group], seeds, precision: str, threads: int,
                 git: dict, allow_dirty: bool) -> dict:
    return {"claims_sha256": claims.sha256, "claims_path": claims.path, "claims_text": claims.text,
            "specs": {name: {"path": str(g.spec_path), "sha256": _sha(g.spec_path)} for name, g in groups.items()},
            "seeds": list(seeds), "precision": precision, "threads": threads,
            "revision": git.get("revision"), "dirty": bool(git.get("dirty")), "allow_dirty": allow_dirty,
            "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "exploratory": exploratory(claims, groups)}


def check_registration(out_dir: Path, new: dict) -> dict:
    """The folder's stored registration; written from ``new`` when there is none. A stored one that
    differs from ``new`` in anything fixed before the runs is refused, naming what changed."""
    path = Path(out_dir) / PREREGISTRATION
    if not path.exists():
        write_json(path, new)
        return new
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TricksError(f"{path} cannot be read ({exc}); a confirmation's registration is never rewritten") from None
    changed = []
    if old.get("claims_sha256") != new["claims_sha256"]:
        changed.append("the claims file (" + _what_changed(old.get("claims_text", ""), new["claims_text"]) + ")")
    for name, s in new["specs"].items():
        if (old.get("specs") or {}).get(name, {}).get("sha256") != s["sha256"]:
            changed.append(f"spec {name} ({s['path']})")
    for key, what in (("seeds", "the seeds"), ("precision", "the precision"), ("threads", "the thread count"),
                      ("revision", "the code revision")):
        if old.get(key) != new[key]:
            changed.append(f"{what} ({old.get(key)} -> {new[key]})")
    if changed:
        raise TricksError(f"{out_dir} was pre-registered on {old.get('registered_at')}; since then "
                          + "; ".join(changed) + " changed. A confirmation tests what was fixed before its runs: "
                          "restore them (the stored claims are in preregistration.json; 'make confirm' trains at "
                          "the registered revision), or register the new claims in a new --out folder")
    return old


def _what_changed(old: str, new: str) -> str:
    try:
        a, b = parse_claims(old), parse_claims(new)
    except TricksError:
        return "it no longer parses the same"
    before, after = {c.name: c for c in a.claims}, {c.name: c for c in b.claims}
    parts = [f"claim {n} added" for n in after if n not in before]
    parts += [f"claim {n} removed" for n in before if n not in after]
    parts += [f"claim {n} edited" for n in after if n in before and after[n] != before[n]]
    if not parts:
        lines = [ln for ln in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
                 if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        parts = [f"text: {lines[0][:60]!r}" if lines else "text"]
    return ", ".join(parts)


def seed_machine(out_dir: Path, seed: int, machine: str, started: bool) -> str | None:
    """The machine ``seed`` trains on: recorded before its first run; None when it is another than
    ``machine`` and the seed has finished runs (``started``): the seed is then left for that machine, so
    that no pair of arms spans two machines. A seed recorded but never started is taken over."""
    path = Path(out_dir) / SEED_MACHINES
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    have = stored.get(str(seed))
    if have is None or (have != machine and not started):
        stored[str(seed)] = machine
        write_json(path, stored)
        return machine
    return have if have == machine else None

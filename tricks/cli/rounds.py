"""``tricks ablation --until-halfwidth H --max-seeds N``: a study in rounds of one seed until every
comparison is precise (``analysis.sequential``); the rule, each round and the final half-widths go
into ``study.json`` (key ``until``) and the report."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import TricksError


def check(target: float | None, max_seeds: int | None) -> None:
    if target is None:
        if max_seeds is not None:
            raise TricksError("--max-seeds needs --until-halfwidth H (the precision to stop at, in accuracy points)")
        return
    if not (target > 0 and math.isfinite(target)):   # inf would never stop on precision; nan never compares
        raise TricksError(f"--until-halfwidth must be a positive number of accuracy points, and finite, got {target}")
    if max_seeds is None or max_seeds < 2:
        raise TricksError("--until-halfwidth needs --max-seeds N (at least 2): the most seeds to train")


def starting_seeds(seeds) -> list[int]:
    """The seeds the first round trains: the ones asked for, with the next numbers added up to two."""
    seeds = list(seeds)
    while len(seeds) < 2:
        seeds.append(max(seeds) + 1)
    return seeds


def planned_deltas(opts):
    """The comparisons among the planned variants over the planned seeds: what the stopping rule reads.
    The folder's tables may hold more (other variants, more seeds: ``running.folder``); the rule looks at
    what this command trains, as it would in a folder of its own."""
    from dataclasses import replace as copy

    from ..analysis.api import Study
    from ..analysis.studydata import load_study

    data = load_study(Path(opts.out_dir))
    names, seeds = {v.name for v in opts.spec.select(opts.variants)}, set(opts.seeds)
    keep = lambda variant, seed: variant in names and seed in seeds   # noqa: E731
    m = dict(data.manifest)
    m["spec"] = {**m["spec"], "variants": [v for v in m["spec"]["variants"] if v["name"] in names]}
    m["runs"] = [r for r in m["runs"] if keep(r["variant"], r["seed"])]
    m["seeds"] = sorted(seeds)
    return Study(copy(data, manifest=m, records=[r for r in data.records if keep(r["variant"], r["seed"])],
                      missing=[(a, s) for a, s in data.missing if keep(a.split("@")[0], s)])).deltas


def run_in_rounds(opts, run_study, target: float, max_seeds: int, on_round) -> tuple[object, dict]:
    """Train ``opts``'s seeds (at least two), then one more seed at a time until the rule stops.
    Returns (the last round's outcome, the ``until`` record). ``on_round(outcome)`` prints a round."""
    from ..analysis.sequential import decide

    seeds = starting_seeds(opts.seeds or opts.spec.training.seeds)
    if len(seeds) > max_seeds:   # checked before anything started (checks.check_max_seeds); kept for callers
        raise TricksError(f"--max-seeds {max_seeds} is fewer than the {len(seeds)} seeds the study starts with")
    until = {"halfwidth_points": target, "max_seeds": max_seeds, "rule": "widest 95% half-width of every "
             "comparison's paired delta, in accuracy points; one more seed per round", "rounds": []}
    while True:
        opts = replace(opts, seeds=tuple(seeds), until=until)
        outcome = run_study(opts)
        on_round(outcome)
        if outcome.failed:
            return outcome, until
        decision = decide(planned_deltas(opts), len(seeds), target, max_seeds)
        until["rounds"].append(decision.to_dict())
        _record(Path(opts.out_dir), until)
        width = "undefined" if decision.halfwidth == float("inf") else f"{decision.halfwidth:.2f} points"
        print(f"round {len(until['rounds'])}: {len(seeds)} seeds, widest half-width {width} ({decision.widest})"
              + (f"; stopped: {decision.reason}" if decision.stop else f"; target {target:g}: one more seed"),
              file=sys.stderr)
        if decision.stop:
            until["stopped"] = decision.reason
            _record(Path(opts.out_dir), until)
            return outcome, until
        seeds.append(max(seeds) + 1)


def _record(out_dir: Path, until: dict) -> None:
    from ..running.records import write_json

    path = out_dir / "study.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["until"] = until
    write_json(path, manifest)

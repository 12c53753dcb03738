"""``tricks ablation --until-halfwidth H --max-seeds N``: a study in rounds of one seed until every
comparison is precise (``analysis.sequential``); the rule, each round and the final half-widths go
into ``study.json`` (key ``until``) and the report."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import TricksError


def check(target: float | None, max_seeds: int | None) -> None:
    if target is None:
        if max_seeds is not None:
            raise TricksError("--max-seeds needs --until-halfwidth H (the precision to stop at, in accuracy points)")
        return
    if not target > 0:
        raise TricksError(f"--until-halfwidth must be a positive number of accuracy points, got {target}")
    if max_seeds is None or max_seeds < 2:
        raise TricksError("--until-halfwidth needs --max-seeds N (at least 2): the most seeds to train")


def run_in_rounds(opts, run_study, target: float, max_seeds: int, on_round) -> tuple[object, dict]:
    """Train ``opts``'s seeds (at least two), then one more seed at a time until the rule stops.
    Returns (the last round's outcome, the ``until`` record). ``on_round(outcome)`` prints a round."""
    from ..analysis.api import load_study
    from ..analysis.sequential import decide

    seeds = list(opts.seeds or opts.spec.training.seeds)
    while len(seeds) < 2:
        seeds.append(max(seeds) + 1)
    if len(seeds) > max_seeds:
        raise TricksError(f"--max-seeds {max_seeds} is fewer than the {len(seeds)} seeds the study starts with")
    until = {"halfwidth_points": target, "max_seeds": max_seeds, "rule": "widest 95% half-width of every "
             "comparison's paired delta, in accuracy points; one more seed per round", "rounds": []}
    while True:
        opts = replace(opts, seeds=tuple(seeds), until=until)
        outcome = run_study(opts)
        on_round(outcome)
        if outcome.failed:
            return outcome, until
        decision = decide(load_study(opts.out_dir).deltas, len(seeds), target, max_seeds)
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

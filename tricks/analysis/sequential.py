"""Seeds until the answer is precise: the stopping rule of ``tricks ablation --until-halfwidth``.

A study runs in rounds; after each round every comparison the report makes (``stats.comparisons``)
has a paired 95% t-interval. The study stops when the widest of them has a half-width of at most
``target`` (in accuracy points), or when ``max_seeds`` seeds are reached; otherwise one more seed
(the next seed number, for every variant, so the pairing holds) is trained. A comparison with fewer
than two paired seeds counts as infinitely wide.

The rule looks only at the intervals' widths, never at their position or at a p-value, so it cannot
stop on a lucky difference: the seeds it adds are chosen without looking at which way any delta
goes, and the tests and intervals of the final table keep their nominal error rates (unlike
"run until p < 0.05", which inflates false positives). Pure functions on stored tables: no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

POINTS = 100.0     # accuracy (a fraction) -> points


@dataclass(frozen=True)
class Decision:
    seeds: int                 # seeds every variant has now
    widest: str                # "variant vs against" with the widest interval ("" without comparisons)
    halfwidth: float           # its half-width, in accuracy points (inf: fewer than two paired seeds)
    stop: bool
    reason: str                # "precise", "max_seeds" or "" (go on)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["halfwidth"] = None if math.isinf(self.halfwidth) else round(self.halfwidth, 4)
        return d


def halfwidths(deltas: pd.DataFrame) -> pd.Series:
    """Each comparison's 95% half-width in points, indexed "variant vs against" (inf when undefined)."""
    hw = (deltas["ci_high"] - deltas["ci_low"]) / 2 * POINTS
    hw = hw.where(deltas["n"] >= 2, math.inf).fillna(math.inf)
    return pd.Series(hw.to_numpy(), index=deltas["variant"] + " vs " + deltas["against"])


def decide(deltas: pd.DataFrame, seeds: int, target: float, max_seeds: int) -> Decision:
    """Stop when every half-width is at most ``target`` points, or at ``max_seeds`` seeds."""
    hw = halfwidths(deltas)
    widest, width = (hw.idxmax(), float(hw.max())) if len(hw) else ("", 0.0)
    if width <= target:
        return Decision(seeds, widest, width, True, "precise")
    if seeds >= max_seeds:
        return Decision(seeds, widest, width, True, "max_seeds")
    return Decision(seeds, widest, width, False, "")


def until_line(until: dict | None) -> str:
    """The report's line on a study run in rounds (``study.json``'s ``until``), or ""."""
    if not until or not until.get("rounds"):
        return ""
    last = until["rounds"][-1]
    width = "undefined" if last["halfwidth"] is None else f"{last['halfwidth']:.2f}"
    why = {"precise": "every comparison reached the target", "max_seeds": "the seed limit was reached first"}
    return (f"- seeds added in rounds until every comparison's 95% half-width was at most "
            f"{until['halfwidth_points']:g} accuracy points, at most {until['max_seeds']} seeds: "
            f"{len(until['rounds'])} round(s), {last['seeds']} seeds; the widest half-width was then {width} "
            f"points ({last['widest']}); " + why.get(until.get("stopped", ""), "not finished (interrupted)")
            + " (the rule looks at widths only, never at p-values)")

"""A factorial study's main effects next to the deltas of the same tricks in a cumulative study.

The cumulative study measures each trick once, on top of the tricks added before it (a "step"
delta); a factorial design measures it on and off across many combinations of the others (its
main effect). Where the two disagree, the cumulative step was an order effect or an interaction.
Pure table work over stored results (``effects.csv``, ``deltas.csv``); no torch.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ["factor", "variant", "against", "factorial_effect", "factorial_ci_low", "factorial_ci_high",
           "factorial_verdict", "step_delta", "step_ci_low", "step_ci_high", "step_verdict", "difference",
           "factorial_aliases"]


def effects_vs_steps(effects: pd.DataFrame, deltas: pd.DataFrame,
                     mapping: dict[str, tuple[str, str]], metric: str = "micro_f1") -> pd.DataFrame:
    """One row per factor of ``mapping`` ({factor: (cumulative variant, the variant it is measured
    against)}): the factor's main effect and that step's delta, both in metric units with their
    95% intervals and verdicts, and their difference (main effect minus step delta). The factorial
    interval is the one that decided its verdict (``decided_by``: pooled or per seed). A fractional
    design's main effect is the sum of its alias chain: ``factorial_aliases`` names the other words (its
    three-factor interactions in a resolution-IV design), '' where it stands alone.

    A factor or step missing from the tables is an error naming what is there (a typo in the
    mapping must not quietly drop a row)."""
    main = effects[effects["kind"] == "main"].set_index("term")
    d = deltas[deltas["metric"] == metric] if "metric" in deltas else deltas
    steps = d.set_index(["variant", "against"])
    rows = []
    for factor, (variant, against) in mapping.items():
        if factor not in main.index:
            raise KeyError(f"factor {factor!r} has no main effect; effects.csv has {', '.join(main.index)}")
        if (variant, against) not in steps.index:
            pairs = ", ".join(f"{v} vs {a}" for v, a in steps.index)
            raise KeyError(f"no delta of {variant} vs {against} in deltas.csv; it has {pairs}")
        e, s = main.loc[factor], steps.loc[(variant, against)]
        # the interval that decided the factorial verdict: per seed where that was the stricter one
        per_seed = e.get("decided_by") == "per-seed" and pd.notna(e.get("robust_low"))
        lo, hi = (e["robust_low"], e["robust_high"]) if per_seed else (e["ci_low"], e["ci_high"])
        rows.append({"factor": factor, "variant": variant, "against": against,
                     "factorial_effect": e["effect"], "factorial_ci_low": lo,
                     "factorial_ci_high": hi, "factorial_verdict": e["verdict"],
                     "step_delta": s["delta"], "step_ci_low": s["ci_low"], "step_ci_high": s["ci_high"],
                     "step_verdict": s["verdict"], "difference": e["effect"] - s["delta"],
                     "factorial_aliases": e["aliases"] if isinstance(e.get("aliases"), str) else ""})
    return pd.DataFrame(rows, columns=COLUMNS)

"""Conditional contrasts of a full factorial design: the effect of one factor with one or two others held
at a level ("conv dropout with Kaiming init on", "Kaiming init on raw inputs at a constant LR"), each with
a per-seed interval. Exploratory: not in any Holm family (``family`` = "exploratory"); a reader picks the
one that matters after seeing the interactions, so none of them is a test. No torch.

A contrast of factor f given levels L of the factors G (``given``, e.g. {"kaiming": True}) is, within one
seed, the mean metric of the variants with f on and G at L minus that with f off and G at L, the other
factors averaged over their levels (equal weights: a full factorial has every combination once). Over the
seeds that ran every variant of the design (complete seeds, as for ``effects``' per-seed interval): the
mean of those per-seed contrasts, a one-sample Student-t interval and t-test (n_seeds - 1 degrees of
freedom, scipy). In -1/+1 coding it is the sum of f's effect and its interactions with G, signed by L.

Only for a full factorial (``design["kind"] == "factorial"``): in a fractional design a level of another
factor also fixes the product of its alias partners, so the contrast is not the effect it is named for;
``conditional_table`` returns no rows. The table (``TABLE``, conditional.csv)
holds every factor given each level of every other factor, then given each pair of levels of two others.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

from .effects import coded, complete_seeds
from .stats import interval

TABLE = "conditional.csv"
FAMILY = "exploratory"        # not adjusted: the family column says so
COLUMNS = ["factor", "given", "depth", "effect", "ci_low", "ci_high", "p", "seeds", "family", "family_size", "note"]


def said(given: dict[str, bool]) -> str:
    """'kaiming on, norm off' (in the given order)."""
    return ", ".join(f"{g} {'on' if on else 'off'}" for g, on in given.items())


def conditional(runs: pd.DataFrame, design: dict, factor: str, given: dict[str, bool], metric: str = "micro_f1",
                confidence: float = 0.95) -> dict:
    """One row of ``COLUMNS``: the contrast of ``factor`` with the factors of ``given`` at its levels."""
    from scipy import stats as sps

    names, rows = coded(design)
    unknown = [f for f in (factor, *given) if f not in names]
    if unknown or factor in given:
        raise KeyError(f"not a factor of this design, or the contrasted factor held fixed: {unknown or [factor]}; "
                       f"factors: {', '.join(names)}")
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)]
    fi = names.index(factor)
    match = {v for v, x in rows.items() if all((x[names.index(g)] > 0) == on for g, on in given.items())}
    on = {v for v in match if rows[v][fi] > 0}
    per = []
    for s in complete_seeds(ok, rows):
        g = ok[(ok["seed"] == s) & ok["variant"].isin(match)]
        hi = g["variant"].isin(on).to_numpy()
        per.append(g[metric].to_numpy(dtype=float)[hi].mean() - g[metric].to_numpy(dtype=float)[~hi].mean())
    iv = interval(per, confidence)
    p = math.nan
    if iv["n"] >= 2:
        p = (0.0 if iv["mean"] != 0 else 1.0) if iv["std"] == 0 else float(sps.ttest_1samp(per, 0.0).pvalue)
    return {"factor": factor, "given": said(given), "depth": len(given), "effect": iv["mean"],
            "ci_low": float(iv["ci_low"]), "ci_high": float(iv["ci_high"]), "p": p, "seeds": iv["n"], "family": FAMILY,
            "family_size": math.nan, "note": iv["note"]}


def conditional_table(runs: pd.DataFrame, design: dict, depth: int = 2, metric: str = "micro_f1",
                      confidence: float = 0.95) -> pd.DataFrame:
    """conditional.csv: for each factor (design order), its contrast given each level of each other factor,
    then (``depth`` 2) given each combination of levels of each pair of others. A fractional design: no rows
    (its conditional contrasts are aliased, see the module docstring)."""
    names, _ = coded(design)
    if design["kind"] != "factorial":
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for d in range(1, min(depth, len(names) - 1) + 1):
        for f in names:
            for held in itertools.combinations([g for g in names if g != f], d):
                for levels in itertools.product((False, True), repeat=d):
                    out.append(conditional(runs, design, f, dict(zip(held, levels)), metric, confidence))
    return pd.DataFrame(out, columns=COLUMNS)


def conditional_findings(table: pd.DataFrame, factor: str, given: str) -> str:
    """'conv_dropout with kaiming on +1.10 pts [+0.50, +1.70], off -0.80 pts [-1.69, +0.07] (per-seed 95%
    intervals, exploratory)' from the ``conditional_table`` rows of ``factor`` given one level of ``given``."""
    rows = table[(table["factor"] == factor) & (table["depth"] == 1)].set_index("given")
    parts = []
    for level in ("on", "off"):
        if f"{given} {level}" not in rows.index:
            continue
        r = rows.loc[f"{given} {level}"]
        ci = (f" [{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}]" if math.isfinite(r["ci_low"])
              else " (no interval)")
        parts.append(f"{level} {100 * r['effect']:+.2f} pts{ci}")
    return f"{factor} with {given} " + ", ".join(parts) + " (per-seed 95% intervals, exploratory)"

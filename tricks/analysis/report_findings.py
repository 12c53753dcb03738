"""The Findings of REPORT.md: sentences generated from the delta and effects tables, none written by hand."""

from __future__ import annotations

import math

import pandas as pd

from .stats import IMPROVEMENT, NOISE, REGRESSION, UNDECIDED
from .studydata import StudyData


def pct(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def fmt_p(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def effect_findings(effects: pd.DataFrame | None) -> list[str]:
    """Sentences generated from the effects table of a factorial or fractional design."""
    from .effects import NOT_ESTIMABLE

    if effects is None or not len(effects):
        return []
    if (effects["verdict"] == NOT_ESTIMABLE).all():
        return ["Effects: not estimable yet; the finished runs do not cover the design (see Missing runs)."]

    def items(rows: pd.DataFrame) -> str:
        return "; ".join(f"**{r.term}** {pct(r.effect, True)} pts [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}]"
                         + (f" (aliased with `{r.aliases}`)" if r.aliases else "") for r in rows.itertuples())

    out = []
    for kind, label in (("main", "Main effects"), ("interaction", "Two-factor interactions")):
        rows = effects[effects["kind"] == kind]
        beyond = rows[rows["verdict"].isin([IMPROVEMENT, REGRESSION])].sort_values("effect", ascending=False)
        noise = rows[rows["verdict"] == NOISE]
        if len(beyond):
            out.append(f"{label} beyond seed noise (Holm over the {len(effects)} effects): {items(beyond)}.")
        if len(noise):
            out.append(f"{label} within noise: " + ", ".join(f"{r.term} ({pct(r.effect, True)} pts)"
                                                             for r in noise.itertuples()) + ".")
    return out


def findings(data: StudyData, summary: pd.DataFrame, deltas: pd.DataFrame) -> list[str]:
    """Sentences generated from the delta table; no claim here is written by hand."""
    out = []
    n_seeds = len(data.manifest["seeds"])
    vb = deltas[deltas["kind"] == "vs_baseline"]
    for label, verdict in (("Helped beyond seed noise", IMPROVEMENT), ("Hurt beyond seed noise", REGRESSION)):
        rows = vb[vb["verdict"] == verdict]
        if len(rows):
            items = "; ".join(f"**{r.variant}** {pct(r.delta, True)} pts [{pct(r.ci_low, True)}, "
                              f"{pct(r.ci_high, True)}]" for r in rows.itertuples())
            out.append(f"{label} (micro-F1 vs {data.reference}, 95% CI): {items}.")
    noise = vb[vb["verdict"] == NOISE]
    if len(noise):
        out.append(f"Within noise vs {data.reference} (Holm-adjusted p >= 0.05): "
                   + ", ".join(f"{r.variant} ({pct(r.delta, True)} pts)" for r in noise.itertuples()) + ".")
    mde = deltas["mde"].dropna() if "mde" in deltas else []
    if len(mde):
        need = deltas["seeds_for_target"].dropna()
        out.append(f"What these seeds could detect (80% power, two-sided 5%): effects of {pct(mde.min())} to "
                   f"{pct(mde.max())} points, depending on the comparison's spread; a 0.5-point effect would need "
                   f"{int(need.min())} to {int(need.max())} paired seeds. \"Within noise\" is not \"no effect\": "
                   "smaller effects than these are invisible here." if len(need) else
                   f"What these seeds could detect (80% power): {pct(mde.min())} to {pct(mde.max())} points.")
    undecided = vb[vb["verdict"] == UNDECIDED]
    if len(undecided):
        out.append("Not decidable with fewer than 2 paired seeds: " + ", ".join(undecided["variant"]) + ".")
    dead = summary[(summary["runs_ok"] == 0) & (summary["runs_diverged"] > 0)]
    if len(dead):   # no score at all: more seeds of the same settings would not decide anything
        out.append("Diverged in every seed, so there is no score to compare (see Diverged runs): "
                   + ", ".join(f"**{r.variant}** (all {r.runs_diverged} seeds)" for r in dead.itertuples()) + ".")
    steps = deltas[deltas["kind"] == "vs_base"]
    if len(steps):
        parts = [f"{r.variant} over {r.against}: {pct(r.delta, True)} pts ({r.verdict})" for r in steps.itertuples()]
        out.append("Each cumulative step against the variant it builds on: " + "; ".join(parts) + ".")
    ok = summary.dropna(subset=["micro_f1_mean"])
    if len(ok):
        best = ok.loc[ok["micro_f1_mean"].idxmax()]
        out.append(f"Highest mean micro-F1: **{best['variant']}** at {pct(best['micro_f1_mean'])}% "
                   f"over {int(best['runs_ok'])} seed(s).")
    if n_seeds < 3:
        out.append(f"Only {n_seeds} seed(s) were run: intervals are wide or absent; run more seeds "
                   "(`--seeds 0,1,2,3,4`) before drawing conclusions.")
    return out

"""The Findings of REPORT.md: sentences generated from the delta and effects tables, none written by hand."""

from __future__ import annotations

import math

import pandas as pd

from .effects import NOT_ESTIMABLE, PER_SEED, POOLED
from .stats import IMPROVEMENT, NOISE, REGRESSION, UNDECIDED
from .studydata import StudyData


def pct(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def fmt_p(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def chain(row) -> str:
    """A term and the terms aliased with it, as one chain ``a*b = c*d``: the design measures only their sum."""
    aliases = getattr(row, "aliases", "")
    return f"{row.term} = {aliases}" if isinstance(aliases, str) and aliases else row.term


def chain_factors(name: str) -> set[str]:
    return {f for term in name.split(" = ") for f in term.split("*")}


def bounds(row) -> tuple[float, float, str]:
    """The interval that decided the verdict (see ``effects``) and its name."""
    if getattr(row, "decided_by", POOLED) == PER_SEED and math.isfinite(getattr(row, "robust_low", math.nan)):
        return row.robust_low, row.robust_high, PER_SEED
    return row.ci_low, row.ci_high, POOLED


def deciding_interval(row) -> str:
    """The deciding interval in points, e.g. ``[+1.72, +4.00] per-seed``."""
    low, high, name = bounds(row)
    return f"[{pct(low, True)}, {pct(high, True)}] {name}"


def covers_zero(row) -> bool:
    low, high, _ = bounds(row)
    return bool(low <= 0 <= high)


def effect_findings(effects: pd.DataFrame | None) -> list[str]:
    """Sentences generated from the effects table of a factorial or fractional design. A term aliased
    with others is named as its whole chain (``a*b = c*d``), never as one pair, and no effect of one
    factor at a level of another is derived from it. A factor whose main effect is within noise but that
    appears in a significant chain is named with that chain; "no detectable effect" is said of a factor
    only when its main effect and every chain it appears in are within noise, each deciding interval
    covering zero."""
    if effects is None or not len(effects):
        return []
    if (effects["verdict"] == NOT_ESTIMABLE).all():
        return ["Effects: not estimable yet; the finished runs do not cover the design (see Missing runs)."]
    t = effects.assign(chain=[chain(r) for r in effects.itertuples()])
    n = len(t)
    out = []
    if "robust_p" in t:
        seeds = t["robust_seeds"].max()
        per_seed = int((t["decided_by"] == PER_SEED).sum())
        out.append(f"Effect verdicts: each effect's deciding p is the larger of its pooled least-squares p (error "
                   f"pooled over all terms and seeds) and its per-seed p (a t-test over its estimates in the "
                   f"{int(seeds) if seeds == seeds else 0} seeds that ran the whole design: its own seed-to-seed "
                   f"spread as its error), Holm-adjusted over the {n} effects; the per-seed p "
                   f"decided {per_seed} of the {n}. Each interval below is the deciding one (95%, not adjusted).")
    beyond = t[t["verdict"].isin([IMPROVEMENT, REGRESSION])]
    significant = [r.chain for r in beyond.itertuples()]
    higher = [k for k in dict.fromkeys(t["kind"]) if k not in ("main", "interaction")]
    for kind, label in (("main", "Main effects"), ("interaction", "Two-factor interactions"),
                        *((k, k[0].upper() + k[1:] + "s") for k in higher)):
        rows = t[t["kind"] == kind]
        hits = beyond[beyond["kind"] == kind].sort_values("effect", ascending=False)
        noise = rows[rows["verdict"] == NOISE]
        if len(hits):
            out.append(f"{label} beyond seed noise: " + "; ".join(
                f"**{r.chain}** {pct(r.effect, True)} pts {deciding_interval(r)}" for r in hits.itertuples()) + ".")
        if len(noise):
            out.append(f"{label} within noise: " + ", ".join(
                f"{r.chain} ({pct(r.effect, True)} pts {deciding_interval(r)})" for r in noise.itertuples()) + ".")
    if any(" = " in c for c in significant):
        out.append("A chain `x = y` is one estimate of the sum of effects this design cannot tell apart: it is "
                   "not attributed to any one of them, and no effect of one factor at a level of another "
                   "follows from it.")
    main = t[t["kind"] == "main"]
    for r in main[main["verdict"] == NOISE].itertuples():
        chains = [c for c in significant if r.term in chain_factors(c)]
        if chains:   # a term without aliases (a full factorial's) is an interaction, not a chain
            kind = "chain" if any("=" in c for c in chains) else "interaction"
            out.append(f"{r.term}: no detectable main effect; appears in the significant {kind}"
                       f"{'s' if len(chains) > 1 else ''} " + " and ".join(f"`{c}`" for c in chains) + ".")
    quiet = [r.term for r in main.itertuples()     # the only "nothing detectable" claim made: strict
             if all(c.verdict == NOISE and covers_zero(c) for c in t.itertuples() if r.term in chain_factors(c.chain))]
    if quiet:
        out.append("No detectable effect as a main effect or in any two-factor chain this design estimates (each "
                   "within noise, its interval covering zero even before Holm): " + ", ".join(quiet) + ".")
    undecided = t[t["verdict"] == UNDECIDED]
    if len(undecided):
        out.append("No verdict (fewer than 2 seeds ran the whole design, so there is no per-seed interval): "
                   + ", ".join(undecided["chain"]) + ".")
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


def effects_section(e: pd.DataFrame, table) -> list[str]:
    """The report's effects table: pooled and per-seed intervals side by side, and which decided."""
    has_robust = "robust_low" in e
    cols = {"term": e["term"], "kind": e["kind"], "effect pts": e["effect"].map(lambda x: pct(x, True)),
            "pooled 95% CI": [f"[{pct(a, True)}, {pct(b, True)}]" for a, b in zip(e["ci_low"], e["ci_high"])],
            "pooled p": e["p"].map(fmt_p)}
    if has_robust:
        cols.update({"per-seed 95% CI": [f"[{pct(a, True)}, {pct(b, True)}]" for a, b in
                                         zip(e["robust_low"], e["robust_high"])],
                     "per-seed p": e["robust_p"].map(fmt_p), "decided by": e["decided_by"]})
    cols.update({"Holm p": e["p_holm"].map(fmt_p), "verdict": e["verdict"],
                 "aliased with": e["aliases"].map(lambda a: f"`{a}`" if a else "")})
    return ["## Effects (least squares, seed as a block; and per seed)", "",
            "Each effect is the change in micro-F1 from the factor's off to its on level, averaged over the "
            "design; an interaction a*b is half the difference between a's effect with b on and with b off. "
            "Pooled: one error for every term, pooled over the terms and seeds. Per-seed: the effect estimated "
            "in each seed that ran the whole design, with its own seed-to-seed spread as its error (n - 1 "
            "degrees of freedom). Verdicts: Holm-adjusted over the effects below, each on the larger (more "
            "conservative) of its pooled and per-seed p. Terms a fractional design cannot tell apart are "
            "estimated once and their aliases named.", "", table(pd.DataFrame(cols)), ""]

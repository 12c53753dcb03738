"""Seed statistics as pure functions over numpy arrays and pandas tables (no torch, no plotting).

- ``interval``: mean, sample std and a two-sided Student-t confidence interval of one metric
  across seeds. With fewer than 2 seeds there is no interval (NaN, and ``note`` says why).
- ``paired``: paired differences (seeds are shared, so seed k of A is compared with seed k of B):
  mean delta, t-interval, paired t-test p-value, and the exact sign-flip permutation p-value
  (all 2^n sign assignments; for n seeds its smallest possible value is 2 / 2^n).
- The verdict of a comparison: ``improvement`` / ``regression`` when its paired t-test p-value,
  Holm-adjusted over the family of comparisons one report makes (statsmodels' ``multipletests``),
  is below 0.05, otherwise ``within noise`` (deltas.csv: ``family``, ``family_size``); intervals per comparison.
- Power (statsmodels' ``TTestPower``): the minimum detectable effect of each comparison at 80%
  power (two-sided, alpha 0.05) from its paired spread and n (``mde``), the same at Holm's strictest
  step alpha / m (``mde_holm``: found beyond noise with >= 80% power whatever the other p-values),
  and the seeds that would detect a 0.5-point effect. "Within noise" is not "no effect".
- Probability of improvement: the share of paired seeds where the variant beats the one it is
  compared with (a tie counts half).
- ``wilson_interval``: the Wilson 95% interval of an accuracy measured on N test images, the
  test set's own binomial sampling uncertainty, which no number of seeds reduces.
- A variant whose every finished run diverged (non-finite training loss) has no score: its summary
  note and the verdict of each comparison it is part of say ``diverged (all N seeds)``.
- Intervals of a bounded metric (accuracy and F1 in [0, 1], deltas in [-1, 1]) are clipped to its
  range: a t-interval from 2 seeds can otherwise run past 100%.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 0.05            # family-wise error rate of one report's comparisons (Holm)
POWER = 0.80            # power at which the minimum detectable effect is quoted
TARGET_EFFECT = 0.005   # accuracy (0.5 points): the effect size whose required seeds are quoted
IMPROVEMENT, REGRESSION, NOISE, UNDECIDED = "improvement", "regression", "within noise", "too few seeds"
DIVERGED = "diverged (all {n} seeds)"   # every finished run diverged: no score, "too few seeds" would mislead
FAMILY = "comparisons"   # deltas.csv's Holm family (column ``family``): every row with a t-test p
EXACT_SIGN_FLIP_MAX_N = 16   # 2^16 sign patterns; beyond that a seeded Monte-Carlo draw of 100,000


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and is not counted in the family)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out


def detectable(n: int, std: float, alpha: float = ALPHA) -> float:
    """The effect (metric units) a two-sided paired t-test at level ``alpha`` with ``n`` pairs of spread
    ``std`` detects with ``POWER`` (NaN where it cannot be computed): brentq on ``TTestPower.power``, as
    solve_power gives wrong roots (5.5 sds, not 11.8, for 3 pairs at 0.05 / 13) where scipy's noncentral
    t is NaN far in the wrong tail; that tail (below alpha / 2) then counts as 0."""
    from scipy.optimize import brentq
    from statsmodels.stats.power import TTestPower

    if n < 2 or not math.isfinite(std):
        return math.nan
    if std == 0:
        return 0.0

    def short(d: float) -> float:   # two-sided power at effect d (in sds) minus POWER
        up, down = (TTestPower().power(effect_size=d, nobs=n, alpha=alpha / 2, alternative=side)
                    for side in ("larger", "smaller"))
        return float(up) + (float(down) if math.isfinite(down) else 0.0) - POWER

    high = 1.0
    while short(high) < 0:
        high *= 2
    return brentq(short, 0.0, high, xtol=1e-12) * std


def power(n: int, std: float, target: float = TARGET_EFFECT) -> dict:
    """Minimum detectable effect (metric units) of a paired t-test with ``n`` pairs of spread ``std``
    at ``POWER``, and the pairs needed to detect ``target``. NaN where it cannot be computed."""
    from statsmodels.stats.power import TTestPower

    out = {"mde": math.nan, "seeds_for_target": math.nan}
    if n < 2 or not math.isfinite(std):
        return out
    if std == 0:
        return {"mde": 0.0, "seeds_for_target": 2}
    out["mde"] = detectable(n, std)
    try:
        need = TTestPower().solve_power(effect_size=target / std, nobs=None, alpha=ALPHA, power=POWER,
                                  alternative="two-sided")
        out["seeds_for_target"] = max(2, math.ceil(float(np.asarray(need).item())))
    except (ValueError, RuntimeError):   # the solver's bracket failed (a vanishing or huge effect)
        pass
    return out


def prob_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """Share of pairs where a > b (ties count half)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0:
        return math.nan
    return float(np.mean((a > b) + 0.5 * (a == b)))


def wilson_interval(accuracy: float, images: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson interval (statsmodels' ``proportion_confint``) of an accuracy measured on ``images`` test
    images: how far the same model's accuracy on another test set of that size may lie."""
    from statsmodels.stats.proportion import proportion_confint

    if not images or not math.isfinite(accuracy):
        return math.nan, math.nan
    return tuple(map(float, proportion_confint(accuracy * images, images, alpha=1 - confidence, method="wilson")))


def clip(low: float, high: float, lo: float, hi: float) -> tuple[float, float]:
    """An interval clipped to the range [lo, hi] of a bounded metric (NaN stays NaN)."""
    return (min(max(low, lo), hi) if math.isfinite(low) else low, max(min(high, hi), lo) if math.isfinite(high) else high)


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    out = {"n": n, "mean": float(x.mean()) if n else math.nan, "std": float(x.std(ddof=1)) if n > 1 else math.nan,
           "ci_low": math.nan, "ci_high": math.nan, "note": ""}
    if n < 2:
        out["note"] = f"{n} seed(s): no interval"
        return out
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * out["std"] / math.sqrt(n)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out


def sign_flip_p(diffs: Sequence[float]) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips (exact for n <= 16)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    observed = abs(d.mean())
    if n <= EXACT_SIGN_FLIP_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(100_000, n))
    means = np.abs(signs @ d / n)
    return float(np.mean(means >= observed - 1e-12))


NO_PAIRS = {"n": 0, "delta": math.nan, "delta_std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
            "t_p": math.nan, "sign_flip_p": math.nan, "verdict": UNDECIDED}   # paired() with no seeds in common


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Statistics of ``a - b`` for values paired by position (same seed)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need the same length, got {a.shape} and {b.shape}")
    d = a - b
    iv = interval(d, confidence)
    out = {"n": iv["n"], "delta": iv["mean"], "delta_std": iv["std"], "ci_low": iv["ci_low"],
           "ci_high": iv["ci_high"], "t_p": math.nan, "sign_flip_p": sign_flip_p(d) if len(d) else math.nan}
    if iv["n"] >= 2:
        if iv["std"] == 0:
            out["t_p"] = 0.0 if iv["mean"] != 0 else 1.0
        else:
            out["t_p"] = float(sps.ttest_rel(a, b).pvalue)
    out["verdict"] = verdict(out["ci_low"], out["ci_high"], iv["n"])
    return out


def verdict(ci_low: float, ci_high: float, n: int) -> str:
    if n < 2 or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return UNDECIDED
    if ci_low > 0:
        return IMPROVEMENT
    if ci_high < 0:
        return REGRESSION
    return NOISE


# ---------------------------------------------------------------------------------------------
# tables

def summarize(runs: pd.DataFrame, order: Sequence[str], metric: str = "micro_f1") -> pd.DataFrame:
    """One row per variant (in ``order``): counts by status and the seed statistics of ``metric``.

    ``runs`` has columns variant, seed, status and the metric columns (runs.csv).
    """
    rows = []
    for v in order:
        sub = runs[runs["variant"] == v]
        ok = sub[sub["status"] == "ok"]
        iv = interval(ok[metric].to_numpy())
        if dead := all_diverged(runs, v):   # no score: not a matter of too few seeds
            iv["note"] = DIVERGED.format(n=dead)
        iv["ci_low"], iv["ci_high"] = clip(iv["ci_low"], iv["ci_high"], 0.0, 1.0)   # a score lives in [0, 1]
        rows.append({"variant": v, "runs_ok": len(ok), "runs_diverged": int((sub["status"] == "diverged").sum()),
                     f"{metric}_mean": iv["mean"], f"{metric}_std": iv["std"],
                     f"{metric}_ci_low": iv["ci_low"], f"{metric}_ci_high": iv["ci_high"],
                     "macro_f1_mean": float(ok["macro_f1"].mean()) if len(ok) else math.nan,
                     "accuracy_mean": float(ok["accuracy"].mean()) if len(ok) else math.nan,
                     "seeds": ",".join(str(s) for s in sorted(ok["seed"])), "note": iv["note"]})
    return pd.DataFrame(rows)


def comparisons(variants: Iterable[dict], reference: str) -> list[tuple[str, str, str]]:
    """(variant, against, kind): every variant against ``reference``, and against its ``base``
    where that is another variant (the cumulative study's step-by-step deltas)."""
    out = []
    for v in variants:
        if v["name"] == reference:
            continue
        out.append((v["name"], reference, "vs_baseline"))
        if v.get("base") and v["base"] != reference:
            out.append((v["name"], v["base"], "vs_base"))
    return out


def delta_table(runs: pd.DataFrame, pairs: Iterable[tuple[str, str, str]], metric: str = "micro_f1") -> pd.DataFrame:
    """One row per comparison: paired on the seeds where both variants finished with status ok."""
    ok = runs[runs["status"] == "ok"]
    rows = []
    for variant, against, kind in pairs:
        a = ok[ok["variant"] == variant].set_index("seed")[metric]
        b = ok[ok["variant"] == against].set_index("seed")[metric]
        seeds = sorted(set(a.index) & set(b.index))
        pa, pb = a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()
        st = paired(pa, pb) if seeds else dict(NO_PAIRS)
        st["ci_low"], st["ci_high"] = clip(st["ci_low"], st["ci_high"], -1.0, 1.0)
        rows.append({"variant": variant, "against": against, "kind": kind, "metric": metric,
                     "seeds": ",".join(map(str, seeds)), **st, **power(st["n"], st["delta_std"]),
                     "p_improve": prob_improvement(pa, pb)})
    table = pd.DataFrame(rows, columns=DELTA_COLUMNS)
    table["p_holm"] = holm(table["t_p"].to_numpy()) if len(table) else []
    m = int(np.isfinite(table["t_p"].to_numpy(dtype=float)).sum())   # the m that Holm adjusts over
    table["family"], table["family_size"] = FAMILY, m
    table["mde_holm"] = [detectable(n, sd, ALPHA / max(1, m)) for n, sd in zip(table["n"], table["delta_std"])]
    table["verdict"] = [diverged_verdict(runs, v, a) or holm_verdict(d, p, n)
                        for v, a, d, p, n in zip(table["variant"], table["against"], table["delta"],
                                                 table["p_holm"], table["n"])]
    return table[DELTA_COLUMNS]


def all_diverged(runs: pd.DataFrame, variant: str) -> int:
    """How many runs of ``variant`` diverged, when every one of its finished runs did (else 0)."""
    status = runs.loc[runs["variant"] == variant, "status"]
    return len(status) if len(status) and (status == "diverged").all() else 0


def diverged_verdict(runs: pd.DataFrame, variant: str, against: str) -> str:
    """The verdict of a comparison one of whose sides diverged in every seed ('' when neither did)."""
    if dead := all_diverged(runs, variant):
        return DIVERGED.format(n=dead)
    if dead := all_diverged(runs, against):
        return f"{against} " + DIVERGED.format(n=dead)
    return ""


DELTA_COLUMNS = ["variant", "against", "kind", "metric", "seeds", "n", "delta", "delta_std", "ci_low", "ci_high",
                 "t_p", "sign_flip_p", "mde", "mde_holm", "seeds_for_target", "p_improve", "p_holm", "verdict", "family", "family_size"]


def holm_verdict(delta: float, p_holm: float, n: int) -> str:
    """improvement / regression when the Holm-adjusted p is below ALPHA, by the sign of the delta."""
    if n < 2 or not math.isfinite(p_holm):
        return UNDECIDED
    if p_holm < ALPHA:
        return IMPROVEMENT if delta > 0 else REGRESSION
    return NOISE


def between_studies(runs_a: pd.DataFrame, runs_b: pd.DataFrame, order: Sequence[str],
                    metric: str = "micro_f1") -> tuple[pd.DataFrame, dict]:
    """Study B minus study A for the same variants (e.g. bf16 vs fp32, a new engine vs the old one).

    Per variant: each study's mean and interval over its own finished seeds, and B - A paired on
    the seeds both finished (a seed gives the same init and data order in both). ``overall`` pairs
    every (variant, seed) at once; those pairs share seeds across variants, so read its interval
    as a summary, not as an independent-sample test.
    """
    ok_a, ok_b = runs_a[runs_a["status"] == "ok"], runs_b[runs_b["status"] == "ok"]
    rows, all_a, all_b = [], [], []
    for v in order:
        a = ok_a[ok_a["variant"] == v].set_index("seed")[metric]
        b = ok_b[ok_b["variant"] == v].set_index("seed")[metric]
        seeds = sorted(set(a.index) & set(b.index))
        ia, ib = interval(a.to_numpy()), interval(b.to_numpy())
        pa, pb = a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()
        st = paired(pb, pa) if seeds else dict(NO_PAIRS)
        rows.append({"variant": v, "n_a": ia["n"], "mean_a": ia["mean"], "ci_low_a": ia["ci_low"],
                     "ci_high_a": ia["ci_high"], "n_b": ib["n"], "mean_b": ib["mean"], "ci_low_b": ib["ci_low"],
                     "ci_high_b": ib["ci_high"], "seeds": ",".join(map(str, seeds)), **st})
        all_a += list(pa)
        all_b += list(pb)
    overall = paired(all_b, all_a) if all_a else dict(NO_PAIRS)
    return pd.DataFrame(rows), overall

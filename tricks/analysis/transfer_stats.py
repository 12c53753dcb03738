"""The pooled row of transfer.csv, per trick: the heterogeneity test from the per-seed deltas, the
exploratory unweighted mean over the workloads with its Hartung-Knapp t-interval, and a secondary
inverse-variance random-effects estimate (see ``transfer``'s docstring). Pure functions over arrays and
small tables; no torch.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from .stats import interval

EXPLORATORY = "exploratory"            # the family and verdict of a pooled row: not adjusted, no verdict
HETEROGENEITY = "heterogeneity"        # the Holm family of the heterogeneity tests, one per trick
METHOD = "unweighted mean, Hartung-Knapp t on k - 1 df (exploratory)"
WELCH, EQUAL_F = "Welch ANOVA", "equal-variance F"    # values of ``het_method``
RE_METHOD = "pm"                       # the secondary estimate: statsmodels' Paule-Mandel tau^2
POOLED_COLUMNS = ["k", "weight", "het_f", "het_df1", "het_df2", "het_p", "het_p_holm", "het_family",
                  "het_family_size", "het_method", "het_p_equal", "fixed_ci_low", "fixed_ci_high", "fixed_df", "re_delta", "re_ci_low",
                  "re_ci_high", "weight_re", "tau2", "i2", "method", "note"]


def heterogeneity(groups: Sequence[Sequence[float]]) -> dict:
    """Do the mean paired deltas differ between workloads? ``groups``: each workload's per-seed deltas
    (trick minus reference, paired by seed), over the workloads with at least one finite delta.

    ``het_p``: Welch's one-way ANOVA (statsmodels' ``anova_oneway``, ``use_var="unequal"``; F on k - 1 and
    Welch's df), which lets each workload's seed spread be its own: networks differ in it (a BN ResNet's
    final accuracy at a constant LR swings far more between seeds than the small CNN's), and the equal-
    variance F rejects a true null up to twice as often as it should then (``tests/
    test_transfer_heterogeneity.py``). It needs 2 or more seeds and some spread on every workload; else
    ``het_p`` is the equal-variance F's. ``het_p_equal``: the equal-variance F-test on (k - 1, N - k) df, the
    variant x workload interaction of the two-way model with a block per (workload, seed) pair, fitted to
    both arms' scores. ``het_method`` names the test behind ``het_p``. NaN where k < 2 or N - k < 1; with no
    spread within any workload, p is 0 when the means differ, else 1."""
    from statsmodels.stats.oneway import anova_oneway

    g = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=float) for x in groups)]
    g = [a for a in g if len(a)]
    k, n = len(g), sum(len(a) for a in g)
    out = {"het_f": math.nan, "het_df1": k - 1, "het_df2": n - k, "het_p": math.nan, "het_p_equal": math.nan,
           "het_method": ""}
    if k < 2 or n - k < 1:
        return out
    if sum(((a - a.mean()) ** 2).sum() for a in g) == 0:
        same = all(a.mean() == g[0].mean() for a in g)
        out.update(het_f=0.0 if same else math.inf, het_p=1.0 if same else 0.0, het_p_equal=1.0 if same else 0.0,
                   het_method=EQUAL_F)
        return out
    with warnings.catch_warnings():   # a workload with one seed: statsmodels takes its variance (NaN, unused)
        warnings.simplefilter("ignore", RuntimeWarning)
        equal = anova_oneway(g, use_var="equal")
    out.update(het_f=float(equal.statistic), het_p=float(equal.pvalue), het_p_equal=float(equal.pvalue),
               het_method=EQUAL_F)
    if all(len(a) >= 2 and a.var() > 0 for a in g):
        welch = anova_oneway(g, use_var="unequal")
        out.update(het_f=float(welch.statistic), het_df2=float(welch.df[1]), het_p=float(welch.pvalue),
                   het_method=WELCH)
    return out


def unweighted(deltas: Sequence[float], confidence: float = 0.95) -> dict:
    """The mean of the workloads' deltas, each weighing the same, with the Hartung-Knapp interval: with
    equal weights its variance is sum (d_i - mean)^2 / (k (k - 1)), so it is the one-sample t-interval over
    the k deltas (k - 1 df); ``t_p`` its t-test of a zero mean. Exploratory: k is the few workloads run."""
    from scipy import stats as sps

    d = np.asarray(deltas, dtype=float)
    d = d[np.isfinite(d)]
    iv = interval(d, confidence)
    p = math.nan
    if iv["n"] >= 2:
        p = (0.0 if iv["mean"] != 0 else 1.0) if iv["std"] == 0 else float(sps.ttest_1samp(d, 0.0).pvalue)
    return {"delta": iv["mean"], "ci_low": iv["ci_low"], "ci_high": iv["ci_high"], "t_p": p, "k": iv["n"]}


def fixed_set(per_seed: Sequence[Sequence[float]], confidence: float = 0.95) -> dict:
    """The unweighted mean's interval for *these* workloads (no population of workloads behind them): its
    variance sum(s_i^2 / n_i) / k^2 from each workload's per-seed deltas, a t with Welch-Satterthwaite df.
    Secondary, like the random-effects column. NaN unless every workload has 2 or more paired seeds."""
    from scipy import stats as sps

    g = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=float) for x in per_seed)]
    out = {"fixed_ci_low": math.nan, "fixed_ci_high": math.nan, "fixed_df": math.nan}
    if len(g) < 2 or any(len(a) < 2 for a in g):
        return out
    v = np.array([a.var(ddof=1) / len(a) for a in g])
    if v.sum() == 0:
        return out
    df = v.sum() ** 2 / sum(x * x / (len(a) - 1) for x, a in zip(v, g))
    mean, half = np.mean([a.mean() for a in g]), sps.t.ppf(0.5 + confidence / 2, df) * math.sqrt(v.sum()) / len(g)
    return {"fixed_ci_low": float(mean - half), "fixed_ci_high": float(mean + half), "fixed_df": float(df)}


def random_effects(rows: pd.DataFrame, confidence: float = 0.95) -> dict:
    """The secondary column: ``combine_effects(..., method_re=RE_METHOD)`` over the workloads with a finite
    delta and a finite, positive variance (``delta``, ``variance``, ``workload``), its random-effects mean
    with the Hartung-Knapp interval (t on k - 1 df), tau^2, I^2 and each workload's relative weight."""
    from statsmodels.stats.meta_analysis import combine_effects

    d, v = rows["delta"].to_numpy(dtype=float), rows["variance"].to_numpy(dtype=float)
    ok = np.isfinite(d) & np.isfinite(v) & (v > 0)
    out = {"re_delta": math.nan, "re_ci_low": math.nan, "re_ci_high": math.nan, "tau2": math.nan, "i2": math.nan,
           "weights": {}}
    if ok.sum() < 2:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):   # I^2 is -inf where Q = 0: clipped to 0 below
        res = combine_effects(d[ok], v[ok], method_re=RE_METHOD, row_names=list(rows.loc[ok, "workload"]))
        hk = res.conf_int(alpha=1 - confidence, use_t=True)[3]
        i2 = float(res.i2)
    out.update(re_delta=float(res.mean_effect_re), re_ci_low=float(hk[0]), re_ci_high=float(hk[1]),
               tau2=float(res.tau2), i2=math.nan if math.isnan(i2) else max(0.0, i2),
               weights=dict(zip(rows.loc[ok, "workload"], map(float, res.weights_rel_re))))
    return out


def pool(rows: pd.DataFrame, per_seed: Sequence[Sequence[float]] | None = None) -> dict:
    """The pooled row of one trick from its per-workload rows (``workload``, ``delta``, ``variance``) and,
    for the heterogeneity test, each workload's per-seed deltas (``per_seed``, in the rows' order; None:
    no test). ``weights``: each workload's weight in the secondary random-effects estimate."""
    d, v = rows["delta"].to_numpy(dtype=float), rows["variance"].to_numpy(dtype=float)
    left = [f"{w} (no delta)" for w, x in zip(rows["workload"], d) if not math.isfinite(x)]
    unweighted_only = [f"{w} ({'zero variance' if var == 0 else 'no variance'})"
                       for w, x, var in zip(rows["workload"], d, v)
                       if math.isfinite(x) and not (math.isfinite(var) and var > 0)]
    out = {c: math.nan for c in POOLED_COLUMNS} | {"delta": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                                                  "t_p": math.nan}
    out.update(unweighted(d))
    out.update(random_effects(rows))
    if per_seed is not None:
        out.update(heterogeneity(per_seed))
        out.update(fixed_set([x for x, y in zip(per_seed, d) if math.isfinite(y)]))
    notes = ([f"left out: {', '.join(left)}"] if left else []) + (
        [f"not in the random-effects column: {', '.join(unweighted_only)}"] if unweighted_only else [])
    if out["k"] < 2:
        notes.insert(0, "fewer than 2 workloads with a finite delta")
        out.update(delta=math.nan, ci_low=math.nan, ci_high=math.nan, t_p=math.nan)
    out.update(method=METHOD, note="; ".join(notes), weight=1.0)
    return out

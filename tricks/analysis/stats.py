"""Seed statistics as pure functions over numpy arrays and pandas tables (no torch, no plotting).

- ``interval``: mean, sample std and a two-sided Student-t confidence interval of one metric
  across seeds. With fewer than 2 seeds there is no interval (NaN, and ``note`` says why).
- ``paired``: paired differences (seeds are shared, so seed k of A is compared with seed k of B):
  mean delta, t-interval, paired t-test p-value, and the exact sign-flip permutation p-value
  (all 2^n sign assignments; for n seeds its smallest possible value is 2 / 2^n).
- The verdict: ``improvement`` / ``regression`` when the 95% t-interval of the delta excludes 0
  (equivalently, paired t-test p < 0.05), otherwise ``within noise``.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

CONFIDENCE = 0.95
IMPROVEMENT, REGRESSION, NOISE, UNDECIDED = "improvement", "regression", "within noise", "too few seeds"
EXACT_SIGN_FLIP_MAX_N = 16   # 2^16 sign patterns; beyond that a seeded Monte-Carlo draw of 100,000


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
        st = paired(a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()) if seeds else dict(NO_PAIRS)
        rows.append({"variant": variant, "against": against, "kind": kind, "metric": metric,
                     "seeds": ",".join(map(str, seeds)), **st})
    return pd.DataFrame(rows, columns=["variant", "against", "kind", "metric", "seeds", "n", "delta", "delta_std",
                                       "ci_low", "ci_high", "t_p", "sign_flip_p", "verdict"])


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

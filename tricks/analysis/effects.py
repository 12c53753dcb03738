"""Main effects and two-factor interactions of a factorial or fractional design (no torch).

Model, fitted by least squares (statsmodels' OLS) over every finished (variant, seed):

    metric = intercept + seed block + sum_j b_j x_j + sum_{i<j} b_ij x_i x_j + noise,   x = -1 (off) / +1 (on)

The seed enters as a block (a fixed effect per seed), since seed k shares initial weights and data
order across variants. An *effect* is the change from a factor's off to its on level averaged over
the design, 2 b (in metric units; the report shows points). Terms a design cannot separate are
taken once: each two-factor interaction whose column equals (up to sign) one already in the model
is listed as an alias of it instead (a resolution-IV design aliases two-factor interactions in
groups, never with a main effect).

Two intervals per effect:

- *pooled* (``ci_low``, ``ci_high``, ``p``): the OLS t-interval above. Its error is the residual pooled
  over every term and seed, so it assumes each effect varies from seed to seed no more than the
  residual does; an effect that swings with the seed gets too narrow an interval.
- *per-seed* (``robust_low``, ``robust_high``, ``robust_p``, over ``robust_seeds`` seeds): the same model
  without the seed block, fitted within each seed that finished every variant of the design (a
  *complete* seed), gives one estimate of each effect per seed (in a two-level orthogonal design,
  exactly that seed's contrast: mean metric with the term's column at +1 minus at -1); a one-sample
  Student-t interval and test over those estimates (n_seeds - 1 degrees of freedom, scipy) lets each
  effect's own seed-to-seed variation be its error. When every seed is complete its centre is
  ``effect``.

The verdict uses the more conservative of the two: the one with the larger unadjusted p-value
(``decided_by`` = "pooled" or "per-seed"; a tie goes to "pooled"). ``p_holm`` is that deciding p,
Holm-adjusted over the family of estimated effects; the effect is an improvement or a regression
when ``p_holm`` < 0.05. With fewer than 2 complete seeds there is no per-seed interval, so no verdict
either (``too few seeds``, decided by "per-seed"), as for a paired comparison with fewer than 2 seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from .stats import ALPHA, IMPROVEMENT, NOISE, REGRESSION, UNDECIDED, holm

# The verdict of every term while the finished runs do not pin down the model (variants missing from
# every seed, as in a partial study): least squares would return one of infinitely many solutions.
NOT_ESTIMABLE = "not estimable: missing runs"

EFFECT_COLUMNS = ["term", "kind", "effect", "ci_low", "ci_high", "p", "robust_low", "robust_high", "robust_p",
                  "robust_seeds", "decided_by", "p_holm", "verdict", "aliases"]
POOLED, PER_SEED = "pooled", "per-seed"     # values of ``decided_by``


def coded(design: dict) -> tuple[list[str], dict[str, np.ndarray]]:
    """(factor names, {variant name: its -1/+1 row}) from a study's design (``spec.design`` in study.json)."""
    from ..specs.designs import Factor, variant_name

    factors = [Factor(f["name"], ()) for f in design["factors"]]
    rows = {variant_name(design["kind"], factors, row): 2 * np.asarray(row, dtype=float) - 1
            for row in design["matrix"]}
    return [f.name for f in factors], rows


def candidate_terms(k: int, interactions: bool = True) -> list[tuple[int, ...]]:
    return [(i,) for i in range(k)] + (list(itertools.combinations(range(k), 2)) if interactions else [])


def estimable(x: np.ndarray, names: list[str]) -> tuple[list[tuple[int, ...]], dict[tuple, list[str]]]:
    """The terms the design matrix ``x`` (variants x factors, -1/+1) can estimate, in order (main effects,
    then two-factor interactions), and for each the names of the terms aliased with it."""
    kept: list[tuple[int, ...]] = []
    cols: list[np.ndarray] = []
    aliases: dict[tuple, list[str]] = {}
    for term in candidate_terms(x.shape[1]):
        col = np.prod(x[:, list(term)], axis=1)
        twin = next((t for t, c in zip(kept, cols) if np.array_equal(c, col) or np.array_equal(c, -col)), None)
        if twin is not None:
            aliases.setdefault(twin, []).append(term_name(term, names))
            continue
        trial = np.column_stack(cols + [col, np.ones(len(col))])
        if np.linalg.matrix_rank(trial) <= len(cols) + (1 if cols else 0) and cols:
            continue    # a combination of terms already in (not estimable on its own); rare in 2-level designs
        kept.append(term)
        cols.append(col)
        aliases.setdefault(term, [])
    return kept, aliases


def term_name(term: tuple[int, ...], names: list[str]) -> str:
    return "*".join(names[i] for i in term)


def term_columns(x: np.ndarray, terms: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The -1/+1 column of each term (product of its factors' columns) for coded rows ``x``."""
    return [np.prod(x[:, list(t)], axis=1) for t in terms]


def per_seed(ok: pd.DataFrame, rows: dict[str, np.ndarray], terms: list[tuple[int, ...]], metric: str,
             confidence: float) -> pd.DataFrame:
    """The per-seed interval of each term (see the module docstring): one least-squares estimate of the
    effect within each complete seed, then a one-sample t-interval and t-test over the seeds (an effect
    estimated identically in every seed has p 0, or 1 where that estimate is 0)."""
    from scipy import stats as sps

    estimates = []
    for _, g in ok.groupby("seed", sort=True):
        if len(g) != len(rows) or set(g["variant"]) != set(rows):
            continue    # a seed that did not finish every variant: its contrasts would not be comparable
        X = np.column_stack([np.ones(len(g))] + term_columns(np.array([rows[v] for v in g["variant"]]), terms))
        estimates.append(2 * np.linalg.lstsq(X, g[metric].to_numpy(dtype=float), rcond=None)[0][1:])
    out = pd.DataFrame({"robust_low": math.nan, "robust_high": math.nan, "robust_p": math.nan,
                        "robust_seeds": len(estimates)}, index=range(len(terms)))
    n = len(estimates)
    if n >= 2:
        est = np.array(estimates)
        mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / math.sqrt(n)
        half = sps.t.ppf(0.5 + confidence / 2, n - 1) * se
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, mean / se, np.where(mean == 0, 0.0, np.sign(mean) * np.inf))
        out["robust_low"], out["robust_high"] = mean - half, mean + half
        out["robust_p"] = 2 * sps.t.sf(np.abs(t), n - 1)
    return out


def decide(p: float, robust_p: float) -> tuple[float, str]:
    """The deciding p-value of one effect and which interval gave it: the larger p (a tie: pooled); a
    missing per-seed p (fewer than 2 complete seeds) decides as NaN, so the effect gets no verdict."""
    if not math.isfinite(robust_p):
        return math.nan, PER_SEED
    if not math.isfinite(p):
        return math.nan, POOLED
    return (robust_p, PER_SEED) if robust_p > p else (p, POOLED)


def effects(runs: pd.DataFrame, design: dict, metric: str = "micro_f1", confidence: float = 0.95) -> pd.DataFrame:
    """One row per estimable main effect and two-factor interaction (see the module docstring). Where the
    finished runs cannot separate the terms (a rank-deficient model matrix), every row is NaN with the
    verdict ``NOT_ESTIMABLE``: a partial study reports no effects rather than arbitrary ones."""
    import statsmodels.api as sm

    names, rows = coded(design)
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)]
    if ok.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    terms, aliases = estimable(np.array([rows[v] for v in rows]), names)
    out = pd.DataFrame({"term": [term_name(t, names) for t in terms],
                        "kind": ["main" if len(t) == 1 else "interaction" for t in terms],
                        "aliases": [" = ".join(aliases[t]) for t in terms]})
    seeds = sorted(ok["seed"].unique())
    blocks = [(ok["seed"].to_numpy() == s).astype(float) for s in seeds[1:]]
    X = np.column_stack([np.ones(len(ok))] + blocks
                        + term_columns(np.array([rows[v] for v in ok["variant"]]), terms))
    y = ok[metric].to_numpy(dtype=float)
    first = 1 + len(blocks)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        for c in ("effect", "ci_low", "ci_high", "p", "robust_low", "robust_high", "robust_p", "robust_seeds",
                  "p_holm"):
            out[c] = math.nan
        out["decided_by"] = ""
        out["verdict"] = NOT_ESTIMABLE
        return out[EFFECT_COLUMNS]
    if len(y) <= X.shape[1]:     # no residual degrees of freedom: estimates without intervals
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        ci = np.full((X.shape[1], 2), math.nan)
        p = np.full(X.shape[1], math.nan)
    else:
        fit = sm.OLS(y, X).fit()
        beta, ci, p = fit.params, fit.conf_int(1 - confidence), fit.pvalues
    out["effect"] = 2 * np.asarray(beta[first:])
    out["ci_low"], out["ci_high"] = 2 * np.asarray(ci)[first:, 0], 2 * np.asarray(ci)[first:, 1]
    out["p"] = np.asarray(p)[first:]
    out = pd.concat([out, per_seed(ok, rows, terms, metric, confidence)], axis=1)
    deciding = [decide(a, b) for a, b in zip(out["p"], out["robust_p"])]
    out["decided_by"] = [by for _, by in deciding]
    out["p_holm"] = holm([dp for dp, _ in deciding])
    out["verdict"] = [UNDECIDED if not math.isfinite(ph) else (IMPROVEMENT if e > 0 else REGRESSION)
                      if ph < ALPHA else NOISE for e, ph in zip(out["effect"], out["p_holm"])]
    return out[EFFECT_COLUMNS]


def interaction_means(runs: pd.DataFrame, design: dict, a: str, b: str, metric: str = "micro_f1") -> pd.DataFrame:
    """Mean metric over the design at the four combinations of factors ``a`` and ``b`` (off/on)."""
    names, rows = coded(design)
    ia, ib = names.index(a), names.index(b)
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)].copy()
    ok[a] = [rows[v][ia] > 0 for v in ok["variant"]]
    ok[b] = [rows[v][ib] > 0 for v in ok["variant"]]
    return ok.groupby([a, b])[metric].mean().reset_index()

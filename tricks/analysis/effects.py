"""Main effects and two-factor interactions of a factorial or fractional design (no torch).

Model, fitted by least squares (statsmodels' OLS) over every finished (variant, seed):

    metric = intercept + seed block + sum_j b_j x_j + sum_{i<j} b_ij x_i x_j + noise,   x = -1 (off) / +1 (on)

The seed enters as a block (a fixed effect per seed), since seed k shares initial weights and data
order across variants. An *effect* is the change from a factor's off to its on level averaged over
the design, 2 b (in metric units; the report shows points). Terms a design cannot separate are
taken once: each two-factor interaction whose column equals (up to sign) one already in the model
is listed as an alias of it instead (a resolution-IV design aliases two-factor interactions in
groups, never with a main effect). Verdicts use Holm-adjusted p-values over the estimated effects.
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

EFFECT_COLUMNS = ["term", "kind", "effect", "ci_low", "ci_high", "p", "p_holm", "verdict", "aliases"]


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


def effects(runs: pd.DataFrame, design: dict, metric: str = "micro_f1", confidence: float = 0.95) -> pd.DataFrame:
    """One row per estimable main effect and two-factor interaction (see the module docstring). Where the
    finished runs cannot separate the terms (a rank-deficient model matrix), every row is NaN with the
    verdict ``NOT_ESTIMABLE``: a partial study reports no effects rather than arbitrary ones."""
    import statsmodels.api as sm

    names, rows = coded(design)
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)]
    if ok.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    x_variants = np.array([rows[v] for v in rows])
    terms, aliases = estimable(x_variants, names)
    x = np.array([rows[v] for v in ok["variant"]])
    seeds = sorted(ok["seed"].unique())
    blocks = [(ok["seed"].to_numpy() == s).astype(float) for s in seeds[1:]]
    columns = [np.ones(len(ok))] + blocks + [np.prod(x[:, list(t)], axis=1) for t in terms]
    X = np.column_stack(columns)
    y = ok[metric].to_numpy(dtype=float)
    first = 1 + len(blocks)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        out = pd.DataFrame({"term": [term_name(t, names) for t in terms],
                            "kind": ["main" if len(t) == 1 else "interaction" for t in terms],
                            "aliases": [" = ".join(aliases[t]) for t in terms]})
        for c in ("effect", "ci_low", "ci_high", "p", "p_holm"):
            out[c] = math.nan
        out["verdict"] = NOT_ESTIMABLE
        return out[EFFECT_COLUMNS]
    if len(y) <= X.shape[1]:     # no residual degrees of freedom: estimates without intervals
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        ci = np.full((X.shape[1], 2), math.nan)
        p = np.full(X.shape[1], math.nan)
    else:
        fit = sm.OLS(y, X).fit()
        beta, ci, p = fit.params, fit.conf_int(1 - confidence), fit.pvalues
    out = pd.DataFrame({
        "term": [term_name(t, names) for t in terms],
        "kind": ["main" if len(t) == 1 else "interaction" for t in terms],
        "effect": 2 * np.asarray(beta[first:]), "ci_low": 2 * np.asarray(ci)[first:, 0],
        "ci_high": 2 * np.asarray(ci)[first:, 1], "p": np.asarray(p)[first:],
        "aliases": [" = ".join(aliases[t]) for t in terms]})
    out["p_holm"] = holm(out["p"].to_numpy())
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

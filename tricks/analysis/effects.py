"""Every effect a factorial or fractional design and its seeds can estimate (no torch).

Model, fitted by least squares (statsmodels' OLS) over every finished (variant, seed):

    metric = intercept + seed block + sum over terms t of b_t x_t + noise,   x = -1 (off) / +1 (on)

where a term's column x_t is the product of its factors' columns. The seed enters as a block (a fixed
effect per seed), since seed k shares initial weights and data order across variants. An *effect* is
the change from a term's column at -1 to +1 averaged over the design, 2 b (in metric units; the report
shows points): for a factor, its off-to-on change; for a*b, half the difference between a's effect
with b on and with b off; for a*b*c, half the difference between a*b's interaction with c on and off.

Which terms (``model_terms``):

- *Every term the design can separate*, when at least 2 seeds ran the whole design (*complete* seeds):
  the saturated model with seed blocks. A full 2^k factorial then estimates all 2^k - 1 main effects
  and two- to k-factor interactions, with (variants - 1) x (seeds - 1) residual degrees of freedom,
  and nothing is assumed negligible.
- With fewer complete seeds the saturated model would leave no error: only main effects and two-factor
  interactions are fitted, and the terms of three or more factors form the pooled error, *assumed
  negligible* (``assumptions`` says which). There is no per-seed interval then either, so no verdict.
- A fractional design cannot tell apart the words of an *alias chain* (columns equal up to sign): each
  chain is estimated once, named by its lowest-order word (``term``); ``aliases`` lists every other word
  of the chain, three- and more-factor words included, and the estimate is the sum of the chain's
  effects (signs as in the defining relation). Reading it as ``term`` alone assumes the others negligible.

Two intervals per effect:

- *pooled* (``ci_low``, ``ci_high``, ``p``): the OLS t-interval above. Its error is the residual pooled
  over every term and seed, so it assumes each effect varies from seed to seed no more than the
  residual does; an effect that swings with the seed gets too narrow an interval.
- *per-seed* (``robust_low``, ``robust_high``, ``robust_p``, over ``robust_seeds`` seeds): the same model
  without the seed block, fitted within each complete seed, gives one estimate of each effect per seed
  (in a two-level orthogonal design, exactly that seed's contrast: mean metric with the term's column at
  +1 minus at -1); a one-sample Student-t interval and test over those estimates (n_seeds - 1 degrees of
  freedom, scipy) lets each effect's own seed-to-seed variation be its error. When every seed is
  complete its centre is ``effect``.

The verdict uses the more conservative of the two: the one with the larger unadjusted p-value
(``decided_by`` = "pooled" or "per-seed"; a tie goes to "pooled"). ``p_holm`` is that deciding p,
Holm-adjusted over the family of estimated effects (``family`` = "effects", ``family_size``: how many
p-values it adjusts over, three- and four-factor terms included); the effect is an improvement or a
regression when ``p_holm`` < 0.05. With fewer than 2 complete seeds there is no per-seed interval, so
no verdict either (``too few seeds``, decided by "per-seed"), as for a paired comparison with fewer
than 2 seeds. Effects of one factor at a level of others (``conditional``) are exploratory, not here.
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
                  "robust_seeds", "decided_by", "p_holm", "verdict", "aliases", "order", "family", "family_size"]
POOLED, PER_SEED = "pooled", "per-seed"     # values of ``decided_by``
FAMILY = "effects"                          # the Holm family of effects.csv: every estimated term
MAX_FACTORS = 16                            # 65,535 words; beyond, chains list words of up to 3 factors


def kind_of(order: int) -> str:
    """"main", "interaction" (two factors: the report draws these), "3-factor interaction", ..."""
    return {1: "main", 2: "interaction"}.get(order, f"{order}-factor interaction")


def coded(design: dict) -> tuple[list[str], dict[str, np.ndarray]]:
    """(factor names, {variant name: its -1/+1 row}) from a study's design (``spec.design`` in study.json)."""
    from ..specs.designs import Factor, variant_name

    factors = [Factor(f["name"], ()) for f in design["factors"]]
    rows = {variant_name(design["kind"], factors, row): 2 * np.asarray(row, dtype=float) - 1
            for row in design["matrix"]}
    return [f.name for f in factors], rows


def words(k: int) -> list[tuple[int, ...]]:
    """Every term of k factors, main effects first, then two-factor interactions, ..., the k-factor one
    (beyond ``MAX_FACTORS`` factors only the terms of up to three: 2^k words would not fit)."""
    top = k if k <= MAX_FACTORS else 3
    return [t for n in range(1, top + 1) for t in itertools.combinations(range(k), n)]


def term_name(term: tuple[int, ...], names: list[str]) -> str:
    return "*".join(names[i] for i in term)


def term_columns(x: np.ndarray, terms: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The -1/+1 column of each term (product of its factors' columns) for coded rows ``x``."""
    return [np.prod(x[:, list(t)], axis=1) for t in terms]


def alias_chains(x: np.ndarray) -> tuple[list[list[tuple[int, ...]]], list[tuple[int, ...]]]:
    """The words of the design matrix ``x`` (variants x factors, -1/+1) grouped by column up to sign, each
    group in ``words`` order (its first word names it), groups ordered by their first word; and the words
    whose column is constant (the defining relation's, aliased with the intercept)."""
    groups: dict[tuple, list[tuple[int, ...]]] = {}
    defining = []
    for w, col in zip(words(x.shape[1]), term_columns(x, words(x.shape[1]))):
        if np.all(col == col[0]):
            defining.append(w)
            continue
        groups.setdefault(tuple(col * col[0]), []).append(w)
    return list(groups.values()), defining


def estimable(x: np.ndarray, names: list[str], max_order: int | None = 2
              ) -> tuple[list[tuple[int, ...]], dict[tuple, list[str]]]:
    """The terms the design matrix ``x`` can estimate whose naming word has at most ``max_order`` factors
    (None: every one, the saturated model), in order, and for each the names of the other words of its
    alias chain (every order)."""
    kept: list[tuple[int, ...]] = []
    cols: list[np.ndarray] = []
    aliases: dict[tuple, list[str]] = {}
    for chain in alias_chains(x)[0]:
        term = chain[0]
        if max_order is not None and len(term) > max_order:
            continue
        col = term_columns(x, [term])[0]
        trial = np.column_stack(cols + [col, np.ones(len(col))])
        if cols and np.linalg.matrix_rank(trial) <= len(cols) + 1:
            continue    # a combination of terms already in (not estimable on its own); never in 2-level designs
        kept.append(term)
        cols.append(col)
        aliases[term] = [term_name(w, names) for w in chain[1:]]
    return kept, aliases


def complete_seeds(ok: pd.DataFrame, rows: dict[str, np.ndarray]) -> list:
    """The seeds that finished every variant of the design."""
    return [s for s, g in ok.groupby("seed", sort=True) if len(g) == len(rows) and set(g["variant"]) == set(rows)]


def model_terms(ok: pd.DataFrame, rows: dict[str, np.ndarray]) -> int | None:
    """The highest order fitted (``estimable``'s ``max_order``): None (saturated) with >= 2 complete seeds,
    else 2 (the higher-order terms form the error)."""
    return None if len(complete_seeds(ok, rows)) >= 2 else 2


def per_seed(ok: pd.DataFrame, rows: dict[str, np.ndarray], terms: list[tuple[int, ...]], metric: str,
             confidence: float) -> pd.DataFrame:
    """The per-seed interval of each term (see the module docstring): one least-squares estimate of the
    effect within each complete seed, then a one-sample t-interval and t-test over the seeds (an effect
    estimated identically in every seed has p 0, or 1 where that estimate is 0)."""
    from scipy import stats as sps

    estimates = []
    for s in complete_seeds(ok, rows):
        g = ok[ok["seed"] == s]
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
    """One row per estimated term (see the module docstring). Where the finished runs cannot separate the
    terms (a rank-deficient model matrix), every row is NaN with the verdict ``NOT_ESTIMABLE``: a partial
    study reports no effects rather than arbitrary ones."""
    import statsmodels.api as sm

    names, rows = coded(design)
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)]
    if ok.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    terms, aliases = estimable(np.array([rows[v] for v in rows]), names, model_terms(ok, rows))
    out = pd.DataFrame({"term": [term_name(t, names) for t in terms], "kind": [kind_of(len(t)) for t in terms],
                        "aliases": [" = ".join(aliases[t]) for t in terms], "order": [len(t) for t in terms],
                        "family": FAMILY})
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
        out["decided_by"], out["verdict"], out["family_size"] = "", NOT_ESTIMABLE, 0
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
    out["family_size"] = int(np.isfinite([dp for dp, _ in deciding]).sum())   # the m Holm adjusts over
    out["verdict"] = [UNDECIDED if not math.isfinite(ph) else (IMPROVEMENT if e > 0 else REGRESSION)
                      if ph < ALPHA else NOISE for e, ph in zip(out["effect"], out["p_holm"])]
    return out[EFFECT_COLUMNS]


def assumptions(runs: pd.DataFrame, design: dict) -> list[str]:
    """What the effects table assumes, in sentences: nothing (a full factorial with >= 2 complete seeds),
    the terms left in the error (fewer complete seeds), and a fractional design's alias chains."""
    names, rows = coded(design)
    x = np.array([rows[v] for v in rows])
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)]
    chains, defining = alias_chains(x)
    out = []
    if model_terms(ok, rows) is None:
        out.append(f"Every term the design separates is estimated ({len(chains)}: the saturated model with seed "
                   f"blocks; {len(complete_seeds(ok, rows))} seeds ran the whole design)"
                   + ("." if defining else "; a full factorial has no alias chains, so nothing is assumed negligible."))
    else:
        left = [term_name(c[0], names) for c in chains if len(c[0]) > 2]
        out.append("Fewer than 2 seeds ran the whole design, so only main effects and two-factor interactions are "
                   "fitted" + (f"; the terms {', '.join(left)} form the pooled error and are assumed negligible"
                               if left else "") + ".")
    if defining:
        out.append("Defining relation: I = " + " = ".join(term_name(w, names) for w in defining) + "; each "
                   "estimate is the sum of the effects of its alias chain (`aliases`), read as its first term "
                   "only where the others are assumed negligible.")
    return out


def interaction_means(runs: pd.DataFrame, design: dict, a: str, b: str, metric: str = "micro_f1") -> pd.DataFrame:
    """Mean metric over the design at the four combinations of factors ``a`` and ``b`` (off/on)."""
    names, rows = coded(design)
    ia, ib = names.index(a), names.index(b)
    ok = runs[(runs["status"] == "ok") & runs["variant"].isin(rows)].copy()
    ok[a] = [rows[v][ia] > 0 for v in ok["variant"]]
    ok[b] = [rows[v][ib] > 0 for v in ok["variant"]]
    return ok.groupby([a, b])[metric].mean().reset_index()

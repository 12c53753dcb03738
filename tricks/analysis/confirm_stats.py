"""The statistics of a confirmation, as pure functions of arrays (no files, no torch).

For each claim, ``d`` holds one contrast per seed (accuracy points; ``variant - against``, or the
claim's weighted contrast), computed from runs of the same seed:

- **directional t**: one-sided paired t-test in the claimed direction (``scipy.stats.ttest_1samp``);
- **sign flip**: the exact one-sided permutation p over the 2^n sign flips of ``d``
  (``scipy.stats.permutation_test``, ``permutation_type="samples"``), which assumes only that each
  seed's contrast is symmetric about zero under the null; with n seeds it cannot go below 2^-n;
- **equivalence** within a margin m: two one-sided tests (TOST) of ``d > -m`` and ``d < m``, each
  by t and by sign flip (on ``d + m`` and ``m - d``); its p is the larger of the two;
- **Holm** over exactly the claims of the file, separately for the t and the sign-flip p-values;
  a claim is *confirmed* only when both adjusted p-values are below alpha;
- **family-adjusted interval**: the two-sided (1 - alpha/m) t interval (Bonferroni over the m claims);
- **two-level bootstrap**: seeds and test images resampled together (images shared by every run, as
  the test set is), so the interval carries test-set sampling noise as well as seed noise.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats as sps
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 20261204   # fixed: the report is a pure function of the stored runs
EXACT_MAX_N = 20            # exact sign flips up to 2^20 arrangements; sampled (100,000) beyond


def t_p(d: np.ndarray, alternative: str) -> float:
    """One-sided paired t p-value of ``mean(d) > 0`` (``greater``) or ``< 0`` (``less``)."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return math.nan
    if np.std(d, ddof=1) == 0:
        m = d.mean()
        return 0.0 if (m > 0 if alternative == "greater" else m < 0) else 1.0
    return float(sps.ttest_1samp(d, 0.0, alternative=alternative).pvalue)


def sign_flip_p(d: np.ndarray, alternative: str) -> float:
    """One-sided (``greater``/``less``) or ``two-sided`` sign-flip permutation p of the mean of ``d``."""
    d = np.asarray(d, dtype=float)
    if len(d) == 0:
        return math.nan
    exact = len(d) <= EXACT_MAX_N
    res = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative=alternative,
                               n_resamples=np.inf if exact else 100_000,
                               rng=None if exact else np.random.default_rng(BOOTSTRAP_SEED))
    return float(res.pvalue)


def min_sign_flip_p(n: int, two_sided: bool = True) -> float:
    """The smallest p a sign-flip test over n seeds can give: 2^-n one-sided, 2^(1-n) two-sided."""
    return min(1.0, 2.0 ** (-n) * (2 if two_sided else 1)) if n else math.nan


def directional_ps(d: np.ndarray, direction: str, margin: float | None = None) -> tuple[float, float]:
    """(t p, sign-flip p) of the claimed direction; for ``equivalent``, the TOST p of each test."""
    d = np.asarray(d, dtype=float)
    if direction == "better":
        return t_p(d, "greater"), sign_flip_p(d, "greater")
    if direction == "worse":
        return t_p(d, "less"), sign_flip_p(d, "less")
    if direction == "equivalent":
        if margin is None or not margin > 0:
            raise ValueError("equivalence needs a positive margin")
        return (max(t_p(d + margin, "greater"), t_p(d - margin, "less")),
                max(sign_flip_p(d + margin, "greater"), sign_flip_p(d - margin, "less")))
    raise ValueError(f"direction must be better, worse or equivalent, got {direction!r}")


def holm(ps: list[float]) -> list[float]:
    """Holm-adjusted p-values (NaN stays NaN and does not count in the family)."""
    ps = list(ps)
    ok = [i for i, p in enumerate(ps) if not math.isnan(p)]
    out = [math.nan] * len(ps)
    if ok:
        adj = multipletests([ps[i] for i in ok], alpha=ALPHA, method="holm")[1]
        for i, a in zip(ok, adj):
            out[i] = float(a)
    return out


def t_interval(d: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided ``level`` Student-t interval of the mean of ``d``."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan
    half = sps.t.ppf(0.5 + level / 2, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def two_level_bootstrap(correct: np.ndarray, weights: np.ndarray, level: float = 1 - ALPHA,
                        draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile interval (points) of the mean contrast when seeds and test images are resampled.

    ``correct[arm, seed, image]``: whether that run classified that test image correctly;
    ``weights[arm]``: the claim's contrast weights. Each draw resamples the seeds, and the test
    images once for all runs (they all saw the same test set)."""
    correct = np.asarray(correct, dtype=np.float32)
    arms, n_seeds, n_images = correct.shape
    if n_seeds < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    # contrast per (seed, image): sum_arm w * correct
    per_image = np.tensordot(np.asarray(weights, dtype=np.float32), correct, axes=1)   # (seed, image)
    counts = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=draws).astype(np.float32)
    by_seed = per_image @ counts.T / n_images                                           # (seed, draw)
    pick = rng.integers(0, n_seeds, size=(draws, n_seeds))
    stats = by_seed[pick, np.arange(draws)[:, None]].mean(axis=1) * 100.0
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def verdict(t_holm: float, flip_holm: float, complete: bool, alpha: float = ALPHA) -> str:
    """confirmed | not confirmed | pending (the registered seeds are not all in: no verdict yet)."""
    if not complete:
        return "pending"
    return "confirmed" if t_holm < alpha and flip_holm < alpha else "not confirmed"

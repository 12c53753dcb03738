"""The per-seed interval of factorial effects beside the pooled one, on scripted runs tables (no training):
each effect's estimate in seed s is scripted exactly, so both intervals are known in closed form."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tricks.analysis.effects import PER_SEED, POOLED, coded, effects
from tricks.analysis.stats import holm
from tricks.specs.designs import Factor, generate

DESIGN = generate("factorial", [Factor(n, ()) for n in ("a", "b", "c")]).to_dict()
TRUE = {"a": 0.03, "b": 0.01, "c": -0.02, "a*b": 0.01, "a*c": 0.0, "b*c": 0.0, "a*b*c": 0.0}
Z = np.array([1.0, -1.0, 2.0, -2.0, 1.0, -1.0])   # mean 0, sum of squares 12: one seed-to-seed pattern
SEEDS = range(len(Z))


def scripted(spread: dict[str, float]) -> pd.DataFrame:
    """2^3 design x 6 seeds: term t's effect in seed s is TRUE[t] + spread[t] * Z[(s + k_t) % 6] (a shifted
    copy of one pattern, so every term has the same seed-to-seed variance when spreads are equal)."""
    names, rows = coded(DESIGN)
    recs = []
    for s in SEEDS:
        for v, x in rows.items():
            y = 0.6 + 0.01 * s
            for k, term in enumerate(TRUE):
                col = np.prod([x[names.index(f)] for f in term.split("*")])
                y += (TRUE[term] + spread[term] * Z[(s + k) % len(Z)]) * col / 2
            recs.append({"variant": v, "seed": s, "status": "ok", "micro_f1": y})
    return pd.DataFrame(recs)


def by_hand(runs: pd.DataFrame, term: str) -> tuple[float, float, float]:
    """The per-seed interval computed by hand: the term's contrast in each seed (mean metric where its
    column is +1 minus where it is -1), then mean +- t(0.975, n - 1) * sd / sqrt(n), and the t-test p."""
    names, rows = coded(DESIGN)
    sign = {v: np.prod([x[names.index(f)] for f in term.split("*")]) for v, x in rows.items()}
    contrasts = []
    for _, g in runs.groupby("seed"):
        on = g[[sign[v] > 0 for v in g["variant"]]]["micro_f1"].mean()
        off = g[[sign[v] < 0 for v in g["variant"]]]["micro_f1"].mean()
        contrasts.append(on - off)
    c = np.array(contrasts)
    n, se = len(c), c.std(ddof=1) / math.sqrt(len(c))
    half = sps.t.ppf(0.975, n - 1) * se
    return c.mean() - half, c.mean() + half, 2 * sps.t.sf(abs(c.mean() / se), n - 1)


def pooled_half_width(spread: dict[str, float]) -> float:
    """Closed form of the pooled interval's half-width: 6 complete seeds, so the saturated model (a*b*c
    too); the residual is every term-by-seed deviation, sum of squares 8/4 * 12 * sum of spread^2, on
    48 - 6 - 7 = 35 df."""
    rss = 8 / 4 * Z @ Z * sum(v * v for v in spread.values())
    return sps.t.ppf(0.975, 35) * math.sqrt(4 * rss / 35 / 48)


def test_equal_seed_variation_gives_close_intervals_and_the_same_verdicts():
    spread = dict.fromkeys(TRUE, 0.002)
    runs = scripted(spread)
    e = effects(runs, DESIGN).set_index("term")
    robust_half = sps.t.ppf(0.975, 5) * 0.002 * math.sqrt(12 / 5 / 6)    # sd(Z) = sqrt(12 / 5), 6 seeds
    for term in ("a", "b", "c", "a*b", "a*c", "b*c", "a*b*c"):
        row = e.loc[term]
        assert row["effect"] == pytest.approx(TRUE[term], abs=1e-12)
        low, high, p = by_hand(runs, term)
        assert (row["robust_low"], row["robust_high"], row["robust_p"]) == pytest.approx((low, high, p), rel=1e-9)
        assert row["robust_high"] - row["effect"] == pytest.approx(robust_half, rel=1e-9)
        assert row["ci_high"] - row["effect"] == pytest.approx(pooled_half_width(spread), rel=1e-9)
        assert row["robust_seeds"] == 6
    # same standard error (0.632 vs 0.632 x 0.002): the per-seed interval is wider only by its 5 df
    # against the pooled 35 (2.571 / 2.030), 0.325 against 0.257 points
    assert robust_half == pytest.approx(0.00325, abs=1e-5)
    assert pooled_half_width(spread) == pytest.approx(0.00257, abs=1e-5)
    pooled_only = holm(e["p"].to_numpy())
    agree = ["improvement" if p < 0.05 and x > 0 else "regression" if p < 0.05 else "within noise"
             for p, x in zip(pooled_only, e["effect"])]
    assert list(e["verdict"]) == agree == ["improvement", "improvement", "regression", "improvement",
                                           "within noise", "within noise", "within noise"]
    assert list(e["kind"])[-1] == "3-factor interaction" and (e["family_size"] == 7).all()


def test_an_effect_that_swings_with_the_seed_is_decided_by_its_per_seed_interval():
    spread = dict.fromkeys(TRUE, 0.002) | {"b": 0.01}   # b's effect: +1 point on average, +-1 to 2 per seed
    runs = scripted(spread)
    e = effects(runs, DESIGN).set_index("term")
    b = e.loc["b"]
    low, high, p = by_hand(runs, "b")
    assert (b["robust_low"], b["robust_high"], b["robust_p"]) == pytest.approx((low, high, p), rel=1e-9)
    assert (low, high) == pytest.approx((0.01 - 0.016258, 0.01 + 0.016258), abs=1e-6)   # [-0.63, +2.63] points
    assert p == pytest.approx(0.1747, abs=1e-4)                  # t = 1 / sqrt(0.4) = 1.58 on 5 df
    assert b["ci_high"] - b["effect"] == pytest.approx(pooled_half_width(spread), rel=1e-9)
    assert b["robust_high"] - b["robust_low"] > 3 * (b["ci_high"] - b["ci_low"])
    # the pooled interval alone calls it an improvement (its error is shared with the steady effects)
    assert b["ci_low"] > 0 and holm(e["p"].to_numpy())[list(e.index).index("b")] < 0.05
    assert b["decided_by"] == PER_SEED and b["p_holm"] >= 0.05 and b["verdict"] == "within noise"
    # the steady effects keep their verdicts
    assert e.loc[["a", "c", "a*b"], "verdict"].tolist() == ["improvement", "regression", "improvement"]


def test_the_deciding_p_is_the_larger_one_and_holm_runs_over_those():
    e = effects(scripted(dict.fromkeys(TRUE, 0.002) | {"b": 0.01}), DESIGN)
    deciding = np.maximum(e["p"], e["robust_p"])
    assert list(e["decided_by"]) == [PER_SEED if r > p else POOLED for p, r in zip(e["p"], e["robust_p"])]
    assert e["p_holm"].to_numpy() == pytest.approx(holm(deciding.to_numpy()))


def test_only_seeds_that_ran_the_whole_design_give_per_seed_estimates():
    runs = scripted(dict.fromkeys(TRUE, 0.002))
    short = runs.drop(runs[(runs["seed"] == 5) & (runs["variant"] == "baseline")].index)
    e = effects(short, DESIGN).set_index("term")
    low, high, _ = by_hand(runs[runs["seed"] < 5], "a")
    assert (e.loc["a", "robust_low"], e.loc["a", "robust_high"]) == pytest.approx((low, high), rel=1e-9)
    assert (e["robust_seeds"] == 5).all()
    # one complete seed: a pooled interval but no per-seed one, so no verdict
    one = effects(short[short["seed"].isin([0, 5])], DESIGN)
    assert one["ci_low"].notna().all() and one["robust_low"].isna().all() and (one["robust_seeds"] == 1).all()
    assert (one["verdict"] == "too few seeds").all() and (one["decided_by"] == PER_SEED).all()

"""Statistics on small hand-checkable tables (no training)."""

import math

import pandas as pd
import pytest

from tricks.analysis.stats import (IMPROVEMENT, NOISE, REGRESSION, UNDECIDED, comparisons, delta_table, interval, paired,
                          sign_flip_p, summarize, verdict)

T975_DF2 = 4.302652729749464   # Student t, 97.5% quantile, 2 degrees of freedom
T975_DF3 = 3.182446305284263


def test_interval_of_1_2_3():
    iv = interval([1.0, 2.0, 3.0])
    assert iv["mean"] == 2.0 and iv["std"] == pytest.approx(1.0)
    half = T975_DF2 / math.sqrt(3)
    assert (iv["ci_low"], iv["ci_high"]) == (pytest.approx(2 - half), pytest.approx(2 + half))


def test_interval_with_one_seed_says_so_instead_of_inventing_one():
    iv = interval([0.7])
    assert iv["n"] == 1 and math.isnan(iv["ci_low"]) and "no interval" in iv["note"]


def test_paired_known_deltas():
    st = paired([0.52, 0.55, 0.50, 0.53], [0.50, 0.51, 0.51, 0.50])
    sd = math.sqrt((0 + 0.02 ** 2 + 0.03 ** 2 + 0.01 ** 2) / 3)
    assert st["delta"] == pytest.approx(0.02)
    assert st["delta_std"] == pytest.approx(sd)
    assert st["ci_low"] == pytest.approx(0.02 - T975_DF3 * sd / 2)
    assert st["ci_high"] == pytest.approx(0.02 + T975_DF3 * sd / 2)
    assert st["sign_flip_p"] == pytest.approx(4 / 16)   # patterns with |sum| >= 8 of (2,4,-1,3): 4 of 16
    assert st["verdict"] == NOISE


def test_constant_positive_delta_is_an_improvement():
    st = paired([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert (st["delta"], st["ci_low"], st["ci_high"], st["t_p"]) == (2.0, 2.0, 2.0, 0.0)
    assert st["verdict"] == IMPROVEMENT


def test_clear_regression():
    st = paired([0.40, 0.41, 0.39, 0.40, 0.41], [0.50, 0.50, 0.51, 0.49, 0.50])
    assert st["verdict"] == REGRESSION and st["t_p"] < 0.001
    assert st["sign_flip_p"] == pytest.approx(2 / 32)   # the smallest possible with 5 seeds


def test_sign_flip_exact_values():
    assert sign_flip_p([1.0, 1.0, 1.0]) == pytest.approx(0.25)
    assert sign_flip_p([1.0, -1.0]) == pytest.approx(1.0)


def test_verdict_rules():
    assert verdict(0.01, 0.02, 3) == IMPROVEMENT
    assert verdict(-0.02, -0.01, 3) == REGRESSION
    assert verdict(-0.01, 0.02, 3) == NOISE
    assert verdict(math.nan, math.nan, 1) == UNDECIDED


def fake_runs():
    rows = []
    for seed, (b, a, c) in enumerate([(0.50, 0.55, 0.48), (0.52, 0.58, 0.49), (0.51, 0.56, 0.47)]):
        rows += [{"variant": "baseline", "seed": seed, "status": "ok", "micro_f1": b, "macro_f1": b, "accuracy": b},
                 {"variant": "a", "seed": seed, "status": "ok", "micro_f1": a, "macro_f1": a, "accuracy": a},
                 {"variant": "c", "seed": seed, "status": "diverged" if seed == 2 else "ok", "micro_f1": c,
                  "macro_f1": c, "accuracy": c}]
    return pd.DataFrame(rows)


def test_summary_table_counts_and_excludes_diverged_runs():
    s = summarize(fake_runs(), ["baseline", "a", "c"]).set_index("variant")
    assert s.loc["a", "micro_f1_mean"] == pytest.approx((0.55 + 0.58 + 0.56) / 3)
    assert (s.loc["c", "runs_ok"], s.loc["c", "runs_diverged"]) == (2, 1)
    assert s.loc["c", "micro_f1_mean"] == pytest.approx(0.485)
    assert list(s.index) == ["baseline", "a", "c"]


def test_delta_table_pairs_on_common_ok_seeds():
    variants = [{"name": "baseline"}, {"name": "a", "base": "baseline"}, {"name": "c", "base": "a"}]
    pairs = comparisons(variants, "baseline")
    assert pairs == [("a", "baseline", "vs_baseline"), ("c", "baseline", "vs_baseline"), ("c", "a", "vs_base")]
    d = delta_table(fake_runs(), pairs).set_index(["variant", "against"])
    assert d.loc[("a", "baseline"), "delta"] == pytest.approx(0.0533333, abs=1e-6)
    assert d.loc[("a", "baseline"), "verdict"] == IMPROVEMENT
    assert d.loc[("c", "baseline"), "seeds"] == "0,1" and d.loc[("c", "baseline"), "n"] == 2
    assert d.loc[("c", "a"), "delta"] == pytest.approx(((0.48 - 0.55) + (0.49 - 0.58)) / 2)


def test_delta_table_with_no_common_seeds_is_undecided():
    runs = pd.DataFrame([{"variant": "baseline", "seed": 0, "status": "ok", "micro_f1": 0.5},
                         {"variant": "a", "seed": 1, "status": "ok", "micro_f1": 0.6}])
    d = delta_table(runs, [("a", "baseline", "vs_baseline")])
    assert d.loc[0, "n"] == 0 and d.loc[0, "verdict"] == UNDECIDED


def test_between_studies_pairs_by_seed_and_flags_a_shift():
    from tricks.analysis.stats import between_studies

    def table(acc):   # acc: {variant: {seed: value}}
        return pd.DataFrame([{"variant": v, "seed": s, "status": "ok", "micro_f1": x}
                             for v, d in acc.items() for s, x in d.items()])

    a = table({"base": {0: 0.70, 1: 0.72, 2: 0.68, 3: 0.71}, "trick": {0: 0.75, 1: 0.74, 2: 0.73}})
    # B: base unchanged up to noise of +-0.002; trick 2 points lower on every seed; an extra seed 4 in B
    b = table({"base": {0: 0.702, 1: 0.718, 2: 0.681, 3: 0.709, 4: 0.9}, "trick": {0: 0.73, 1: 0.72, 2: 0.71}})
    t, overall = between_studies(a, b, ["base", "trick"])
    base, trick = t.set_index("variant").loc["base"], t.set_index("variant").loc["trick"]
    assert base["n"] == 4 and base["seeds"] == "0,1,2,3"          # seed 4 has no partner in A
    assert base["n_b"] == 5 and base["mean_b"] == pytest.approx((0.702 + 0.718 + 0.681 + 0.709 + 0.9) / 5)
    assert base["delta"] == pytest.approx(0.0) and base["verdict"] == NOISE
    assert trick["delta"] == pytest.approx(-0.02) and trick["verdict"] == REGRESSION
    assert overall["n"] == 7 and overall["delta"] == pytest.approx(-0.06 / 7)


def test_holm_adjustment_against_hand_computed_values():
    from tricks.analysis.stats import holm

    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 4*0.01, max(3*0.03, .04), max(2*0.04, .09), max(1*0.5, .09)
    assert holm([0.01, 0.04, 0.03, 0.5]).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    out = holm([0.2, float("nan"), 0.01])           # NaN is not part of the family
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_minimum_detectable_effect_and_seeds_needed():
    from scipy import stats as sps

    from tricks.analysis.stats import power

    p = power(5, 0.01)
    # the MDE solves: power of a two-sided paired t-test with n = 5 at effect d (in sds) = 0.8
    d = p["mde"] / 0.01
    nc = d * math.sqrt(5)
    crit = sps.t.ppf(0.975, 4)
    achieved = 1 - sps.nct.cdf(crit, 4, nc) + sps.nct.cdf(-crit, 4, nc)
    assert achieved == pytest.approx(0.8, abs=1e-4) and d == pytest.approx(1.682, abs=1e-3)
    assert power(5, 0.01)["seeds_for_target"] == 34        # 0.5 points at 1 point of spread: d = 0.5
    assert math.isnan(power(1, 0.01)["mde"]) and power(3, 0.0) == {"mde": 0.0, "seeds_for_target": 2}


def test_probability_of_improvement_and_clipped_intervals():
    from tricks.analysis.stats import clip, prob_improvement, summarize

    assert prob_improvement([0.5, 0.6, 0.7], [0.4, 0.6, 0.8]) == pytest.approx(0.5)   # win, tie (half), loss
    assert clip(-0.7397, 1.5897, 0.0, 1.0) == (0.0, 1.0)
    runs = pd.DataFrame([{"variant": "v", "seed": s, "status": "ok", "micro_f1": a, "macro_f1": a, "accuracy": a}
                         for s, a in enumerate([0.2, 0.99])])
    row = summarize(runs, ["v"]).iloc[0]
    assert row["micro_f1_ci_low"] == 0.0 and row["micro_f1_ci_high"] == 1.0   # 2 seeds: t-interval past [0, 1]


def test_verdicts_use_holm_over_the_family():
    from tricks.analysis.stats import delta_table

    base = [0.50, 0.52, 0.51, 0.49, 0.50]
    rows = [{"variant": "b", "seed": s, "status": "ok", "micro_f1": a} for s, a in enumerate(base)]
    rows += [{"variant": "x", "seed": s, "status": "ok", "micro_f1": a + d}
             for s, (a, d) in enumerate(zip(base, [0.02, 0.035, 0.01, 0.03, 0.02]))]
    runs = pd.DataFrame(rows)
    alone = delta_table(runs, [("x", "b", "vs_baseline")])
    assert alone["t_p"][0] < 0.05 and alone["verdict"][0] == "improvement"
    # the same comparison in a family of 20 (19 others with p = 1): Holm multiplies its p by 20
    family = [("x", "b", "vs_baseline")] + [("b", "b", "vs_baseline")] * 19
    many = delta_table(runs, family)
    assert many["p_holm"][0] == pytest.approx(min(1.0, 20 * alone["t_p"][0]))
    assert many["verdict"][0] == "within noise"
    assert (many["family"] == "comparisons").all() and (many["family_size"] == 20).all()   # deltas.csv names it
    assert alone["family_size"][0] == 1

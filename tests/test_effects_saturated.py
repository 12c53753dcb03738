"""Every term a full factorial and its seeds allow: a three-factor interaction recovered from a synthetic
2^4 study (the saturated model with seed blocks, the same pooled and per-seed intervals as the main
effects, Holm over all 15 terms), the model with fewer complete seeds and what it assumes, and the
exploratory conditional contrasts with their per-seed intervals (scripted runs: no training)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tricks.analysis.conditional import COLUMNS, FAMILY, conditional, conditional_findings, conditional_table
from tricks.analysis.effects import assumptions, coded, effects
from tricks.analysis.stats import holm
from tricks.specs.designs import Factor, generate

NAMES = ("norm", "exp_lr", "kaiming", "conv_dropout")
DESIGN = generate("factorial", [Factor(n, ()) for n in NAMES]).to_dict()
# true effects (off -> on, metric units), the three-factor one as large as the two-factor ones
TRUE = {"norm": 0.027, "kaiming": 0.0175, "norm*kaiming": -0.024, "kaiming*conv_dropout": 0.0097,
        "norm*exp_lr*kaiming": -0.0077}


def column(x: np.ndarray, term: str) -> float:
    return float(np.prod([x[NAMES.index(f)] for f in term.split("*")]))


def synthetic(seeds=range(5), noise=0.002, rng_seed=1) -> pd.DataFrame:
    names, rows = coded(DESIGN)
    rng = np.random.default_rng(rng_seed)
    return pd.DataFrame([{"variant": v, "seed": s, "status": "ok",
                          "micro_f1": 0.68 + 0.01 * s + sum(e * column(x, t) / 2 for t, e in TRUE.items())
                          + rng.normal(0, noise)} for s in seeds for v, x in rows.items()])


def test_a_three_factor_interaction_is_recovered_with_both_intervals_and_holm_over_every_term():
    runs = synthetic()
    e = effects(runs, DESIGN).set_index("term")
    assert len(e) == 15 and (e["family"] == "effects").all() and (e["family_size"] == 15).all()
    assert list(e["order"]) == [1] * 4 + [2] * 6 + [3] * 4 + [4]
    assert (e.loc[e["order"] == 3, "kind"] == "3-factor interaction").all()
    assert e.loc["norm*exp_lr*kaiming*conv_dropout", "kind"] == "4-factor interaction"
    assert (e["aliases"] == "").all()                      # a full factorial: nothing aliased, nothing assumed
    three = e.loc["norm*exp_lr*kaiming"]
    assert three["ci_low"] <= TRUE["norm*exp_lr*kaiming"] <= three["ci_high"]
    assert three["robust_low"] <= TRUE["norm*exp_lr*kaiming"] <= three["robust_high"]
    assert three["robust_seeds"] == 5 and three["verdict"] == "regression"
    for term, row in e.iterrows():                         # the rest: near its truth, zero where none
        assert row["effect"] == pytest.approx(TRUE.get(term, 0.0), abs=0.003), term
        if term not in TRUE:
            assert row["verdict"] == "within noise", term
    # the per-seed estimate of a*b*c in one seed is that seed's contrast: mean where its column is +1 minus -1
    names, rows = coded(DESIGN)
    contrasts = []
    for _, g in runs.groupby("seed"):
        sign = np.array([column(rows[v], "norm*exp_lr*kaiming") for v in g["variant"]])
        contrasts.append(g["micro_f1"][sign > 0].mean() - g["micro_f1"][sign < 0].mean())
    c = np.array(contrasts)
    half = sps.t.ppf(0.975, 4) * c.std(ddof=1) / math.sqrt(5)
    assert (three["robust_low"], three["robust_high"]) == pytest.approx((c.mean() - half, c.mean() + half), rel=1e-9)
    deciding = np.maximum(e["p"], e["robust_p"]).to_numpy()
    assert e["p_holm"].to_numpy() == pytest.approx(holm(deciding))   # one family: all 15 terms


def test_the_pooled_error_of_the_saturated_model_is_the_term_by_seed_residual():
    import statsmodels.formula.api as smf

    runs = synthetic()
    names, rows = coded(DESIGN)
    t = runs.assign(**{n: [rows[v][i] for v in runs["variant"]] for i, n in enumerate(names)})
    fit = smf.ols("micro_f1 ~ C(seed) + norm * exp_lr * kaiming * conv_dropout", data=t).fit()
    assert fit.df_resid == (16 - 1) * (5 - 1)
    e = effects(runs, DESIGN).set_index("term")
    key = "norm:exp_lr:kaiming"
    assert e.loc["norm*exp_lr*kaiming", "effect"] == pytest.approx(2 * fit.params[key], abs=1e-12)
    assert e.loc["norm*exp_lr*kaiming", "p"] == pytest.approx(fit.pvalues[key], rel=1e-9)
    assert (e.loc["norm*exp_lr*kaiming", ["ci_low", "ci_high"]].to_numpy(dtype=float)
            == pytest.approx(2 * fit.conf_int().loc[key].to_numpy(), abs=1e-12))


def test_with_one_complete_seed_only_two_factor_terms_are_fitted_and_the_rest_is_assumed_negligible():
    runs = synthetic(seeds=(0,))
    e = effects(runs, DESIGN)
    assert list(e["order"]) == [1] * 4 + [2] * 6 and (e["verdict"] == "too few seeds").all()
    assert e["ci_low"].notna().all() and (e["family_size"] == 0).all()
    said = assumptions(runs, DESIGN)
    assert said[0].startswith("Fewer than 2 seeds ran the whole design") and "norm*exp_lr*kaiming" in said[0]
    assert "norm*exp_lr*kaiming*conv_dropout form the pooled error and are assumed negligible" in said[0]
    assert assumptions(synthetic(), DESIGN) == [
        "Every term the design separates is estimated (15: the saturated model with seed blocks; 5 seeds ran the "
        "whole design); a full factorial has no alias chains, so nothing is assumed negligible."]


def test_a_fractional_designs_assumptions_name_its_defining_relation():
    d = generate("fractional", [Factor(f"f{i}", ()) for i in range(5)], resolution=4).to_dict()
    names, rows = coded(d)
    runs = pd.DataFrame([{"variant": v, "seed": s, "status": "ok", "micro_f1": 0.5 + 0.01 * s + 0.001 * i}
                         for s in (0, 1) for i, v in enumerate(rows)])
    said = assumptions(runs, d)
    assert said[1].startswith("Defining relation: I = ") and "sum of the effects of its alias chain" in said[1]
    assert len(effects(runs, d)) == len(rows) - 1          # saturated: one term per chain


def test_conditional_contrasts_have_per_seed_intervals_and_are_exploratory():
    runs = synthetic()
    t = conditional_table(runs, DESIGN)
    assert list(t.columns) == COLUMNS and (t["family"] == FAMILY).all() and t["family_size"].isna().all()
    assert len(t) == 4 * 3 * 2 + 4 * 3 * 4               # each factor given each level of 1 and of 2 others
    # kaiming with norm off: its effect + its interaction with norm at norm = -1 (others average out)
    row = conditional(runs, DESIGN, "kaiming", {"norm": False})
    assert row["effect"] == pytest.approx(TRUE["kaiming"] - TRUE["norm*kaiming"], abs=0.003)
    assert row["ci_low"] < row["effect"] < row["ci_high"] and row["seeds"] == 5 and row["given"] == "norm off"
    # by hand: the contrast within each seed, then a t-interval over the 5 seeds
    names, rows = coded(DESIGN)
    per = []
    for _, g in runs.groupby("seed"):
        at = g[[rows[v][0] < 0 for v in g["variant"]]]
        on = np.array([rows[v][2] > 0 for v in at["variant"]])
        per.append(at["micro_f1"][on].mean() - at["micro_f1"][~on].mean())
    res = sps.ttest_1samp(per, 0.0)
    half = sps.t.ppf(0.975, 4) * np.std(per, ddof=1) / math.sqrt(5)
    assert (row["ci_low"], row["ci_high"], row["p"]) == pytest.approx(
        (np.mean(per) - half, np.mean(per) + half, res.pvalue), rel=1e-9)
    # two levels held: the three-factor term enters, with the sign of the held levels
    two = conditional(runs, DESIGN, "kaiming", {"norm": False, "exp_lr": True})
    expected = TRUE["kaiming"] - TRUE["norm*kaiming"] - TRUE["norm*exp_lr*kaiming"]
    assert two["effect"] == pytest.approx(expected, abs=0.004) and two["given"] == "norm off, exp_lr on"
    said = conditional_findings(t, "conv_dropout", "kaiming")
    assert said.startswith("conv_dropout with kaiming on +") and ", off " in said and "exploratory" in said


def test_conditional_contrasts_of_a_fractional_design_are_not_computed():
    d = generate("fractional", [Factor(f"f{i}", ()) for i in range(6)], resolution=4).to_dict()
    assert conditional_table(pd.DataFrame(columns=["variant", "seed", "status", "micro_f1"]), d).empty
    with pytest.raises(KeyError, match="factors: norm, exp_lr, kaiming, conv_dropout"):
        conditional(synthetic(), DESIGN, "kaiming", {"kaiming": True})

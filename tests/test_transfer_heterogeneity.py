"""The transfer heterogeneity test and the pooled interval are calibrated where the old ones were not: in a
small simulation with no true effect anywhere (3 workloads x 3 seeds of per-seed paired deltas, as in the
committed transfer study), the heterogeneity test rejects about 5% of the time at 0.05 and the pooled
Hartung-Knapp interval covers zero about 95% of the time; Cochran's Q, which takes each workload's 3-seed
variance as known, rejects several times as often. No training."""

import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from tricks.analysis import transfer_stats as P

SIMULATIONS = 2000      # binomial SE of a 5% rate: 0.49 points


def simulate(spreads, seeds=3, rng_seed=0):
    """(heterogeneity rejections, equal-variance F rejections, Q-test rejections, pooled-interval coverage of 0)
    as rates over SIMULATIONS studies with no true effect: each workload's per-seed deltas ~ N(0, spread)."""
    rng = np.random.default_rng(rng_seed)
    het = equal = q = cover = 0
    for _ in range(SIMULATIONS):
        groups = [rng.normal(0.0, s, seeds) for s in spreads]
        h = P.heterogeneity(groups)
        het += h["het_p"] < 0.05
        equal += h["het_p_equal"] < 0.05
        d = np.array([g.mean() for g in groups])
        v = np.array([g.var(ddof=1) / seeds for g in groups])
        q += combine_effects(d, v, method_re="pm").test_homogeneity().pvalue < 0.05
        u = P.unweighted(d)
        cover += u["ci_low"] <= 0.0 <= u["ci_high"]
    return het / SIMULATIONS, equal / SIMULATIONS, q / SIMULATIONS, cover / SIMULATIONS


def test_with_equal_seed_spreads_the_heterogeneity_tests_size_is_near_5_percent():
    het, equal, q, cover = simulate((1.0, 1.0, 1.0))
    assert het == pytest.approx(0.05, abs=0.02)           # Welch: slightly conservative with 3 seeds
    assert equal == pytest.approx(0.05, abs=0.015)        # the equal-variance F is exact here
    assert q > 0.12                                       # Cochran's Q with 3-seed variances taken as known
    assert cover == pytest.approx(0.95, abs=0.015)        # the unweighted mean's Hartung-Knapp t-interval


def test_with_unequal_seed_spreads_welchs_test_keeps_its_size_and_the_equal_variance_f_does_not():
    # one workload's seeds spread 4x to 6x as far as the others' (the committed study's resnet8 vs tf_cnn)
    het, equal, q, cover = simulate((0.5, 0.7, 3.0))
    assert het == pytest.approx(0.05, abs=0.02)
    assert equal > 0.08 and q > 0.12
    assert cover >= 0.93


def test_edge_cases_of_the_heterogeneity_test():
    one = P.heterogeneity([[0.01, 0.02], []])
    assert np.isnan(one["het_p"]) and one["het_df1"] == 0
    flat = P.heterogeneity([[0.01, 0.01], [0.01, 0.01]])
    assert flat["het_p"] == 1.0 and flat["het_f"] == 0.0
    apart = P.heterogeneity([[0.01, 0.01], [0.03, 0.03]])
    assert apart["het_p"] == 0.0 and apart["het_f"] == np.inf
    single_seeds = P.heterogeneity([[0.01], [0.02], [0.05, 0.06]])   # Welch needs 2 seeds everywhere
    assert single_seeds["het_method"] == P.EQUAL_F and single_seeds["het_df2"] == 1

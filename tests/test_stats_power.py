"""The minimum detectable effect at Holm's strictest step (mde_holm) and the test set's own sampling
uncertainty (Wilson interval), on scripted numbers checked by hand (no training)."""

import math

import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from tricks.analysis.stats import ALPHA, comparisons, delta_table, detectable, wilson_interval

BASE = [0.70, 0.71, 0.69, 0.70, 0.72]
STEPS = {"a": [0.010, 0.020, 0.030, 0.000, 0.040],   # mean 0.02, std 0.0158
         "b": [0.000, -0.010, 0.005, 0.010, -0.005],
         "c": [0.030, 0.032, 0.028, 0.031, 0.029]}


def scripted_runs() -> pd.DataFrame:
    rows = [{"variant": "base", "seed": s, "status": "ok", "micro_f1": a} for s, a in enumerate(BASE)]
    rows += [{"variant": v, "seed": s, "status": "ok", "micro_f1": a + d}
             for v, steps in STEPS.items() for s, (a, d) in enumerate(zip(BASE, steps))]
    return pd.DataFrame(rows)


def two_sided_power(d: float, n: int, alpha: float) -> float:
    """Power of a two-sided one-sample (paired) t-test at effect d (in sds), straight from scipy's nct."""
    crit = sps.t.isf(alpha / 2, n - 1)
    return sps.nct.sf(crit, n - 1, d * math.sqrt(n)) + sps.nct.cdf(-crit, n - 1, d * math.sqrt(n))


def test_mde_holm_is_the_80_percent_power_effect_at_alpha_over_m():
    variants = [{"name": "base"}, *({"name": v, "base": "base"} for v in STEPS)]
    table = delta_table(scripted_runs(), comparisons(variants, "base")).set_index("variant")
    assert list(table.index) == ["a", "b", "c"]                       # m = 3 comparisons in the family
    d_holm = TTestPower().solve_power(effect_size=None, nobs=5, alpha=ALPHA / 3, power=0.8, alternative="two-sided")
    d_one = TTestPower().solve_power(effect_size=None, nobs=5, alpha=ALPHA, power=0.8, alternative="two-sided")
    assert d_holm == pytest.approx(2.2916, abs=1e-4) and d_one == pytest.approx(1.6820, abs=1e-4)
    for v, steps in STEPS.items():
        sd = pd.Series(steps).std(ddof=1)
        row = table.loc[v]
        assert row["delta_std"] == pytest.approx(sd)
        assert row["mde_holm"] == pytest.approx(d_holm * sd, rel=1e-6)   # in accuracy units, like mde
        assert row["mde"] == pytest.approx(d_one * sd, rel=1e-6)
        assert row["mde_holm"] > row["mde"]
    assert table.loc["a", "mde_holm"] == pytest.approx(2.2916 * 0.0158114, rel=1e-4)   # 3.62 points
    assert two_sided_power(table.loc["a", "mde_holm"] / table.loc["a", "delta_std"], 5, ALPHA / 3) == \
        pytest.approx(0.8, abs=1e-6)


def test_mde_holm_with_three_seeds_and_thirteen_comparisons_is_the_true_root():
    # statsmodels' solve_power returns 5.5 sds here (scipy's noncentral t is NaN far in the wrong tail);
    # the root of the power equation is 11.81 sds, where the test has 80% power
    d = detectable(3, 1.0, ALPHA / 13)
    assert d == pytest.approx(11.8076, abs=1e-3)
    upper = sps.nct.sf(sps.t.isf(ALPHA / 26, 2), 2, d * math.sqrt(3))   # the wrong tail is below 1e-20 here
    assert upper == pytest.approx(0.8, abs=1e-6)
    assert detectable(3, 0.0, ALPHA / 13) == 0.0 and math.isnan(detectable(1, 0.01, ALPHA))


def test_the_mde_grows_with_the_family():
    one, family = detectable(5, 0.01), [detectable(5, 0.01, ALPHA / m) for m in (2, 5, 13, 40)]
    assert one < family[0] < family[1] < family[2] < family[3]


def test_wilson_half_width_of_70_percent_on_10000_images_is_0_90_points():
    low, high = wilson_interval(0.70, 10_000)
    z, n, p = sps.norm.isf(0.025), 10_000, 0.70   # the Wilson score interval by hand
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    assert 100 * (high - low) / 2 == pytest.approx(0.898, abs=1e-3)
    assert all(math.isnan(x) for x in wilson_interval(float("nan"), 10_000) + wilson_interval(0.7, 0))

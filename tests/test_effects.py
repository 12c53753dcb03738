"""Effects of a factorial design on synthetic results with known effects (no training), the report's
effects section and figures, and the notebook API."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tricks.analysis.effects import EFFECT_COLUMNS, NOT_ESTIMABLE, coded, effects, estimable
from tricks.analysis.report import effect_findings
from tricks.specs.designs import Factor, generate

from .conftest import REPO, write_fake_study

TRUE_MAIN = {"f0": 0.03, "f1": 0.0, "f2": 0.01, "f3": 0.0, "f4": -0.02, "f5": 0.0}
TRUE_F0_F2 = 0.01


def synthetic(design: dict, seeds=(0, 1, 2), noise=0.003, rng_seed=0) -> pd.DataFrame:
    names, rows = coded(design)
    rng = np.random.default_rng(rng_seed)
    recs = []
    for s in seeds:
        for v, x in rows.items():
            y = 0.6 + 0.01 * s + sum(TRUE_MAIN[n] * xi / 2 for n, xi in zip(names, x)) \
                + TRUE_F0_F2 * x[0] * x[2] / 2 + rng.normal(0, noise)
            recs.append({"variant": v, "seed": s, "status": "ok", "micro_f1": y})
    return pd.DataFrame(recs)


def test_effects_recover_known_main_effects_and_an_interaction_within_their_intervals():
    d = generate("fractional", [Factor(f"f{i}", ()) for i in range(6)], resolution=4).to_dict()
    # 5 seeds: each verdict also needs the per-seed interval (4 df), too wide on 3 seeds for Holm over 13
    e = effects(synthetic(d, seeds=range(5)), d).set_index("term")
    for name, true in TRUE_MAIN.items():
        row = e.loc[name]
        assert row["ci_low"] <= true <= row["ci_high"] and row["robust_low"] <= true <= row["robust_high"]
        assert row["verdict"] == ("within noise" if true == 0 else "improvement" if true > 0 else "regression")
    inter = e.loc["f0*f2"]
    assert inter["ci_low"] <= TRUE_F0_F2 <= inter["ci_high"] and inter["verdict"] == "improvement"
    # the resolution-IV design cannot tell these apart: the chain holds every word, four-factor ones too
    assert inter["aliases"] == "f1*f4 = f0*f3*f4*f5 = f1*f2*f3*f5"
    assert e.loc["f0", "aliases"] == "f1*f2*f4 = f1*f3*f5 = f0*f2*f3*f4*f5"
    # 5 complete seeds: the saturated model, all 15 chains of the 16-run design (two named by a 3-factor word)
    assert (e["kind"] == "main").sum() == 6 and (e["kind"] == "interaction").sum() == 7
    assert (e["kind"] == "3-factor interaction").sum() == 2 and (e["family_size"] == 15).all()


def test_a_partial_study_reports_no_effects_rather_than_arbitrary_ones():
    # One seed of a 16-variant resolution-IV design with 6 variants missing, as in a study stopped early:
    # 10 runs cannot pin down 14 coefficients, so least squares would return one of many solutions.
    d = generate("fractional", [Factor(f"f{i}", ()) for i in range(6)], resolution=4).to_dict()
    runs = synthetic(d, seeds=(0,))
    e = effects(runs[runs["variant"].isin(sorted(runs["variant"])[:10])], d)
    assert list(e.columns) == EFFECT_COLUMNS and len(e) == 13
    assert e["effect"].isna().all() and e["p_holm"].isna().all() and (e["verdict"] == NOT_ESTIMABLE).all()
    assert effect_findings(e) == ["Effects: not estimable yet; the finished runs do not cover the design "
                                  "(see Missing runs)."]
    # The whole design in one seed is enough for estimates with pooled intervals (16 runs, 14 coefficients),
    # not for a verdict: one seed has no per-seed interval.
    full = effects(runs, d)
    assert full["effect"].notna().all() and full["ci_low"].notna().all() and full["robust_low"].isna().all()
    assert (full["verdict"] == "too few seeds").all()


def test_effect_findings_name_the_effects_beyond_noise_with_their_deciding_intervals():
    nan = float("nan")
    e = pd.DataFrame([["a", "main", 0.03, 0.02, 0.04, 1e-4, 0.01, 0.05, 2e-3, 3, "per-seed", 1e-2, "improvement", ""],
                      ["b", "main", -0.02, -0.03, -0.01, 1e-3, -0.025, -0.015, 5e-4, 3, "pooled", 4e-3, "regression",
                       ""],
                      ["c", "main", 0.001, -0.004, 0.006, 0.6, -0.01, 0.012, 0.7, 3, "per-seed", 1.0, "within noise",
                       ""],
                      ["a*b", "interaction", 0.011, 0.004, 0.018, 2e-3, nan, nan, nan, 1, "per-seed", nan,
                       "too few seeds", ""],
                      ["a*c", "interaction", 0.002, -0.003, 0.007, 0.4, -0.005, 0.009, 0.5, 3, "per-seed", 1.0,
                       "within noise", ""]], columns=EFFECT_COLUMNS[:EFFECT_COLUMNS.index("aliases") + 1])
    assert effect_findings(e) == [
        "Effect verdicts: each effect's deciding p is the larger of its pooled least-squares p (error pooled over "
        "all terms and seeds) and its per-seed p (a t-test over its estimates in the 3 seeds that ran the whole "
        "design: its own seed-to-seed spread as its error), Holm-adjusted over the 5 effects; the per-seed p "
        "decided 4 of the 5. Each interval below is the deciding one (95%, not adjusted).",
        "Main effects beyond seed noise: **a** +3.00 pts [+1.00, +5.00] per-seed; "
        "**b** -2.00 pts [-3.00, -1.00] pooled.",
        "Main effects within noise: c (+0.10 pts [-1.00, +1.20] per-seed).",
        "Two-factor interactions within noise: a*c (+0.20 pts [-0.50, +0.90] per-seed).",
        "No detectable effect as a main effect or in any two-factor chain this design estimates (each within "
        "noise, its interval covering zero even before Holm): c.",
        "No verdict (fewer than 2 seeds ran the whole design, so there is no per-seed interval): a*b."]
    assert effect_findings(None) == []


def test_a_full_factorial_estimates_every_two_factor_interaction_without_aliases():
    x = 2 * generate("factorial", [Factor(f"f{i}", ()) for i in range(3)]).rows - 1
    terms, aliases = estimable(x, ["a", "b", "c"])
    assert terms == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)] and all(not a for a in aliases.values())


def test_the_report_of_a_designed_study_has_effects_and_figures(tmp_path):
    d = generate("factorial", [Factor(n, ({"name": "x"},)) for n in ("norm", "drop")])
    names = d.names()
    assert names == ["baseline", "drop", "norm", "norm+drop"]
    level = {"baseline": 0.40, "norm": 0.46, "drop": 0.41, "norm+drop": 0.50}
    accs = {(v, s): level[v] + 0.01 * s for s in (0, 1, 2) for v in names}
    out = write_fake_study(tmp_path / "f", accs, list(zip(names, d.bases())), [0, 1, 2])
    manifest = json.loads((out / "study.json").read_text())
    manifest["spec"]["design"] = d.to_dict()
    (out / "study.json").write_text(json.dumps(manifest))
    r = subprocess.run([sys.executable, "-m", "tricks", "figures", "--results", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    e = pd.read_csv(out / "effects.csv").set_index("term")
    # norm adds 6 points without drop and 9 with it: effect 7.5, drop 2.5, interaction (9 - 6) / 2 = 1.5
    assert e.loc["norm", "effect"] == pytest.approx(0.075, abs=1e-9)
    assert e.loc["drop", "effect"] == pytest.approx(0.025, abs=1e-9)
    assert e.loc["norm*drop", "effect"] == pytest.approx(0.015, abs=1e-9)
    assert (out / "figures" / "effects.png").stat().st_size > 10_000
    assert (out / "figures" / "interactions.png").stat().st_size > 10_000
    report = (out / "REPORT.md").read_text()
    assert "## Design" in report and "## Effects (least squares, seed as a block; and per seed)" in report
    assert "| norm*drop | interaction |" in report


def test_the_notebook_api_returns_tables_without_importing_torch(tmp_path):
    out = write_fake_study(tmp_path / "s", {("baseline", 0): 0.4, ("baseline", 1): 0.42, ("norm", 0): 0.46,
                                            ("norm", 1): 0.47}, [("baseline", None), ("norm", "baseline")], [0, 1])
    code = ("import sys, tricks; s = tricks.load_study(sys.argv[1]); "
            "print(len(s.runs), len(s.summary), len(s.deltas), s.effects is None, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4", "2", "1", "True", "False"]

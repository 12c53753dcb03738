"""The transfer report of a multi-workload study (issue 24, item 5) from stored runs: the workload views,
transfer.csv's per-workload rows and pooled random-effects estimate (against statsmodels' combine_effects
on deltas computed here by hand), the transfer classes, the findings, the forest plot and the reports
(fake runs: no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.oneway import anova_oneway

from tricks.analysis import transfer as X
from tricks.analysis import transfer_stats as P
from tricks.analysis.api import load_study as api_load
from tricks.analysis.report import build_report
from tricks.analysis.stats import IMPROVEMENT, NOISE, REGRESSION, UNDECIDED, comparisons, delta_table, holm, summarize
from tricks.analysis.studydata import load_study
from tricks.errors import TricksError
from tricks.running.records import run_arm, run_path, run_stem, write_json

from .conftest import CLASSES3, fake_record, write_fake_study

WORKLOADS = [("small", "tf_cnn", 3, None, 122_570), ("wide", "cifar10_3c3d", 2, 200, 895_210),
             ("res", "resnet8", 2, 150, 78_042)]   # name, model, epochs, train_subset, parameters
VARIANTS = [("baseline", None), ("helps", "baseline"), ("flips", "baseline"), ("depends", "baseline"),
            ("flat", "baseline")]
SEEDS = [0, 1, 2, 3]
BASE = {"small": (.60, .62, .61, .63), "wide": (.55, .57, .56, .58), "res": (.70, .69, .71, .72)}
# Each trick's accuracy minus the baseline's, per workload and seed (multiples of 0.01: fake_record's scores).
DELTA = {"helps": {"small": (.05, .06, .05, .07), "wide": (.04, .05, .04, .05), "res": (.03, .04, .03, .04)},
         "flips": {"small": (.05, .06, .05, .06), "wide": (-.04, -.05, -.04, -.05), "res": (.01, -.01, .00, .02)},
         "depends": {"small": (.06, .05, .07, .06), "wide": (.01, -.01, .00, .01), "res": (-.01, .02, .00, -.01)},
         "flat": {"small": (.01, -.01, .00, .01), "wide": (-.01, .01, .00, .00), "res": (.00, .01, -.01, .01)}}
CLASS = {"helps": X.TRANSFERS, "flips": X.REVERSES, "depends": X.DEPENDS, "flat": X.QUIET}


def acc(v: str, w: str, i: int) -> float:
    return round(BASE[w][i] + (DELTA[v][w][i] if v != "baseline" else 0.0), 2)


def write_multi_study(out, skip=()):
    """A multi-workload results directory as 'tricks ablation' writes it (``skip``: (variant, workload, seed)
    runs left unfinished)."""
    runs = [{"variant": v, "seed": s, "settings_key": f"k-{v}-{w}-{s}", "workload": w}
            for s in SEEDS for w, *_ in WORKLOADS for v, _ in VARIANTS]
    write_json(out / "study.json", {
        "spec": {"name": "transfer", "description": "a fake transfer study", "path": "transfer.toml",
                 "variants": [{"name": v, "base": b, "description": "", "tricks": []} for v, b in VARIANTS]},
        "workloads": [{"name": w, "model": m, "epochs": e if w != "small" else None, "train_subset": t}
                      for w, m, e, t, _ in WORKLOADS],
        "seeds": SEEDS, "epochs": 3, "batch_size": 64, "train_subset": None, "precision": "fp32",
        "dataset": {"kind": "imagefolder", "root": "/x", "train_images": 300, "test_images": 300,
                    "classes": CLASSES3, "sha256": "0" * 64},
        "device": "cpu", "workers": 2, "runs": runs})
    for w, model, epochs, subset, params in WORKLOADS:
        for v, _ in VARIANTS:
            for i, s in enumerate(SEEDS):
                if (v, w, s) in skip:
                    continue
                rec = fake_record(v, s, acc(v, w, i), f"k-{v}-{w}-{s}", epochs=epochs)
                rec.update(workload=w, parameters=params, train_images=subset or 300,
                           settings={"model": model, "epochs": epochs, "train_subset": subset})
                write_json(run_path(out, run_stem(run_arm(v, None, w), s)), rec)
    return out


@pytest.fixture
def multi(tmp_path):
    return write_multi_study(tmp_path / "multi")


def by_hand(v: str) -> tuple[np.ndarray, np.ndarray]:
    """Each workload's mean paired delta and its variance std^2 / n, from the scripted accuracies."""
    d = [np.array([acc(v, w, i) - acc("baseline", w, i) for i in range(len(SEEDS))]) for w, *_ in WORKLOADS]
    return np.array([x.mean() for x in d]), np.array([x.var(ddof=1) / len(x) for x in d])


def test_workloads_and_views_of_a_multi_workload_study(multi):
    data = load_study(multi)
    assert X.is_multi(data.manifest) and [w["name"] for w in X.workloads_of(data.manifest)] == ["small", "wide", "res"]
    assert len(data.records) == 60 and not data.missing
    view = X.workload_view(data, "wide")
    assert "workloads" not in view.manifest and not X.is_multi(view.manifest)
    assert {r["workload"] for r in view.records} == {"wide"} and len(view.records) == 20
    assert len(view.manifest["runs"]) == 20 and (view.manifest["epochs"], view.manifest["train_subset"]) == (2, 200)
    assert X.workload_view(data, "small").manifest["epochs"] == 3
    with pytest.raises(TricksError, match="no workload 'nope'; its workloads: small, wide, res"):
        X.workload_view(data, "nope")
    plain = write_fake_study(multi.parent / "plain", {(v, s): acc(v, "wide", i) for v, _ in VARIANTS
                                                      for i, s in enumerate(SEEDS)}, VARIANTS, SEEDS)
    alone = load_study(plain)
    pd.testing.assert_frame_equal(summarize(view.runs(), view.order), summarize(alone.runs(), alone.order))
    pairs = comparisons(alone.manifest["spec"]["variants"], alone.reference)
    pd.testing.assert_frame_equal(delta_table(view.runs(), pairs), delta_table(alone.runs(), pairs))
    assert not X.is_multi(alone.manifest) and X.workloads_of(alone.manifest) == []


def test_a_workload_views_missing_runs_are_its_own(tmp_path):
    data = load_study(write_multi_study(tmp_path / "m", skip={("helps", "res", 2), ("flat", "small", 0)}))
    assert sorted(data.missing) == [("flat@small", 0), ("helps@res", 2)]
    assert X.workload_view(data, "res").missing == [("helps@res", 2)]
    assert X.workload_view(data, "wide").missing == []


def test_transfer_table_rows_are_each_workloads_own_deltas(multi):
    data = load_study(multi)
    table = X.transfer_table(data)
    assert list(table.columns) == X.COLUMNS
    assert list(table["workload"]) == ["small", "wide", "res", "pooled"] * 4
    assert list(dict.fromkeys(table["variant"])) == ["helps", "flips", "depends", "flat"]
    for w, *_ in WORKLOADS:   # each per-workload row is that workload's deltas.csv row (Holm over its family)
        own = X.workload_deltas(X.workload_view(data, w)).set_index("variant")
        rows = table[table["workload"] == w].set_index("variant")
        for c in ("delta", "ci_low", "ci_high", "p_holm", "mde_holm", "n"):
            assert rows[c].to_numpy(dtype=float) == pytest.approx(own.loc[rows.index, c].to_numpy(dtype=float))
        assert list(rows["verdict"]) == list(own.loc[rows.index, "verdict"])
    helps = table[table["variant"] == "helps"].set_index("workload")
    assert helps.loc["res", "delta"] == pytest.approx(0.035)
    assert helps.loc["res", "variance"] == pytest.approx(np.var([.03, .04, .03, .04], ddof=1) / 4)
    v = table.set_index(["variant", "workload"])["verdict"]
    assert (v["helps", "small"], v["flips", "wide"], v["depends", "wide"], v["flat", "res"]) == (
        IMPROVEMENT, REGRESSION, NOISE, NOISE)


def per_seed(v: str) -> list[np.ndarray]:
    """Each workload's per-seed paired deltas, from the scripted accuracies."""
    return [np.array([acc(v, w, i) - acc("baseline", w, i) for i in range(len(SEEDS))]) for w, *_ in WORKLOADS]


@pytest.mark.parametrize("variant", ["helps", "flips", "depends", "flat"])
def test_the_pooled_row_is_an_exploratory_unweighted_mean_with_a_hartung_knapp_interval(multi, variant):
    table = X.transfer_table(load_study(multi))
    p = table[(table["variant"] == variant) & (table["workload"] == X.POOLED)].iloc[0]
    eff, var = by_hand(variant)
    # primary: equal weights; Hartung-Knapp with equal weights is the t-interval over the k deltas (k - 1 df)
    equal = combine_effects(eff, np.ones(3), method_re="pm")
    assert p["delta"] == pytest.approx(eff.mean(), abs=1e-12) == pytest.approx(equal.mean_effect_re, abs=1e-12)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx(tuple(equal.conf_int(use_t=True)[3]), abs=1e-12)
    assert p["t_p"] == pytest.approx(sps.ttest_1samp(eff, 0.0).pvalue)
    assert p["k"] == 3 and p["method"].startswith("unweighted mean") and p["note"] == ""
    assert p["family"] == X.EXPLORATORY and p["verdict"] == X.EXPLORATORY and math.isnan(p["p_holm"])
    # secondary: inverse-variance random effects (Paule-Mandel), with its Hartung-Knapp interval
    res = combine_effects(eff, var, method_re="pm")
    assert p["re_delta"] == pytest.approx(res.mean_effect_re, abs=1e-12)
    assert (p["re_ci_low"], p["re_ci_high"]) == pytest.approx(tuple(res.conf_int(use_t=True)[3]), abs=1e-12)
    assert p["tau2"] == pytest.approx(res.tau2, abs=1e-15) and p["tau2"] >= 0
    assert p["i2"] == pytest.approx(max(0.0, res.i2))
    rows = table[(table["variant"] == variant) & (table["workload"] != X.POOLED)]
    assert rows["weight_re"].to_numpy() == pytest.approx(res.weights_rel_re)
    assert rows["weight"].to_numpy() == pytest.approx([1 / 3] * 3)
    # the heterogeneity test: Welch's one-way ANOVA on the per-seed deltas, Holm over the 4 tricks
    welch = anova_oneway(per_seed(variant), use_var="unequal")
    assert (p["het_f"], p["het_p"], p["het_df2"]) == pytest.approx((welch.statistic, welch.pvalue, welch.df[1]),
                                                                    rel=1e-9)
    assert p["het_p_equal"] == pytest.approx(sps.f_oneway(*per_seed(variant)).pvalue, rel=1e-9)
    assert p["het_df1"] == 2 and p["het_method"] == P.WELCH and p["het_family"] == X.HETEROGENEITY
    assert p["het_family_size"] == 4
    pooled = table[table["workload"] == X.POOLED]
    assert p["het_p_holm"] == pytest.approx(holm(pooled["het_p"].to_numpy())[list(pooled["variant"]).index(variant)])
    if variant == "flips":   # opposite effects: heterogeneity far beyond seed noise
        assert p["het_p"] < 0.001 and p["het_p_holm"] < 0.01
    if variant == "flat":
        assert p["het_p"] > 0.05


def test_each_workload_row_names_its_holm_family(multi):
    data = load_study(multi)
    table = X.transfer_table(data)
    w = table[table["workload"] != X.POOLED]
    assert list(w["family"].unique()) == [f"deltas of workload {n}" for n, *_ in WORKLOADS]
    for name, *_ in WORKLOADS:   # the size is the number of p-values that workload's Holm adjusts over
        d = X.workload_deltas(X.workload_view(data, name))
        assert int(d["t_p"].notna().sum()) == 4 and (w.loc[w["workload"] == name, "family_size"] == 4).all()


def test_the_heterogeneity_test_is_the_variant_by_workload_interaction_of_the_paired_two_way_model():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rows = [{"y": acc(v, w, i), "on": float(v != "baseline"), "workload": w, "pair": f"{w}-{i}"}
            for v in ("baseline", "depends") for w, *_ in WORKLOADS for i in range(len(SEEDS))]
    data = pd.DataFrame(rows)   # a block per (workload, seed) pair; the trick's effect equal on every workload or not
    same = smf.ols("y ~ C(pair) + on", data=data).fit()
    per_workload = smf.ols("y ~ C(pair) + on:C(workload)", data=data).fit()
    interaction = anova_lm(same, per_workload).iloc[1]
    het = P.heterogeneity(per_seed("depends"))
    assert het["het_p_equal"] == pytest.approx(interaction["Pr(>F)"], rel=1e-9)
    assert sps.f_oneway(*per_seed("depends")).statistic == pytest.approx(interaction["F"], rel=1e-9)


def test_pooling_needs_two_workloads_with_a_finite_delta():
    rows = pd.DataFrame({"workload": ["a", "b", "c"], "delta": [0.01, math.nan, 0.02], "n": [3, 0, 3],
                         "variance": [1e-5, math.nan, 0.0]})
    p = P.pool(rows, [[0.01, 0.02, 0.0], [], [0.02, 0.02, 0.02]])
    assert p["k"] == 2 and p["delta"] == pytest.approx(0.015) and math.isnan(p["re_delta"])
    assert p["note"] == "left out: b (no delta); not in the random-effects column: c (zero variance)"
    # c has no spread between its seeds: no Welch test, the equal-variance F on (1, 4) df instead
    assert p["het_df1"] == 1 and p["het_df2"] == 4 and p["het_method"] == P.EQUAL_F and math.isfinite(p["het_p"])
    one = P.pool(rows.assign(delta=[0.01, math.nan, math.nan]))
    assert one["k"] == 1 and math.isnan(one["delta"]) and math.isnan(one["het_p"])
    assert one["note"].startswith("fewer than 2 workloads with a finite delta; left out: b (no delta), c (no delta)")
    two = P.pool(rows.assign(variance=[1e-5, math.nan, 2e-5]))
    res = combine_effects(np.array([0.01, 0.02]), np.array([1e-5, 2e-5]), method_re="pm")
    assert two["k"] == 2 and two["re_delta"] == pytest.approx(res.mean_effect_re)
    assert two["note"] == "left out: b (no delta)"


def scripted(verdicts: list[str], deltas: list[float] | None = None) -> pd.DataFrame:
    """A transfer table of one trick with these per-workload verdicts (no pooled row)."""
    deltas = deltas or [0.01 * (1 if v != REGRESSION else -1) for v in verdicts]
    return pd.DataFrame([{"variant": "t", "against": "baseline", "workload": f"w{i}", "model": "m", "n": 3,
                          "delta": d, "ci_low": d - 0.005, "ci_high": d + 0.005, "p_holm": 0.01, "mde_holm": 0.02,
                          "verdict": v} for i, (v, d) in enumerate(zip(verdicts, deltas))], columns=X.COLUMNS)


@pytest.mark.parametrize("verdicts, expected", [
    ([IMPROVEMENT, IMPROVEMENT, IMPROVEMENT], X.TRANSFERS),
    ([REGRESSION, REGRESSION], X.TRANSFERS),
    ([IMPROVEMENT, REGRESSION, NOISE], X.REVERSES),
    ([IMPROVEMENT, NOISE, NOISE], X.DEPENDS),
    ([REGRESSION, NOISE, UNDECIDED], X.DEPENDS),
    ([REGRESSION, REGRESSION, UNDECIDED], X.UNDECIDED),
    ([NOISE, NOISE, NOISE], X.QUIET),
    ([NOISE, UNDECIDED], X.UNDECIDED),
    ([IMPROVEMENT], X.SINGLE),
])
def test_each_transfer_class_on_scripted_verdicts(verdicts, expected):
    v = X.transfer_verdicts(scripted(verdicts)).iloc[0]
    assert v["transfer"] == expected and v["workloads"] == len(verdicts)
    assert v["improvement"] == ";".join(f"w{i}" for i, x in enumerate(verdicts) if x == IMPROVEMENT)
    assert v["regression"] == ";".join(f"w{i}" for i, x in enumerate(verdicts) if x == REGRESSION)
    assert v["evidence"].count("Holm p = 0.01") == len(verdicts)


def test_verdicts_and_findings_of_the_fake_study(multi):
    table = X.transfer_table(load_study(multi))
    verdicts = X.transfer_verdicts(table).set_index("variant")
    assert verdicts["transfer"].to_dict() == CLASS
    assert verdicts.loc["flips", "improvement"] == "small" and verdicts.loc["flips", "regression"] == "wide"
    assert verdicts.loc["depends", "within_noise"] == "wide;res"
    assert verdicts.loc["helps", "delta_min"] == pytest.approx(0.035)
    said = X.transfer_findings(table, verdicts.reset_index())
    assert "paired t-test" in said[0] and "Holm-adjusted within that workload's family" in said[0]
    assert "Heterogeneity: whether a trick's effect differs between the workloads, by a one-way ANOVA" in said[0]
    assert "Holm-adjusted over the 4 tricks" in said[0] and "Pooled rows are exploratory" in said[0]
    assert "(4 comparisons: its deltas.csv)" in said[0] and "Paule-Mandel random effects" in said[0]
    text = "\n".join(said)
    helps = next(s for s in said if s.startswith("**helps** transfers: improvement on every workload"))
    assert "small +5.75 pts [" in helps and "res +3.50 pts [" in helps
    assert "exploratory pooled estimate (unweighted mean of k = 3 workloads) +4.58 pts, Hartung-Knapp 95% CI [" in helps
    assert "effects differ between workloads? Welch ANOVA F = " in helps and "over 4 tricks" in helps
    assert "inverse-variance random effects (secondary) " in helps
    assert "**flips** reverses across workloads (improvement on small" in text and "regression on wide" in text
    assert "**depends** depends on the workload (improvement on small" in text
    flat = next(s for s in said if s.startswith("**flat** is within noise on every workload"))
    assert flat.count("detectable at 80% power after Holm") == 3


def test_the_report_of_a_multi_workload_study(multi):
    path = build_report(multi)
    assert path == multi / "REPORT.md"
    table = pd.read_csv(multi / "transfer.csv")
    assert len(table) == 16 and set(table["workload"]) == {"small", "wide", "res", "pooled"}
    assert (multi / "figures" / "transfer_forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (multi / "summary.csv").exists() and len(pd.read_csv(multi / "runs.csv")) == 60
    for w, *_ in WORKLOADS:
        sub = multi / "workloads" / w
        for name in ("REPORT.md", "summary.csv", "deltas.csv", "deltas_by_epoch.csv", "runs.csv",
                     "figures/deltas.png", "figures/micro_f1.png"):
            assert (sub / name).is_file(), (w, name)
        summary = pd.read_csv(sub / "summary.csv").set_index("variant")
        assert summary.loc["baseline", "micro_f1_mean"] == pytest.approx(np.mean(BASE[w]))
        text = (sub / "REPORT.md").read_text()
        assert text.startswith(f"# Report: transfer, workload {w}") and "(../../REPORT.md)" in text
    assert "epochs: 2" in (multi / "workloads" / "wide" / "REPORT.md").read_text()
    text = path.read_text()
    for part in ("# Transfer report: transfer", "## What was run", "## Transfer findings", "## Transfer table",
                 "## Procedure", "(figures/transfer_forest.png)", "(workloads/res/REPORT.md)",
                 "| wide | `cifar10_3c3d` | imagefolder | 895,210 | 2 | 200 | 20 of 20 |", "**helps** transfers",
                 "Paule-Mandel"):
        assert part in text, part
    kept = ("transfer.csv", "workloads/res/REPORT.md", "workloads/res/deltas.csv")
    before = {p: (multi / p).read_bytes() for p in kept}
    assert build_report(multi).read_text() == text   # regenerating gives the same files
    assert {p: (multi / p).read_bytes() for p in before} == before


def test_a_single_workload_study_has_no_transfer_report(tmp_path):
    study = write_fake_study(tmp_path / "one", {(v, s): acc(v, "small", i) for v, _ in VARIANTS
                                                for i, s in enumerate(SEEDS)}, VARIANTS, SEEDS)
    text = build_report(study).read_text()
    assert not (study / "transfer.csv").exists() and not (study / "workloads").exists()
    assert not (study / "figures" / "transfer_forest.png").exists() and "Transfer" not in text
    s = api_load(study)
    assert s.transfer is None and s.summary is not None
    with pytest.raises(TricksError, match="none \\(a single-workload study\\)"):
        s.workload("small")


def test_the_notebook_api_of_a_multi_workload_study(multi):
    s = api_load(multi)
    pd.testing.assert_frame_equal(s.transfer, X.transfer_table(load_study(multi)))
    res = s.workload("res")
    assert res.name == "transfer" and len(res.runs) == 20
    assert res.summary.set_index("variant").loc["helps", "micro_f1_mean"] == pytest.approx(
        np.mean([acc("helps", "res", i) for i in range(4)]))
    assert list(s.summary.columns[:2]) == ["workload", "variant"] and len(s.summary) == 15
    assert list(s.deltas["workload"].unique()) == ["small", "wide", "res"] and s.effects is None
    with pytest.raises(TricksError, match="its workloads: small, wide, res"):
        s.workload("nope")


def test_a_multi_workload_study_with_no_finished_run_yet_still_reports(tmp_path):
    everything = {(v, w, s) for s in SEEDS for w, *_ in WORKLOADS for v, _ in VARIANTS}
    d = write_multi_study(tmp_path / "m", skip=everything)
    text = build_report(d).read_text()
    assert (d / "transfer.csv").is_file() and "transfer" in text.lower()
    for w, *_ in WORKLOADS:
        assert (d / "workloads" / w / "REPORT.md").is_file()


def test_the_transfer_report_names_each_device_with_its_gpu(multi):
    import json

    for p in (multi / "runs").glob("*@res__*.json"):
        rec = json.loads(p.read_text())
        rec["provenance"] = {**rec.get("provenance", {}), "device": "cuda:0", "gpu": "NVIDIA H200"}
        write_json(p, rec)
    line = next(x for x in build_report(multi).read_text().splitlines() if x.startswith("- device:"))
    assert line.startswith("- device: cpu, cuda:0 / NVIDIA H200; CPU:"), line

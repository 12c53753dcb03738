"""Tuning-aware comparisons (issue 23) from stored runs: the LR chosen on validation per variant, the
default and the tuned views, tuned.csv, the findings and the report's Tuned comparison (fake runs: no
training)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tricks.analysis import tuning as T
from tricks.analysis.api import load_study as api_load
from tricks.analysis.by_epoch import deltas_by_epoch
from tricks.analysis.report import build_report
from tricks.analysis.stats import IMPROVEMENT, NOISE, comparisons, delta_table, summarize
from tricks.analysis.studydata import load_study
from tricks.running.records import run_arm, run_path, run_stem, write_json

from .conftest import CLASSES3, fake_record, write_fake_study

GRID = [5e-4, 1e-3, 2e-3, 4e-3]
SEEDS = [0, 1, 2]
VARIANTS = [("baseline", None, 1e-3), ("trick", "baseline", 1e-3), ("other", "baseline", 1e-3)]
# Test accuracy per (variant, grid value) over seeds 0, 1, 2 (multiples of 0.01: fake_record's scores).
# baseline is best at 1e-3 (its default), trick at 2e-3 (its default is 1e-3), other at 1e-3.
TEST = {"baseline": {5e-4: (.50, .51, .52), 1e-3: (.60, .62, .61), 2e-3: (.58, .59, .57), 4e-3: (.40, .41, .42)},
        "trick": {5e-4: (.55, .54, .56), 1e-3: (.63, .66, .64), 2e-3: (.70, .71, .73), 4e-3: (.50, .52, .51)},
        "other": {5e-4: (.45, .47, .46), 1e-3: (.62, .61, .65), 2e-3: (.60, .60, .61), 4e-3: (.30, .31, .33)}}


def table(values: dict) -> dict:
    """{(variant, lr, seed): value} from {variant: {lr: per-seed values}}."""
    return {(v, lr, s): x for v, by_lr in values.items() for lr, xs in by_lr.items() for s, x in zip(SEEDS, xs)}


def write_tuned_study(out, val: dict, test: dict | None = None, variants=VARIANTS, seeds=SEEDS, grid=GRID,
                      select_on="val_accuracy", diverged=(), val_loss: dict | None = None):
    """A tuned results directory as 'tricks ablation' writes it: every variant at every grid value and seed.

    ``val[(variant, lr, seed)]``: the run's final-epoch validation accuracy (absent: the run is missing);
    ``test``: its test accuracy (default: the validation accuracy); ``val_loss``: its final-epoch
    validation loss (default 1 - validation accuracy); ``diverged``: (variant, lr, seed) that diverged."""
    test = val if test is None else test
    runs = [{"variant": v, "seed": s, "settings_key": f"k-{v}-{lr:g}-{s}", "tuned_lr": lr}
            for v, _, _ in variants for lr in grid for s in seeds]
    write_json(out / "study.json", {
        "spec": {"name": "tuned", "description": "a fake tuned study", "path": "tuned.toml",
                 "variants": [{"name": v, "base": b, "description": "", "tricks": [], "default_lr": d}
                              for v, b, d in variants]},
        "tuning": {"lr": sorted(grid), "select_on": select_on},
        "seeds": list(seeds), "epochs": 3, "batch_size": 64, "train_subset": None, "precision": "fp32",
        "validation": 30, "dataset": {"kind": "imagefolder", "root": "/x", "train_images": 300, "test_images": 300,
                                      "classes": CLASSES3, "sha256": "0" * 64},
        "device": "cpu", "workers": 2, "runs": runs})
    for (v, lr, s), acc in val.items():
        status = "diverged" if (v, lr, s) in diverged else "ok"
        rec = fake_record(v, s, test[(v, lr, s)], f"k-{v}-{lr:g}-{s}", status)
        rec["tuned_lr"] = lr
        loss = 1 - acc if val_loss is None else val_loss[(v, lr, s)]
        for h in rec["history"]:   # the last epoch holds the run's final validation metrics
            h["val_accuracy"], h["val_loss"] = acc * h["epoch"] / 3, loss * 3 / h["epoch"]
        write_json(run_path(out, run_stem(run_arm(v, lr), s)), rec)
    return out


@pytest.fixture
def study(tmp_path):
    return write_tuned_study(tmp_path / "tuned", table(TEST))


def selection_of(directory) -> pd.DataFrame:
    data = load_study(directory)
    return T.selection(T.tuning_runs(data), data.manifest).set_index("variant")


def holm2(p: list[float]) -> list[float]:
    """Holm's adjustment of two p-values, by hand."""
    lo, hi = np.argsort(p)
    adj = [0.0, 0.0]
    adj[lo] = min(1.0, 2 * p[lo])
    adj[hi] = min(1.0, max(adj[lo], p[hi]))
    return adj


def test_every_grid_run_counts_under_its_arm(study):
    data = load_study(study)
    assert len(data.records) == 3 * 4 * 3 and data.missing == []
    assert (study / "runs" / "baseline@lr0.001__seed0.json").is_file()
    runs = T.tuning_runs(data)
    assert sorted(set(runs["tuned_lr"])) == GRID
    assert runs.set_index(["variant", "tuned_lr", "seed"]).loc[("trick", 2e-3, 2), "val_accuracy"] == pytest.approx(.73)


def test_each_variant_gets_the_lr_with_the_best_mean_validation_metric(study):
    sel = selection_of(study)
    assert list(sel.index) == ["baseline", "trick", "other"]
    assert sel.loc["baseline", "selected_lr"] == 1e-3 and sel.loc["trick", "selected_lr"] == 2e-3
    assert sel.loc["trick", "select_mean"] == pytest.approx((.70 + .71 + .73) / 3)
    assert sel.loc["trick", "seeds"] == "0,1,2" and sel.loc["trick", "grid_points"] == 4
    assert not sel["at_edge"].any() and (sel["missing_points"] == "").all() and sel["default_in_grid"].all()
    assert (sel["select_on"] == "val_accuracy").all()


def test_ties_go_to_the_smaller_lr(tmp_path):
    val = table({**TEST, "baseline": {**TEST["baseline"], 2e-3: (.61, .60, .62)},   # mean equal to 1e-3's
                 "trick": {**TEST["trick"], 4e-3: (.73, .70, .71)}})                # equal to 2e-3's, reordered
    sel = selection_of(write_tuned_study(tmp_path / "t", val))
    assert sel.loc["baseline", "selected_lr"] == 1e-3
    assert sel.loc["trick", "selected_lr"] == 2e-3 and not sel.loc["trick", "at_edge"]


def test_a_best_lr_at_the_grids_edge_is_flagged_and_named(tmp_path):
    val = table({**TEST, "trick": {**TEST["trick"], 4e-3: (.80, .80, .80)},
                 "other": {**TEST["other"], 5e-4: (.90, .90, .90)}})
    d = write_tuned_study(tmp_path / "t", val)
    sel = selection_of(d)
    assert sel.loc["trick", ["selected_lr", "at_edge", "edge"]].tolist() == [4e-3, True, "largest"]
    assert sel.loc["other", ["selected_lr", "at_edge", "edge"]].tolist() == [5e-4, True, "smallest"]
    assert not sel.loc["baseline", "at_edge"]
    said = T.tuning_findings(T.tuned_table(load_study(d)), sel.reset_index())
    assert any(s.startswith("**trick**: best LR at the grid's edge (0.004, the grid's largest value): widen the grid")
               for s in said)
    assert any("**other**: best LR at the grid's edge (0.0005, the grid's smallest value)" in s for s in said)


def test_a_variant_tuned_elsewhere_than_the_reference_is_compared_at_its_own_lr(study):
    t = T.tuned_table(load_study(study)).set_index("variant")
    assert list(t.index) == ["trick", "other"] and (t["against"] == "baseline").all()
    assert t.loc["trick", ["default_lr", "selected_lr", "against_default_lr", "against_selected_lr"]].tolist() == \
        [1e-3, 2e-3, 1e-3, 1e-3]
    base = {lr: np.array(x) for lr, x in TEST["baseline"].items()}
    trick, other = ({lr: np.array(x) for lr, x in TEST[v].items()} for v in ("trick", "other"))
    # default: both at 1e-3, like the baseline; tuned: trick at 2e-3, other and the baseline at 1e-3
    for prefix, a_trick in (("default", trick[1e-3]), ("tuned", trick[2e-3])):
        p = [sps.ttest_rel(a_trick, base[1e-3]).pvalue, sps.ttest_rel(other[1e-3], base[1e-3]).pvalue]
        assert t.loc["trick", f"{prefix}_delta"] == pytest.approx(np.mean(a_trick - base[1e-3]))
        assert t.loc["trick", f"{prefix}_t_p"] == pytest.approx(p[0])
        assert [t.loc["trick", f"{prefix}_p_holm"], t.loc["other", f"{prefix}_p_holm"]] == pytest.approx(holm2(p))
        assert t.loc["trick", f"{prefix}_n"] == 3 and t.loc["trick", f"{prefix}_seeds"] == "0,1,2"
        assert (t[f"{prefix}_family"] == f"{prefix}-LR comparisons").all()   # each view its own Holm family of 2
        assert (t[f"{prefix}_family_size"] == 2).all()
    assert t.loc["trick", "tuned_delta"] == pytest.approx(0.1033333, abs=1e-6)     # (.10 + .09 + .12) / 3
    assert t.loc["trick", "default_delta"] == pytest.approx(0.0333333, abs=1e-6)   # (.03 + .04 + .03) / 3
    assert t.loc["other", "tuned_delta"] == pytest.approx(t.loc["other", "default_delta"])


def test_a_grid_value_with_a_missing_run_is_not_eligible_and_is_named(tmp_path):
    val = table({**TEST, "trick": {**TEST["trick"], 4e-3: (.90, .90, .90)}})   # best, but seed 1 is missing
    del val[("trick", 4e-3, 1)]
    d = write_tuned_study(tmp_path / "t", val)
    assert ("trick@lr0.004", 1) in load_study(d).missing
    sel = selection_of(d)
    assert sel.loc["trick", "selected_lr"] == 2e-3 and sel.loc["trick", "grid_points"] == 3
    assert sel.loc["trick", "missing_points"] == "lr=0.004 (1 of 3 seeds missing)"


def test_a_grid_value_with_a_diverged_run_is_not_eligible_and_is_named(tmp_path):
    val = table({**TEST, "baseline": {**TEST["baseline"], 2e-3: (.90, .90, .90)}})
    d = write_tuned_study(tmp_path / "t", val, diverged={("baseline", 2e-3, 0)})
    sel = selection_of(d)
    assert sel.loc["baseline", "selected_lr"] == 1e-3 and sel.loc["baseline", "grid_points"] == 3
    assert sel.loc["baseline", "missing_points"] == "lr=0.002 (diverged in 1 seed(s))"
    said = T.tuning_findings(T.tuned_table(load_study(d)), sel.reset_index())
    assert "**baseline**: left out of its LR selection: lr=0.002 (diverged in 1 seed(s))." in said


def test_no_eligible_grid_value_leaves_no_tuned_lr(tmp_path):
    val = table(TEST)
    for lr in GRID:
        del val[("other", lr, 2)]
    d = write_tuned_study(tmp_path / "t", val)
    sel = selection_of(d)
    assert np.isnan(sel.loc["other", "selected_lr"]) and sel.loc["other", "grid_points"] == 0
    t = T.tuned_table(load_study(d))
    assert t.set_index("variant").loc["other", ["tuned_verdict", "tuned_n"]].tolist() == ["too few seeds", 0]
    said = T.tuning_findings(t, sel.reset_index())
    assert any(s.startswith("**other**: within noise at its default LR (") and s.endswith(
        "; too few seeds at its tuned LR.") for s in said)
    assert ("**other**: no grid value eligible (lr=0.0005 (1 of 3 seeds missing); lr=0.001 (1 of 3 seeds missing); "
            "lr=0.002 (1 of 3 seeds missing); lr=0.004 (1 of 3 seeds missing)), so no tuned LR and no tuned "
            "comparison.") in said


def test_selection_reads_validation_never_test(tmp_path):
    # validation prefers trick at 5e-4, test would prefer 2e-3 (TEST); lowest val_loss picks 4e-3 for other
    val = table({**TEST, "trick": {**TEST["trick"], 5e-4: (.95, .95, .95)}})
    d = write_tuned_study(tmp_path / "t", val, test=table(TEST))
    assert selection_of(d).loc["trick", "selected_lr"] == 5e-4
    loss = {k: 1 - x for k, x in val.items()}
    loss.update({("other", 4e-3, s): 0.01 for s in SEEDS})   # lowest loss, lowest accuracy
    d = write_tuned_study(tmp_path / "l", val, test=table(TEST), select_on="val_loss", val_loss=loss)
    sel = selection_of(d)
    assert sel.loc["other", "selected_lr"] == 4e-3 and sel.loc["other", "select_mean"] == pytest.approx(0.01)
    assert sel.loc["trick", "selected_lr"] == 5e-4


def test_the_default_view_is_the_untuned_study_with_the_same_numbers(study, tmp_path):
    data = load_study(study)
    sel = T.selection(T.tuning_runs(data), data.manifest)
    v = T.view(data, T.default_choice(sel))
    assert "tuning" not in v.manifest and v.order == ["baseline", "trick", "other"] and len(v.records) == 9
    plain = load_study(write_fake_study(tmp_path / "plain", {(n, s): TEST[n][1e-3][s] for n in TEST for s in SEEDS},
                                        [(n, b) for n, b, _ in VARIANTS], SEEDS))
    pv, pp = (comparisons(d.manifest["spec"]["variants"], d.reference) for d in (v, plain))
    assert pv == pp == [("trick", "baseline", "vs_baseline"), ("other", "baseline", "vs_baseline")]
    pd.testing.assert_frame_equal(summarize(v.runs(), v.order), summarize(plain.runs(), plain.order))
    pd.testing.assert_frame_equal(delta_table(v.runs(), pv), delta_table(plain.runs(), pp))
    pd.testing.assert_frame_equal(deltas_by_epoch(v.history(), v.runs(), pv),
                                  deltas_by_epoch(plain.history(), plain.runs(), pp))
    tuned = T.view(data, T.tuned_choice(sel))
    assert {(r["variant"], r["tuned_lr"]) for r in tuned.records} == {("baseline", 1e-3), ("trick", 2e-3),
                                                                     ("other", 1e-3)}


def test_a_variant_whose_default_lr_is_off_the_grid_is_only_in_the_tuned_comparison(tmp_path):
    variants = VARIANTS[:2] + [("other", "baseline", 3e-3)]
    d = write_tuned_study(tmp_path / "t", table(TEST), variants=variants)
    data = load_study(d)
    sel = T.selection(T.tuning_runs(data), data.manifest).set_index("variant")
    assert not sel.loc["other", "default_in_grid"] and sel.loc["other", "selected_lr"] == 1e-3
    assert T.view(data, T.default_choice(sel.reset_index())).order == ["baseline", "trick"]
    t = T.tuned_table(data).set_index("variant")
    assert t.loc["other", "default_verdict"] == "too few seeds" and t.loc["other", "tuned_n"] == 3
    text = build_report(d).read_text()
    assert "Not in them (default LR not a grid value): other (0.003)." in text


def _row(variant, default, tuned, d_delta=0.03, t_delta=0.01):
    """One tuned.csv row for the findings (3 seeds, both families of 4 comparisons)."""
    side = lambda delta, verdict: {"n": 3, "seeds": "0,1,2", "delta": delta, "ci_low": delta - .01,   # noqa: E731
                                   "ci_high": delta + .01, "t_p": .004, "p_holm": .008, "mde_holm": .0234,
                                   "verdict": verdict, "family_size": 4}
    return {"variant": variant, "against": "baseline", "default_lr": 1e-3, "selected_lr": 2e-3, "at_edge": False,
            **{f"default_{k}": x for k, x in side(d_delta, default).items()},
            **{f"tuned_{k}": x for k, x in side(t_delta, tuned).items()}}


def test_findings_tell_what_survives_tuning_what_only_moved_the_lr_and_what_helps_once_tuned():
    t = pd.DataFrame([_row("keeps", IMPROVEMENT, IMPROVEMENT), _row("mover", IMPROVEMENT, NOISE),
                      _row("late", NOISE, IMPROVEMENT), _row("flat", NOISE, NOISE)])
    sel = pd.DataFrame({"variant": ["baseline", "keeps", "mover", "late", "flat"], "selected_lr": 1e-3,
                        "at_edge": False, "edge": "", "missing_points": ""})
    said = T.tuning_findings(t, sel)
    assert said[0] == ("**keeps** helps at its default LR (+3.00 pts, paired t-test over 3 seeds, Holm p = 0.008 "
                       "over the 4 default-LR comparisons) and still helps at its tuned LR, 0.002 (+1.00 pts, "
                       "paired t-test over 3 seeds, Holm p = 0.008 over the 4 tuned-LR comparisons).")
    assert said[1].startswith("**mover** only moved the LR: improvement at its default LR (+3.00 pts")
    assert said[1].endswith("detectable at 80% power after Holm: 2.34 pts): its default-LR effect does not "
                            "survive tuning.")
    assert said[2].startswith("**late** helps only once tuned: improvement at its tuned LR, 0.002 (+1.00 pts")
    assert "within noise at its default LR (+3.00 pts" in said[2] and "2.34 pts" in said[2]
    assert said[3].startswith("Within noise vs baseline at both the default and the tuned LRs (paired t-test, "
                              "Holm over the 4 default-LR and, separately, the 4 tuned-LR comparisons): flat")
    assert len(said) == 4


def test_sensitivity_summarizes_each_grid_value_over_its_ok_seeds(tmp_path):
    d = write_tuned_study(tmp_path / "t", table(TEST), diverged={("trick", 4e-3, 0)})
    data = load_study(d)
    s = T.sensitivity(T.tuning_runs(data), data.manifest).set_index(["variant", "lr"])
    assert len(s) == 12
    row = s.loc[("trick", 2e-3)]
    assert row[["val_accuracy_mean", "val_accuracy_min", "val_accuracy_max"]].tolist() == \
        pytest.approx([(.70 + .71 + .73) / 3, .70, .73])
    assert row["micro_f1_n"] == 3 and row["micro_f1_max"] == pytest.approx(.73)
    assert s.loc[("trick", 4e-3), "val_accuracy_n"] == 2   # the diverged seed is left out
    assert s.loc[("trick", 4e-3), "micro_f1_min"] == pytest.approx(.51)


def test_report_of_a_tuned_study_adds_the_tuned_comparison(study, tmp_path):
    path = build_report(study)
    sel = pd.read_csv(study / "selection.csv")
    assert list(sel["variant"]) == ["baseline", "trick", "other"] and list(sel["selected_lr"]) == [1e-3, 2e-3, 1e-3]
    tuned = pd.read_csv(study / "tuned.csv")
    assert list(tuned["variant"]) == ["trick", "other"]
    assert {"default_delta", "default_p_holm", "default_mde_holm", "default_verdict", "tuned_delta",
            "tuned_ci_low", "tuned_ci_high", "tuned_p_holm", "tuned_mde_holm", "tuned_verdict"} <= set(tuned.columns)
    fig = study / "figures" / "lr_sensitivity.png"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 5_000
    runs = pd.read_csv(study / "runs.csv")
    assert len(runs) == 36 and sorted(set(runs["tuned_lr"])) == GRID
    text = path.read_text()
    assert "## Tuned comparison" in text and "### Selected learning rates" in text
    assert "(figures/lr_sensitivity.png)" in text and "ties go to the smaller LR" in text
    assert "not biased by test-set selection" in text and "**trick** helps at its default LR" in text
    compute = sum(json.loads(f.read_text()).get("wall_seconds", 0.0) for f in (study / "runs").glob("*.json")) / 60
    assert f"with every seed: 36 finished runs, {compute:.1f} min of compute summed over them" in text
    # the main body is the default view: its tables are those of the untuned study at the default LRs
    plain = write_fake_study(tmp_path / "plain", {(n, s): TEST[n][1e-3][s] for n in TEST for s in SEEDS},
                             [(n, b) for n, b, _ in VARIANTS], SEEDS)
    build_report(plain)
    for name in ("summary.csv", "deltas.csv", "deltas_by_epoch.csv"):
        assert (study / name).read_bytes() == (plain / name).read_bytes(), name
    body = text.split("## Findings")[1].split("## Tuned comparison")[0]
    assert body == (plain / "REPORT.md").read_text().split("## Findings")[1].split("## Figures")[0]


def test_report_lists_every_missing_grid_run(tmp_path):
    val = table(TEST)
    del val[("other", 4e-3, 1)]
    d = write_tuned_study(tmp_path / "t", val)
    text = build_report(d).read_text()
    assert "other@lr0.004 seed 1" in text.split("## Tuned comparison")[0]
    assert "lr=0.004 (1 of 3 seeds missing)" in text


def test_a_tuned_study_with_no_finished_run_yet_still_reports(tmp_path):
    d = write_tuned_study(tmp_path / "t", {})            # planned, nothing finished (a study just started)
    text = build_report(d).read_text()
    sel = pd.read_csv(d / "selection.csv")
    assert sel["selected_lr"].isna().all() and list(sel["grid_points"]) == [0] * len(VARIANTS)
    assert "## Tuned comparison" in text and "## Missing runs" in text


def test_report_of_an_untuned_study_has_no_tuned_comparison(tmp_path):
    d = write_fake_study(tmp_path / "plain", {(v, s): 0.5 for v in ("baseline", "b") for s in (0, 1)},
                         [("baseline", None), ("b", "baseline")], [0, 1])
    text = build_report(d).read_text()
    assert "Tuned comparison" not in text
    assert not (d / "tuned.csv").exists() and not (d / "selection.csv").exists()
    assert not (d / "figures" / "lr_sensitivity.png").exists()
    runs = pd.read_csv(d / "runs.csv")
    assert runs["tuned_lr"].isna().all() and runs["val_accuracy"].isna().all()
    study = api_load(d)
    assert study.selection is None and study.tuned is None and not T.is_tuned(study.data.manifest)


def test_the_notebook_api_reads_a_tuned_study_at_its_default_lrs(study):
    s = api_load(study)
    assert list(s.selection["selected_lr"]) == [1e-3, 2e-3, 1e-3]
    assert list(s.tuned["variant"]) == ["trick", "other"]
    assert len(s.runs) == 36 and len(s.summary) == 3
    assert s.summary.set_index("variant").loc["trick", "micro_f1_mean"] == pytest.approx((.63 + .66 + .64) / 3)
    assert s.deltas.set_index("variant").loc["trick", "delta"] == pytest.approx(s.tuned.loc[0, "default_delta"])


def test_a_manifest_run_with_a_float_off_by_rounding_still_matches_its_grid_value(tmp_path):
    d = write_tuned_study(tmp_path / "t", table(TEST))
    m = json.loads((d / "study.json").read_text())
    m["spec"]["variants"][1]["default_lr"] = 1e-3 * (1 + 1e-12)
    (d / "study.json").write_text(json.dumps(m))
    sel = selection_of(d)
    assert sel.loc["trick", "default_in_grid"]

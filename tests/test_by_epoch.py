"""Paired deltas at every epoch from the stored histories (fake runs: test accuracy acc * e / 3)."""

import json
import math

import pandas as pd
import pytest

from tricks.analysis.by_epoch import COLUMNS, deltas_by_epoch
from tricks.analysis.stats import comparisons
from tricks.analysis.studydata import load_study
from tricks.cli import main

from .conftest import write_fake_study

VARIANTS = [("baseline", None), ("better", "baseline"), ("worse", "better"), ("same", "baseline")]
SEEDS = [0, 1, 2]
ACCS = {**{("baseline", s): a for s, a in zip(SEEDS, (0.50, 0.52, 0.51))},
        **{("better", s): a for s, a in zip(SEEDS, (0.60, 0.63, 0.61))},
        **{("worse", s): a for s, a in zip(SEEDS, (0.40, 0.41, 0.43))},
        **{("same", s): a for s, a in zip(SEEDS, (0.51, 0.51, 0.52))}}
T2, T1 = 4.302652729911275, 12.706204736174698   # Student-t 97.5% quantiles with 2 and 1 degrees of freedom


def table(directory):
    data = load_study(directory)
    return deltas_by_epoch(data.history(), data.runs(), comparisons(data.manifest["spec"]["variants"],
                                                                    data.reference))


def row(t, variant, against, epoch):
    sel = t[(t["variant"] == variant) & (t["against"] == against) & (t["epoch"] == epoch)]
    assert len(sel) == 1, (variant, against, epoch)
    return sel.iloc[0]


def test_each_epoch_has_the_paired_delta_and_its_t_interval_computed_by_hand(tmp_path):
    t = table(write_fake_study(tmp_path / "res", ACCS, VARIANTS, SEEDS))
    assert list(t.columns) == COLUMNS
    # the pairs of deltas.csv, each at epochs 1..3, in that order
    assert list(zip(t["variant"], t["against"], t["kind"], t["epoch"])) == [
        (v, a, k, e) for v, a, k in [("better", "baseline", "vs_baseline"), ("worse", "baseline", "vs_baseline"),
                                     ("worse", "better", "vs_base"), ("same", "baseline", "vs_baseline")]
        for e in (1, 2, 3)]
    # better - baseline per seed at the last epoch: 0.10, 0.11, 0.10; mean 0.31/3, std sqrt(3)/300
    for e in (1, 2, 3):
        r, scale = row(t, "better", "baseline", e), e / 3
        half = T2 * (math.sqrt(3) / 300) / math.sqrt(3) * scale
        assert r["n"] == 3 and r["seeds"] == "0,1,2" and r["metric"] == "test_accuracy"
        assert r["delta"] == pytest.approx(0.31 / 3 * scale)
        assert r["delta_std"] == pytest.approx(math.sqrt(3) / 300 * scale)
        assert r["ci_low"] == pytest.approx(0.31 / 3 * scale - half)
        assert r["ci_high"] == pytest.approx(0.31 / 3 * scale + half)
        assert r["variant_mean"] == pytest.approx(1.84 / 3 * scale)
        assert r["against_mean"] == pytest.approx(1.53 / 3 * scale)
    # worse - better: -0.20, -0.22, -0.18 -> mean -0.20, std 0.02
    r = row(t, "worse", "better", 2)
    assert r["delta"] == pytest.approx(-0.20 * 2 / 3)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.20 * 2 / 3 - T2 * 0.02 / math.sqrt(3) * 2 / 3,
                                                         -0.20 * 2 / 3 + T2 * 0.02 / math.sqrt(3) * 2 / 3))


def test_two_seeds_pair_on_the_seeds_both_finished_and_diverged_runs_are_left_out(tmp_path):
    accs = dict(ACCS)
    del accs[("same", 0)]
    d = write_fake_study(tmp_path / "part", accs, VARIANTS, SEEDS, diverged={("worse", 2)})
    t = table(d)
    # same - baseline on seeds 1 and 2: -0.01, +0.01 at the last epoch -> mean 0, std 0.01 * sqrt(2)
    for e in (1, 2, 3):
        r, scale = row(t, "same", "baseline", e), e / 3
        assert r["n"] == 2 and r["seeds"] == "1,2"
        assert r["delta"] == pytest.approx(0.0, abs=1e-12)
        assert r["delta_std"] == pytest.approx(0.01 * math.sqrt(2) * scale)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((-T1 * 0.01 * scale, T1 * 0.01 * scale))
    r = row(t, "worse", "baseline", 3)   # worse seed 2 diverged: seeds 0 and 1, -0.10 and -0.11
    assert r["seeds"] == "0,1" and r["delta"] == pytest.approx(-0.105)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.105 - T1 * 0.005, -0.105 + T1 * 0.005))


def test_an_early_stopped_run_ends_its_comparisons_at_its_last_epoch(tmp_path):
    d = write_fake_study(tmp_path / "res", ACCS, VARIANTS, SEEDS)
    path = d / "runs" / "better__seed1.json"
    rec = json.loads(path.read_text())
    rec["history"], rec["epochs_run"] = rec["history"][:2], 2   # stopped after epoch 2 (final metrics kept)
    path.write_text(json.dumps(rec))
    t = table(d)
    assert list(t[(t["variant"] == "better") & (t["against"] == "baseline")]["epoch"]) == [1, 2]
    assert list(t[(t["variant"] == "worse") & (t["against"] == "better")]["epoch"]) == [1, 2]
    assert list(t[(t["variant"] == "same")]["epoch"]) == [1, 2, 3]
    # at epoch 2 the stopped run's own history is used: (0.63 - 0.52) * 2 / 3 for seed 1
    assert row(t, "better", "baseline", 2)["delta"] == pytest.approx((0.10 + 0.11 + 0.10) / 3 * 2 / 3)


def test_a_comparison_without_common_seeds_has_no_rows(tmp_path):
    accs = {k: v for k, v in ACCS.items() if k not in {("same", 1), ("same", 2), ("baseline", 0)}}
    t = table(write_fake_study(tmp_path / "res", accs, VARIANTS, SEEDS))
    assert t[(t["variant"] == "same")].empty          # same has seed 0 only, baseline seeds 1 and 2
    assert set(t[t["variant"] == "better"]["n"]) == {2}


def test_tricks_figures_writes_the_table_the_figure_and_links_it(tmp_path):
    d = write_fake_study(tmp_path / "res", ACCS, VARIANTS, SEEDS)
    assert main(["figures", "--results", str(d)]) == 0
    csv = pd.read_csv(d / "deltas_by_epoch.csv")
    assert list(csv.columns) == COLUMNS and len(csv) == 4 * 3
    r = csv[(csv["variant"] == "better") & (csv["against"] == "baseline") & (csv["epoch"] == 3)].iloc[0]
    final = pd.read_csv(d / "deltas.csv").set_index(["variant", "against"]).loc[("better", "baseline")]
    assert r["delta"] == pytest.approx(final["delta"], rel=1e-5)   # no callback: the last epoch is the final score
    fig = d / "figures" / "deltas_by_epoch.png"
    assert fig.is_file() and fig.stat().st_size > 5_000 and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (d / "REPORT.md").read_text()
    assert "(figures/deltas_by_epoch.png)" in text and "`deltas_by_epoch.csv`" in text
    assert text.index("(figures/deltas.png)") < text.index("(figures/deltas_by_epoch.png)")

"""Seeds until the answer is precise: the stopping rule on scripted tables, and a real study in rounds."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tricks.analysis.sequential import decide, halfwidths
from tricks.cli import main

from .conftest import STUDY_SPEC


def deltas(*rows):
    return pd.DataFrame([{"variant": v, "against": a, "n": n, "ci_low": lo, "ci_high": hi}
                         for v, a, n, lo, hi in rows])


def test_the_widest_interval_decides_and_fewer_than_two_seeds_count_as_infinitely_wide():
    table = deltas(("a", "base", 3, 0.010, 0.030), ("b", "base", 3, -0.020, 0.010), ("c", "a", 1, 0.0, 0.0))
    hw = halfwidths(table)
    assert hw["a vs base"] == pytest.approx(1.0) and hw["b vs base"] == pytest.approx(1.5)
    assert math.isinf(hw["c vs a"])
    d = decide(table.iloc[:2], seeds=3, target=1.5, max_seeds=10)
    assert (d.stop, d.reason, d.widest, d.halfwidth) == (True, "precise", "b vs base", pytest.approx(1.5))
    d = decide(table.iloc[:2], seeds=3, target=1.4, max_seeds=10)
    assert (d.stop, d.reason) == (False, "")
    d = decide(table.iloc[:2], seeds=10, target=1.4, max_seeds=10)
    assert (d.stop, d.reason) == (True, "max_seeds")
    d = decide(table, seeds=3, target=100.0, max_seeds=10)
    assert (d.stop, d.widest, d.to_dict()["halfwidth"]) == (False, "c vs a", None)


def ablation(image_folder, out, *extra):
    return main(["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants", "baseline,norm_inputs",
                 "--dataset",
                 "imagefolder", "--data-dir", str(image_folder), "--out", str(out), "--epochs", "1",
                 "--workers", "1", "--precision", "fp32", "--no-progress", "--no-report", *extra])


def test_a_study_in_rounds_adds_one_seed_at_a_time_and_records_each_round(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    assert ablation(image_folder, out, "--seeds", "0", "--until-halfwidth", "0.0001", "--max-seeds", "3") == 0
    err = capsys.readouterr().err
    until = json.loads((out / "study.json").read_text())["until"]
    assert [r["seeds"] for r in until["rounds"]] == [2, 3]          # one seed was added to reach two
    assert until["stopped"] == "max_seeds" and until["halfwidth_points"] == 0.0001
    assert until["rounds"][-1]["widest"] == "norm_inputs vs baseline"
    assert "round 2: 3 seeds" in err and "stopped: max_seeds" in err
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == [
        f"{v}__seed{s}.json" for v in ("baseline", "norm_inputs") for s in (0, 1, 2)]

    wide = tmp_path / "wide"
    assert ablation(image_folder, wide, "--seeds", "0,1", "--until-halfwidth", "1000", "--max-seeds", "5") == 0
    until = json.loads((wide / "study.json").read_text())["until"]
    assert [r["seeds"] for r in until["rounds"]] == [2] and until["stopped"] == "precise"


@pytest.mark.parametrize("extra,fragment", [
    (["--max-seeds", "5"], "--max-seeds needs --until-halfwidth"),
    (["--until-halfwidth", "1"], "--until-halfwidth needs --max-seeds"),
    (["--until-halfwidth", "0", "--max-seeds", "5"], "must be a positive number"),
    (["--seeds", "0,1,2", "--until-halfwidth", "1", "--max-seeds", "2"], "fewer than the 3 seeds"),
])
def test_bad_round_settings_are_one_line_exit_2(image_folder, tmp_path, capsys, extra, fragment):
    assert ablation(image_folder, tmp_path / "o", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]

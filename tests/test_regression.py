"""The CI regression check's decisions, on scripted results (no training)."""

import json
import math

import pytest

from tricks.cli import main
from tricks.analysis.regression import (BETTER, DELTA_FLOOR, DIVERGED, MISSING, OK, REGRESSION, compare, format_table,
                               make_reference)
from tricks.analysis.studydata import load_study

from .conftest import write_fake_study

VARIANTS = [("baseline", None), ("norm", "baseline"), ("drop", "norm")]
SEEDS = [0, 1, 2]
BASE = {0: 0.40, 1: 0.42, 2: 0.41}
NORM = {0: 0.46, 1: 0.47, 2: 0.49}      # deltas 6, 5, 8 points
DROP = {0: 0.45, 1: 0.47, 2: 0.46}      # deltas 5, 5, 5 points: no spread -> the floor applies


def study(tmp_path, name, base=BASE, norm=NORM, drop=DROP, skip=(), diverged=()):
    accs = {**{("baseline", s): a for s, a in base.items()}, **{("norm", s): a for s, a in norm.items()},
            **{("drop", s): a for s, a in drop.items()}}
    for k in skip:
        accs.pop(k)
    return load_study(write_fake_study(tmp_path / name, accs, VARIANTS, SEEDS, diverged=set(diverged)))


@pytest.fixture
def reference(tmp_path):
    return make_reference(study(tmp_path, "ref"))


def verdicts(result):
    return {r["variant"]: r["verdict"] for r in result.rows}


def test_reference_holds_deltas_spread_and_derived_tolerance(reference):
    norm = reference["variants"]["norm"]
    assert norm["per_seed"] == pytest.approx([0.06, 0.05, 0.08])
    sd = math.sqrt(((0.06 - 0.19 / 3) ** 2 + (0.05 - 0.19 / 3) ** 2 + (0.08 - 0.19 / 3) ** 2) / 2)
    assert norm["delta_sd"] == pytest.approx(sd)
    assert norm["tolerance"] == pytest.approx(max(DELTA_FLOOR, 3 * sd * math.sqrt(2 / 3)))
    assert reference["variants"]["drop"]["tolerance"] == pytest.approx(DELTA_FLOOR)
    assert reference["baseline"]["accuracy"] == pytest.approx(0.41)
    assert reference["baseline"]["floor"] == pytest.approx(0.41 - 0.03)


def test_identical_results_pass(tmp_path, reference):
    r = compare(reference, study(tmp_path, "same"))
    assert r.passed and set(verdicts(r).values()) == {OK}


def test_a_drop_beyond_the_tolerance_fails_only_that_variant(tmp_path, reference):
    r = compare(reference, study(tmp_path, "worse", drop={0: 0.43, 1: 0.44, 2: 0.43}))   # delta 5 -> 2.33 pts
    assert not r.passed
    assert verdicts(r) == {"baseline": OK, "norm": OK, "drop": REGRESSION}
    text = format_table(r)
    assert "drop" in text and "REGRESSION" in text and "FAIL: drop REGRESSION" in text


def test_a_drop_within_the_tolerance_passes(tmp_path, reference):
    r = compare(reference, study(tmp_path, "noise", drop={0: 0.44, 1: 0.47, 2: 0.46}))   # 5 -> 4.67 pts
    assert r.passed and verdicts(r)["drop"] == OK


def test_a_clear_improvement_passes_and_suggests_rebaselining(tmp_path, reference):
    r = compare(reference, study(tmp_path, "better", drop={0: 0.50, 1: 0.52, 2: 0.51}))
    assert r.passed and verdicts(r)["drop"] == BETTER


def test_a_missing_variant_fails(tmp_path, reference):
    r = compare(reference, study(tmp_path, "missing", skip=[("drop", 1)]))
    assert not r.passed and verdicts(r)["drop"] == MISSING


def test_a_diverged_run_fails(tmp_path, reference):
    r = compare(reference, study(tmp_path, "div", diverged=[("norm", 2)]))
    assert not r.passed and verdicts(r)["norm"] == DIVERGED


def test_a_low_baseline_fails_on_its_floor(tmp_path, reference):
    low = {s: a - 0.05 for s, a in BASE.items()}
    r = compare(reference, study(tmp_path, "low", base=low, norm={s: a - 0.05 for s, a in NORM.items()},
                                 drop={s: a - 0.05 for s, a in DROP.items()}))
    assert verdicts(r) == {"baseline": REGRESSION, "norm": OK, "drop": OK} and not r.passed


def test_a_reference_from_another_profile_is_incompatible(tmp_path, reference):
    data = study(tmp_path, "other")
    data.manifest["epochs"] = 5
    r = compare(reference, data)
    assert not r.passed and r.incompatible == ["epochs: reference 3, results 5"]
    assert format_table(r).startswith("INCOMPATIBLE")


def test_check_command_exit_codes_and_update(tmp_path, capsys):
    ref_dir = write_fake_study(tmp_path / "r", {**{("baseline", s): a for s, a in BASE.items()},
                                               **{("norm", s): a for s, a in NORM.items()},
                                               **{("drop", s): a for s, a in DROP.items()}}, VARIANTS, SEEDS)
    ref = tmp_path / "ref.json"
    assert main(["check", "--results", str(ref_dir), "--reference", str(ref)]) == 2
    assert "no reference" in capsys.readouterr().err
    assert main(["check", "--results", str(ref_dir), "--reference", str(ref), "--update"]) == 0
    assert "new reference" in capsys.readouterr().out
    assert json.loads(ref.read_text())["variants"]["norm"]["n"] == 3
    assert main(["check", "--results", str(ref_dir), "--reference", str(ref)]) == 0
    assert "PASS" in capsys.readouterr().out
    bad = study(tmp_path, "bad", norm={0: 0.40, 1: 0.42, 2: 0.41})
    assert main(["check", "--results", str(bad.directory), "--reference", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "norm" in out and "FAIL: norm REGRESSION" in out
    assert main(["check", "--results", str(bad.directory), "--reference", str(ref), "--update"]) == 0
    assert "norm: delta +6.33 -> +0.00 pts" in capsys.readouterr().out


def test_a_huge_seed_spread_writes_a_reference_that_check_reads_back(tmp_path, capsys):
    """--update once wrote a tolerance above 1.0 (and a floor below -1) that the reference schema refuses:
    both are clipped to what the schema holds, so the reference reads back and the check runs on it."""
    from tricks.analysis.regression import MAX_TOLERANCE
    from tricks.running.schema import REFERENCE, validate

    base, norm = {0: 0.00, 1: 0.00, 2: 1.00}, {0: 0.90, 1: 0.00, 2: 0.00}   # deltas +90, 0, -100 points
    accs = {**{("baseline", s): a for s, a in base.items()}, **{("norm", s): a for s, a in norm.items()},
            **{("drop", s): a for s, a in DROP.items()}}
    out = write_fake_study(tmp_path / "wild", accs, VARIANTS, SEEDS)
    sd = math.sqrt(((0.9 - 0.8 / 3) ** 2 + (0.0 + 0.1 / 3) ** 2 + (-1.0 + 0.1 / 3) ** 2) / 2)
    assert 3 * sd * math.sqrt(2 / 3) > 1.0        # the formula alone would write more than the schema holds
    ref = tmp_path / "wild.json"
    assert main(["check", "--results", str(out), "--reference", str(ref), "--update"]) == 0
    written = json.loads(ref.read_text())
    assert written["variants"]["norm"]["tolerance"] == MAX_TOLERANCE == 1.0
    assert written["baseline"]["floor"] == 0.0    # 1/3 - 3 x 0.577 would be -1.40
    validate(written, REFERENCE, "reference")     # raises on a value out of the schema's bounds
    capsys.readouterr()
    assert main(["check", "--results", str(out), "--reference", str(ref)]) == 0
    assert "PASS" in capsys.readouterr().out

"""REPORT.md's variants table (tricks and parameters or config keys, mean training time against the
reference), per-seed deltas, the sentence on what a sign-flip test can reach, and the Design section of
factors that set config keys (fake runs: no training)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tricks.analysis.report import build_report
from tricks.analysis.report_variants import base_note, fewest_seeds, sign_flip_note, variant_recipe
from tricks.analysis.stats import ALPHA
from tricks.running.records import run_path

from .conftest import write_fake_study

VARIANTS = [("baseline", None), ("mix", "baseline"), ("slow", "baseline"), ("step", "mix")]
SEEDS = [0, 1, 2]
ACCS = {("baseline", 0): .50, ("baseline", 1): .52, ("baseline", 2): .51,
        ("mix", 0): .55, ("mix", 1): .56, ("mix", 2): .57,
        ("slow", 0): .49, ("slow", 1): .54, ("slow", 2): .50,
        ("step", 0): .58, ("step", 1): .56, ("step", 2): .60}
TRICKS = {"baseline": [], "mix": [{"name": "mixup", "alpha": 0.2}],
          "slow": [{"name": "sam", "rho": 0.05}, {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]}],
          "step": [{"name": "mixup", "alpha": 0.2}, {"name": "tta", "flip": True}]}
SECONDS = {"baseline": (10.0, 12.0, 11.0), "mix": (11.0, 11.0, 11.0), "slow": (24.0, 26.0, 16.0),
           "step": (13.0, 13.0, 13.0)}


def _edit(path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def timed_study(out, accs=ACCS, seeds=SEEDS, tricks=TRICKS, config=None):
    """A fake study whose variants have ``tricks`` (or ``config``, an entry-point study's keys) and whose
    runs took SECONDS to train."""
    d = write_fake_study(out, accs, VARIANTS, seeds)

    def spec(m):
        for v in m["spec"]["variants"]:
            v["tricks"] = [] if config else tricks[v["name"]]
            if config:
                v["config"] = config[v["name"]]
    _edit(d / "study.json", spec)
    for (v, s) in accs:
        _edit(run_path(d, f"{v}__seed{s}"), lambda r, v=v, s=s: r.update(train_seconds=SECONDS[v][s % 3]))
    return d


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first markdown table under ``heading``."""
    part = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [x for x in part.splitlines() if x.startswith("| ")]
    return [[c.strip() for c in x.strip("|").split(" | ")] for x in lines]


def test_the_variants_table_names_tricks_parameters_and_training_time_against_the_reference(tmp_path):
    text = build_report(timed_study(tmp_path / "s")).read_text()
    assert text.index("## Variants") < text.index("## Findings")
    rows = table_rows(text, "## Variants")
    assert rows[0] == ["variant", "base", "tricks (parameters)", "seeds ok", "mean train s", "time vs baseline"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert got["baseline"] == ["", "none (the model's defaults)", "3", "11.0", "1.00x"]
    assert got["mix"] == ["baseline", "+ mixup(alpha=0.2)", "3", "11.0", "1.00x"]
    assert got["slow"] == ["baseline", "+ sam(rho=0.05), dropout(p=0.2, after=[conv, dense])", "3", "22.0", "2.00x"]
    assert got["step"] == ["mix", "+ tta(flip=true)", "3", "13.0", "1.18x"]   # 13 / 11
    assert "`time vs baseline` divides it by baseline's" in text and "evaluation excluded" in text


def test_a_variant_that_swaps_a_trick_lists_both_and_one_without_a_base_lists_all():
    base = {"name": "r", "tricks": [{"name": "exp_lr", "lr": 0.002, "gamma": 0.8}, {"name": "normalize_inputs"}]}
    swapped = {"name": "s", "base": "r", "tricks": [{"name": "exp_lr", "lr": 0.002, "gamma": 1.0},
                                                      {"name": "normalize_inputs"}]}
    assert variant_recipe(swapped, base) == "+ exp_lr(lr=0.002, gamma=1.0); - exp_lr(lr=0.002, gamma=0.8)"
    assert variant_recipe(swapped) == "exp_lr(lr=0.002, gamma=1.0), normalize_inputs"
    assert variant_recipe({**base, "name": "same"}, base) == "(as its base)"
    assert variant_recipe({"name": "c", "tricks": [], "config": {"w": 32, "aug": {"p": 0.5}}},
                          {"name": "b", "tricks": [], "config": {"w": 16}}) == '+ config w=32, aug={"p": 0.5}'


def test_the_note_on_bases_is_there_only_when_a_variants_base_is_in_the_table():
    alone = {"spec": {"variants": [{"name": "b", "base": "not_run", "tricks": [{"name": "tta"}]}]}}
    assert base_note(alone) == ""
    two = {"spec": {"variants": [{"name": "a", "base": None, "tricks": []}, *alone["spec"]["variants"],
                                 {"name": "c", "base": "a", "tricks": [{"name": "tta"}]}]}}
    assert base_note(two).startswith("A variant whose base is in this table lists the tricks it adds")


def test_a_diverged_run_is_left_out_of_the_time_and_its_seeds_delta_is_na(tmp_path):
    d = timed_study(tmp_path / "s")
    _edit(run_path(d, "slow__seed2"), lambda r: r.update(status="diverged"))
    text = build_report(d).read_text()
    got = {r[0]: r[1:] for r in table_rows(text, "## Variants")[1:]}
    assert got["slow"][2:] == ["2", "25.0", "2.27x"]          # (24 + 26) / 2 over 11
    seeds = {(r[0], r[1]): r[2:] for r in table_rows(text, "## Per-seed deltas")[1:]}
    assert seeds[("slow", "baseline")][2] == "n/a"


def test_per_seed_deltas_are_each_seeds_difference_and_average_to_the_delta(tmp_path):
    accs = {k: a for k, a in ACCS.items() if k != ("step", 1)}   # step's seed 1 never finished
    d = timed_study(tmp_path / "s", accs=accs)
    text = build_report(d).read_text()
    assert text.index("## Paired deltas") < text.index("## Per-seed deltas") < text.index("## Figures")
    rows = table_rows(text, "## Per-seed deltas")
    assert rows[0] == ["variant", "against", "seed 0", "seed 1", "seed 2", "mean"]
    got = {(r[0], r[1]): r[2:] for r in rows[1:]}
    assert got[("mix", "baseline")] == ["+5.00", "+4.00", "+6.00", "+5.00"]
    assert got[("slow", "baseline")] == ["-1.00", "+2.00", "-1.00", "+0.00"]
    assert got[("step", "mix")] == ["+3.00", "n/a", "+3.00", "+3.00"]
    deltas = pd.read_csv(d / "deltas.csv").set_index(["variant", "against"])
    for (v, a), cells in got.items():
        assert f"{100 * deltas.loc[(v, a), 'delta']:+.2f}" == cells[-1]


@pytest.mark.parametrize("threshold", [ALPHA, ALPHA / 2, ALPHA / 7, ALPHA / 13, 0.0625, 0.25])
def test_fewest_seeds_is_where_the_smallest_sign_flip_p_first_reaches_the_threshold(threshold):
    n = fewest_seeds(threshold)
    assert 2.0 ** (1 - n) <= threshold < 2.0 ** (2 - n)


def test_the_sign_flip_sentence_says_which_threshold_the_seeds_cannot_reach():
    three = sign_flip_note([(3, 7)] * 7)
    assert "with 3 paired seeds the smallest two-sided sign-flip p is 2^(1-3) = 0.25, above 0.05" in three
    assert "6 paired seeds are the fewest for which a sign-flip p can reach 0.05, 9 for Holm's strictest step " \
           "0.05/7" in three
    holm = sign_flip_note([(6, 7)] * 7)   # 0.03125: below 0.05, above 0.05/7
    assert "2^(1-6) = 0.0312, above Holm's strictest step (0.05/7 = 0.00714)" in holm
    assert "could reject none of its comparisons" in holm
    assert sign_flip_note([(10, 3)] * 3) == ""   # 0.00195 <= 0.05/3: nothing to say
    assert sign_flip_note([(9, 7)] * 7) == ""    # 0.0039 <= 0.00714
    mixed = sign_flip_note([(10, 4), (10, 4), (10, 4), (6, 4)])
    assert "the 1 of 4 comparisons with 6 paired seeds cannot pass Holm's strictest step (0.05/4 = 0.0125)" in mixed
    assert sign_flip_note([(1, 3), (0, 3)]) == ""   # no t-test, no sentence


def test_the_report_says_when_the_seeds_are_too_few_for_a_sign_flip_test(tmp_path):
    text = build_report(timed_study(tmp_path / "three")).read_text()
    findings = text.split("## Findings", 1)[1].split("\n## ", 1)[0]
    assert "- Sign-flip tests: with 3 paired seeds the smallest two-sided sign-flip p is 2^(1-3) = 0.25, above " \
           "0.05" in findings and "8 for Holm's strictest step 0.05/4)" in findings   # 4 comparisons
    seeds = list(range(10))
    accs = {(v, s): round(ACCS[(v, s % 3)] + (0.01 if s % 2 and v == "mix" else 0.0), 2)
            for v, _ in VARIANTS for s in seeds}
    many = build_report(timed_study(tmp_path / "ten", accs=accs, seeds=seeds)).read_text()
    assert "Sign-flip tests:" not in many and "| seed 9 |" in many   # 2^-9 <= 0.05/3


def test_an_entry_point_studys_variants_and_design_name_their_config_keys(tmp_path):
    config = {"baseline": {}, "mix": {"flip": True}, "slow": {"width": 32}, "step": {"flip": True, "lr": 0.003}}
    d = timed_study(tmp_path / "entry", config=config)
    design = {"kind": "one_at_a_time", "matrix": [[0, 0], [1, 0], [0, 1]], "resolution": None, "generators": [],
              "aliases": [], "factors": [{"name": "flip", "tricks": [], "config": {"flip": True}},
                                         {"name": "wide", "tricks": [], "config": {"width": 32, "aug": [1, 2]}}]}
    _edit(d / "study.json", lambda m: m["spec"].update(design=design))
    text = build_report(d).read_text()
    lines = text.split("## Design", 1)[1].split("\n## ", 1)[0].splitlines()
    assert "- factor `flip`: config flip=true" in lines and "- factor `wide`: config width=32, aug=[1, 2]" in lines
    rows = table_rows(text, "## Variants")
    assert rows[0][2] == "config keys"
    got = {r[0]: r[2] for r in rows[1:]}
    assert got == {"baseline": "none (the workload's config)", "mix": "+ config flip=true",
                   "slow": "+ config width=32", "step": "+ config lr=0.003"}
    assert "lists the config keys it adds to that base" in text

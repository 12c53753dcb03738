"""The transfer report's variants and per-seed tables, and a pooled estimate from fewer than 3 seeds on a
workload: kept in transfer.csv, greyed in the forest plot, not stated as a finding (fake runs: no training)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tricks.analysis import transfer as X
from tricks.analysis import transfer_figure as TF
from tricks.analysis.figures import NOISE_COLOR
from tricks.analysis.report import build_report
from tricks.analysis.studydata import load_study
from tricks.analysis.transfer_pooled import MIN_SEEDS, as_findings, withheld

from .test_report_variants import table_rows
from .test_transfer import SEEDS, VARIANTS, WORKLOADS, acc, write_multi_study

TRICKS = [v for v, _ in VARIANTS if v != "baseline"]


def two_seeds(tmp_path, on=tuple(w for w, *_ in WORKLOADS)):
    """The fake transfer study with only seeds 0 and 1 finished on the workloads ``on``."""
    skip = {(v, w, s) for v, _ in VARIANTS for w in on for s in SEEDS[2:]}
    return write_multi_study(tmp_path / "two", skip=skip)


@pytest.fixture
def diamonds(monkeypatch):
    """The colour of every pooled diamond the forest plot draws, in panel order."""
    drawn = []
    real = TF._diamond

    def spy(ax, mid, low, high, y, color, *rest):
        drawn.append(color)
        return real(ax, mid, low, high, y, color, *rest)
    monkeypatch.setattr(TF, "_diamond", spy)
    return drawn


def test_with_4_seeds_every_pooled_estimate_is_a_finding_drawn_in_black(tmp_path, diamonds):
    d = write_multi_study(tmp_path / "four")
    table = X.transfer_table(load_study(d))
    assert withheld(table) == {}
    text = build_report(d).read_text()
    assert diamonds == ["black"] * len(TRICKS)
    assert "not a finding" not in text.split("## Figure")[0] and "withheld" not in text
    assert "- Sign-flip tests: with 4 paired seeds the smallest two-sided sign-flip p is 2^(1-4) = 0.125" in text


def test_with_2_seeds_the_pooled_estimate_is_kept_greyed_and_not_a_finding(tmp_path, diamonds):
    d = two_seeds(tmp_path)
    text = build_report(d).read_text()
    table = pd.read_csv(d / "transfer.csv")
    pooled = table[table["workload"] == X.POOLED].set_index("variant")
    assert pooled["delta"].map(math.isfinite).all()     # transfer.csv keeps every pooled number
    assert diamonds == [NOISE_COLOR] * len(TRICKS)
    findings = text.split("## Transfer findings", 1)[1].split("\n## ", 1)[0]
    helps = next(x for x in findings.splitlines() if x.startswith("- **helps**"))
    h = pooled.loc["helps"]
    interval = f"[{100 * h['ci_low']:+.2f}, {100 * h['ci_high']:+.2f}]"
    assert interval not in helps and "no pooled estimate (withheld: 2 paired seeds on small, wide, res, fewer " \
                                     "than 3 per workload" in helps
    said = next(x for x in findings.splitlines() if x.startswith("- Pooled estimates not drawn as findings"))
    assert (f"**helps** {100 * h['delta']:+.2f} pts [{100 * h['ci_low']:+.2f}, {100 * h['ci_high']:+.2f}]" in said
            and "with 2 paired seeds on small, wide, res" in said and "one degree of freedom" in said)
    assert "- Sign-flip tests: with 2 paired seeds the smallest two-sided sign-flip p is 2^(1-2) = 0.5" in findings
    cells = {r[0]: r[4] for r in table_rows(text, "## Transfer table")[1:]}
    assert cells["helps vs baseline"].endswith(f"not a finding (< {MIN_SEEDS} seeds)_")
    assert "grey, and not a finding, where a workload has fewer than 3 paired seeds" in text


def test_one_workload_with_2_seeds_withholds_the_pooled_estimate_and_names_it(tmp_path, diamonds):
    d = two_seeds(tmp_path, on=("wide",))
    table = X.transfer_table(load_study(d))
    assert withheld(table) == {v: "2 paired seeds on wide" for v in TRICKS}
    masked = as_findings(table, withheld(table))
    rows = masked[masked["workload"] == X.POOLED]
    assert rows["delta"].isna().all() and rows["i2"].isna().all() and rows["note"].str.startswith("withheld").all()
    assert table[table["workload"] == X.POOLED]["delta"].notna().all()   # the table itself is untouched
    build_report(d)
    assert diamonds == [NOISE_COLOR] * len(TRICKS)


def test_the_transfer_report_has_the_variants_with_each_workloads_time_and_the_per_seed_deltas(tmp_path):
    from tricks.running.records import run_arm, run_path, run_stem, write_json
    import json

    d = write_multi_study(tmp_path / "m")
    for s in SEEDS:   # helps trains twice as long as the baseline on res only
        p = run_path(d, run_stem(run_arm("helps", None, "res"), s))
        write_json(p, {**json.loads(p.read_text()), "train_seconds": 6.0})
    text = build_report(d).read_text()
    rows = table_rows(text, "## Variants")
    assert rows[0] == ["variant", "base", "tricks (parameters)", "small: train s (vs baseline)",
                       "wide: train s (vs baseline)", "res: train s (vs baseline)"]
    got = {r[0]: r[1:] for r in rows[1:]}
    assert got["baseline"] == ["", "none (the model's defaults)", "3.0 (1.00x)", "3.0 (1.00x)", "3.0 (1.00x)"]
    assert got["helps"] == ["baseline", "(as its base)", "3.0 (1.00x)", "3.0 (1.00x)", "6.0 (2.00x)"]
    assert "the ratio in parentheses divides it by baseline's" in text
    seeds = table_rows(text, "## Per-seed deltas")
    assert seeds[0] == ["variant", "workload", "seed 0", "seed 1", "seed 2", "seed 3", "mean"]
    got = {(r[0], r[1]): r[2:] for r in seeds[1:]}
    assert len(got) == len(TRICKS) * len(WORKLOADS) and [k[0] for k in got][:3] == ["helps"] * 3
    assert got[("flips", "wide")][:4] == [f"{100 * (acc('flips', 'wide', i) - acc('baseline', 'wide', i)):+.2f}"
                                          for i in range(4)]

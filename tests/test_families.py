"""Every committed report names its Holm family, and the size it states is the number of adjusted
p-values in its CSVs: deltas.csv (family ``comparisons``), effects.csv (``effects``), tuned.csv (one
family per LR view), transfer.csv (each workload's comparisons; the heterogeneity tests over the
tricks; pooled rows ``exploratory`` with no adjusted p) and confirm.csv (the registered claims)."""

import math
import re
from pathlib import Path

import pandas as pd
import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"
REPORTS = sorted(p for p in RESULTS.glob("**/REPORT.md") if (p.parent / "deltas.csv").is_file())


def _adjusted(csv: pd.DataFrame, col: str = "p_holm") -> int:
    return int(pd.to_numeric(csv[col], errors="coerce").notna().sum())


def _one(values) -> int:
    sizes = {int(v) for v in values if not (isinstance(v, float) and math.isnan(v))}
    assert len(sizes) <= 1, sizes
    return sizes.pop() if sizes else 0


def test_the_committed_reports_are_found():
    assert len(REPORTS) >= 12     # the studies, the transfer workloads and the confirmation's sub-studies


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: str(p.parent.relative_to(RESULTS)))
def test_a_report_states_the_family_its_deltas_csv_adjusts_over(report):
    said = [int(m) for m in re.findall(r"the family is every comparison in the table below \((\d+)\)",
                                       report.read_text())]
    deltas = pd.read_csv(report.parent / "deltas.csv")
    if "family" not in deltas.columns:   # written by the confirmation's registered revision, before the column
        assert report.is_relative_to(RESULTS / "confirm")
    else:
        assert set(deltas["family"]) <= {"comparisons"} and _one(deltas["family_size"]) == _adjusted(deltas)
    assert said == [_adjusted(deltas)]


@pytest.mark.parametrize("study", ["factorial", "factorial_followup"])
def test_a_factorial_report_states_the_family_of_its_effects(study):
    effects = pd.read_csv(RESULTS / study / "effects.csv")
    said = re.findall(r"Holm-adjusted over the (\d+) effects", (RESULTS / study / "REPORT.md").read_text())
    assert said and {int(m) for m in said} == {_one(effects["family_size"])} == {_adjusted(effects)}
    assert set(effects["family"].dropna()) == {"effects"}


def test_the_tuned_report_states_each_lr_views_family():
    tuned = pd.read_csv(RESULTS / "tuned_tricks" / "tuned.csv")
    text = (RESULTS / "tuned_tricks" / "REPORT.md").read_text()
    for view in ("default", "tuned"):
        said = {int(m) for m in re.findall(rf"the (\d+) {view}-LR ", text)}
        assert said == {_one(tuned[f"{view}_family_size"])} == {_adjusted(tuned, f"{view}_p_holm")}
        assert set(tuned[f"{view}_family"]) == {f"{view}-LR comparisons"}


def test_the_transfer_report_states_its_families_and_keeps_pooled_rows_out_of_them():
    table = pd.read_csv(RESULTS / "transfer" / "transfer.csv")
    text = (RESULTS / "transfer" / "REPORT.md").read_text()
    pooled = table["workload"] == "pooled"
    for family, rows in table[~pooled].groupby("family"):
        workload = rows["workload"].iloc[0]
        deltas = pd.read_csv(RESULTS / "transfer" / "workloads" / workload / "deltas.csv")
        assert _one(rows["family_size"]) == _adjusted(deltas) == _adjusted(rows)
    sizes = set(re.findall(r"within that workload's family \((\d+) comparisons", text))
    assert sizes == {str(_one(table.loc[~pooled, "family_size"]))}
    assert set(table.loc[pooled, "family"]) == {"exploratory"} and _adjusted(table[pooled]) == 0
    het = re.findall(r"Holm-adjusted over the (\d+) tricks", text)
    assert het and {int(m) for m in het} == {_one(table["het_family_size"])} == {_adjusted(table, "het_p_holm")}


def test_the_confirmation_report_states_its_one_family_of_claims():
    table = pd.read_csv(RESULTS / "confirm" / "confirm.csv")
    said = re.findall(r"One family: the (\d+) claims below", (RESULTS / "confirm" / "CONFIRM.md").read_text())
    assert said == [str(len(table))] and _one(table["family_size"]) == len(table)

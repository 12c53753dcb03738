"""Every committed study's report, rendered afresh (as ``tricks figures`` does) into a temporary copy,
has no unformatted placeholder (``{name}``) and no division by zero ("/0") in its text. The figures
are not drawn (their names are passed on as drawn): only the text is under test, and nothing is
written into results/."""

import re
import shutil

import pytest

from .conftest import REPO

STUDIES = sorted(p.parent for p in (REPO / "results").glob("*/study.json"))
# {name}, {name!r}, {name:.2f}, {obj.attr}, {d['k']}: what an f-string without its f leaves behind
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]\w*|\[[^\]{}]*\])*(?:![rsa])?(?::[^{}]*)?\}")
DIVISION_BY_ZERO = re.compile(r"/0(?![.\d])")   # "0.05/0" or "x/0,", not "1/0.5" or "2026/01"


def leftovers(text: str) -> list[str]:
    return PLACEHOLDER.findall(text) + [text[max(0, m.start() - 20):m.end() + 5]
                                        for m in DIVISION_BY_ZERO.finditer(text)]


def test_the_scan_finds_what_it_looks_for():
    assert leftovers("the grid value with the {better} mean") == ["{better}"]
    assert leftovers("at Holm's strictest step, 0.05/0, so") == ["strictest step, 0.05/0, so"]
    assert leftovers("{x!r} and {row['a']} and {p:.3f}") == ["{x!r}", "{row['a']}", "{p:.3f}"]
    assert leftovers("0.05/12 at 1/0.5 on 2026/01/02, set {} and {1}") == []


def test_every_committed_study_is_covered():
    assert len(STUDIES) >= 10 and {"backprop_tricks", "tuned_tricks", "transfer"} <= {s.name for s in STUDIES}


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_a_committed_studys_report_has_no_placeholder_and_no_division_by_zero(study, tmp_path, monkeypatch):
    from tricks.analysis import report as R

    monkeypatch.setattr(R, "draw_all", lambda jobs, workers=None: [args[-1] for _, args in jobs])
    monkeypatch.setattr(R, "forest_plot", lambda table, path: path)
    copy = tmp_path / study.name
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("figures"))
    R.build_report(copy)
    reports = sorted(copy.rglob("REPORT.md"))
    assert copy / "REPORT.md" in reports
    found = {str(p.relative_to(copy)): leftovers(p.read_text(encoding="utf-8")) for p in reports}
    assert not {k: v for k, v in found.items() if v}, found

"""benchmarks/compare_studies.py on fake stored studies: exit codes, the table, the files."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import write_fake_study

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_studies.py"
VARIANTS = [("baseline", None), ("trick", "baseline")]


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_a_variant_that_moved_is_flagged_and_the_rest_are_within_noise(tmp_path):
    base = {0: 0.60, 1: 0.62, 2: 0.58, 3: 0.61}
    a = write_fake_study(tmp_path / "a", {**{("baseline", s): x for s, x in base.items()},
                                          **{("trick", s): x + 0.05 for s, x in base.items()}}, VARIANTS, [0, 1, 2, 3])
    b = write_fake_study(tmp_path / "b", {**{("baseline", s): x + d for (s, x), d in zip(base.items(), (.01, -.01, 0, .01))},
                                          **{("trick", s): x - 0.05 for s, x in base.items()}}, VARIANTS, [0, 1, 2, 3])
    r = run(a, b, "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index("variant")
    assert t.loc["baseline", "verdict"] == "within noise"
    assert abs(t.loc["trick", "delta"] + 0.10) < 1e-9 and t.loc["trick", "verdict"] == "regression"
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text())["all_pairs"]["n"] == 8
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 10_000
    assert "trick" in r.stdout and "regression" in r.stdout


def test_studies_on_different_data_or_no_study_are_refused(tmp_path):
    a = write_fake_study(tmp_path / "a", {("baseline", 0): 0.5}, VARIANTS, [0])
    b = write_fake_study(tmp_path / "b", {("baseline", 0): 0.5}, VARIANTS, [0])
    manifest = json.loads((b / "study.json").read_text())
    manifest["dataset"]["sha256"] = "1" * 64
    (b / "study.json").write_text(json.dumps(manifest))
    r = run(a, b)
    assert r.returncode == 2 and "different datasets" in r.stderr
    r = run(a, tmp_path / "nothing")
    assert r.returncode == 2 and "study.json" in r.stderr and "Traceback" not in r.stderr

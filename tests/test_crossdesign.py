"""The factorial-vs-cumulative table and its script, on scripted tables (no training)."""

import subprocess
import sys

import pandas as pd
import pytest

from tricks.analysis.crossdesign import effects_vs_steps

from .conftest import REPO

EFFECTS = pd.DataFrame({
    "term": ["a", "b", "a*b"], "kind": ["main", "main", "interaction"], "effect": [0.02, -0.01, 0.005],
    "ci_low": [0.01, -0.03, -0.01], "ci_high": [0.03, 0.01, 0.02], "p": [0.001, 0.3, 0.5],
    "p_holm": [0.003, 0.6, 0.6], "verdict": ["improvement", "within noise", "within noise"],
    "aliases": ["b*c*d", "", ""]})
DELTAS = pd.DataFrame({
    "variant": ["A", "B", "B"], "against": ["baseline", "baseline", "A"], "kind": ["vs_baseline", "vs_baseline", "vs_base"],
    "metric": ["micro_f1"] * 3, "delta": [0.03, 0.05, 0.02], "ci_low": [0.02, 0.04, 0.0], "ci_high": [0.04, 0.06, 0.04],
    "verdict": ["improvement", "improvement", "within noise"]})


def test_each_factor_sits_next_to_its_step_with_the_difference():
    t = effects_vs_steps(EFFECTS, DELTAS, {"a": ("A", "baseline"), "b": ("B", "A")})
    assert list(t["factor"]) == ["a", "b"]
    assert t["factorial_effect"].tolist() == [0.02, -0.01] and t["step_delta"].tolist() == [0.03, 0.02]
    assert t["difference"].tolist() == pytest.approx([-0.01, -0.03])
    assert t.loc[1, "step_ci_low"] == 0.0 and t.loc[1, "factorial_verdict"] == "within noise"
    assert t["factorial_aliases"].tolist() == ["b*c*d", ""]     # a main effect aliased with a 3-factor word


def test_a_mapping_typo_is_an_error_that_lists_what_exists():
    with pytest.raises(KeyError, match="effects.csv has a, b"):
        effects_vs_steps(EFFECTS, DELTAS, {"c": ("A", "baseline")})
    with pytest.raises(KeyError, match="A vs baseline, B vs baseline, B vs A"):
        effects_vs_steps(EFFECTS, DELTAS, {"a": ("A", "B")})


def test_the_script_writes_its_table_and_figure_and_refuses_missing_inputs(tmp_path):
    fac, cum = tmp_path / "factorial", tmp_path / "cumulative"
    fac.mkdir()
    cum.mkdir()
    script = [sys.executable, str(REPO / "benchmarks" / "factorial_vs_cumulative.py"), "--factorial", str(fac),
              "--cumulative", str(cum)]
    r = subprocess.run(script, capture_output=True, text=True)
    assert r.returncode == 2 and "effects.csv not found" in r.stderr
    names = ["norm", "exp_lr", "weight_decay", "kaiming", "dense_dropout", "conv_dropout"]
    steps = [("norm_inputs", "baseline"), ("lr_schedule", "norm_inputs"), ("weight_decay", "lr_schedule"),
             ("init_weights", "weight_decay"), ("dropout_dense", "init_weights"), ("dropout_conv", "init_weights")]
    pd.DataFrame({"term": names, "kind": "main", "effect": [0.01 * i for i in range(6)], "ci_low": -0.01,
                  "ci_high": 0.07, "verdict": "within noise"}).to_csv(fac / "effects.csv", index=False)
    pd.DataFrame({"variant": [v for v, _ in steps], "against": [a for _, a in steps], "metric": "micro_f1",
                  "delta": 0.02, "ci_low": 0.0, "ci_high": 0.04, "verdict": "within noise"}).to_csv(
        cum / "deltas.csv", index=False)
    r = subprocess.run(script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(fac / "vs_cumulative.csv")
    assert out["factor"].tolist() == names
    assert out["difference"].tolist() == pytest.approx([0.01 * i - 0.02 for i in range(6)])
    assert (fac / "vs_cumulative.png").stat().st_size > 10_000

"""Confirmation (issue 34): claims files, pre-registration refusals, the statistics against scipy, per-image
predictions, and a tiny real confirmation end to end on the synthetic image folder."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as sps

from tricks.analysis import confirm_stats as cs
from tricks.errors import SpecError, TricksError
from tricks.predictions import decode_labels, encode_labels
from tricks.specs.claims import parse_claims

CLAIM = """name = "c"
[[claims]]
name = "a_beats_b"
spec = "s.toml"
study = "explore"
variant = "a"
against = "b"
direction = "better"
"""


def test_predictions_round_trip_and_refuse_foreign_blobs():
    y = [0, 9, 3, 255, 7] * 2000
    blob = encode_labels(y)
    assert decode_labels(json.loads(json.dumps(blob))) == y
    assert len(blob["data"]) == 13336          # 10,000 images: about 13 KB a run
    with pytest.raises(ValueError):
        encode_labels([256])
    with pytest.raises(ValueError):
        decode_labels({**blob, "n": 3})
    with pytest.raises(ValueError):
        decode_labels({"encoding": "digits", "data": "0123"})


@pytest.mark.parametrize("edit, message", [
    ('direction = "better"', None),
    ('direction = "up"', "'direction' must be one of"),
    ('direction = "equivalent"', "needs a 'margin'"),
    ('direction = "better"\nmargin = 1.0', "for direction = 'equivalent' only"),
    ('direction = "better"\ncolour = 1', "unknown key"),
])
def test_claims_file_is_checked(edit, message):
    text = CLAIM.replace('direction = "better"', edit)
    if message is None:
        c = parse_claims(text)
        assert c.claims[0].weights == (("a", 1.0), ("b", -1.0)) and len(c.sha256) == 64
    else:
        with pytest.raises(SpecError, match=message):
            parse_claims(text)


def test_a_contrast_must_sum_to_zero_and_reads_as_a_difference():
    base = CLAIM.replace('variant = "a"\nagainst = "b"\n', "")
    c = parse_claims(base.replace('direction', 'contrast = { "a+b" = 1, "a" = -1, "b" = -1, "base" = 1 }\ndirection'))
    assert c.claims[0].describe() == "a+b - a - b + base"
    with pytest.raises(SpecError, match="sum to 0"):
        parse_claims(base.replace('direction', 'contrast = { "a" = 1, "b" = -2 }\ndirection'))


def test_sign_flip_p_equals_scipy_and_brute_force():
    d = np.array([0.8, -0.3, 1.2, 0.5, 0.1, 0.9, -0.2, 0.7])
    flips = np.array(list(itertools.product((1, -1), repeat=len(d))))
    means = flips @ d / len(d)
    brute = np.mean(means >= d.mean() - 1e-12)
    ours = cs.sign_flip_p(d, "greater")
    ref = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative="greater",
                               n_resamples=np.inf).pvalue
    assert ours == pytest.approx(brute) == pytest.approx(ref)
    assert cs.sign_flip_p(np.ones(10), "greater") == pytest.approx(2 ** -10) == cs.min_sign_flip_p(10, False)
    from tricks.analysis.stats import sign_flip_p as two_sided   # deltas.csv's column: the same test
    assert two_sided(d) == pytest.approx(cs.sign_flip_p(d, "two-sided"))


def test_directions_equivalence_and_holm():
    up = np.array([1.0, 1.2, 0.9, 1.1, 1.3, 0.8, 1.0, 1.05, 0.95, 1.15])
    t, f = cs.directional_ps(up, "better")
    assert t < 1e-6 and f == pytest.approx(2 ** -10)
    t, f = cs.directional_ps(up, "worse")
    assert t > 0.99 and f == 1.0
    t, f = cs.directional_ps(up - 1.0, "equivalent", margin=0.5)   # within +-0.5: equivalent
    assert t < 0.01 and f < 0.01
    t, f = cs.directional_ps(up, "equivalent", margin=0.5)         # about +1: not
    assert t > 0.5 and f > 0.5
    assert cs.holm([0.01, 0.04, float("nan")])[:2] == pytest.approx([0.02, 0.04])
    assert cs.verdict(0.01, 0.01, True) == "confirmed" and cs.verdict(0.01, 0.2, True) == "not confirmed"
    assert cs.verdict(0.0, 0.0, False) == "pending"


def test_two_level_bootstrap_is_wider_than_seeds_alone_and_centred():
    rng = np.random.default_rng(1)
    truth = rng.random((1, 1, 2000)) < 0.7
    noise = rng.random((2, 8, 2000)) < 0.1
    correct = truth ^ noise                     # both arms equal in law: contrast about 0
    lo, hi = cs.two_level_bootstrap(correct, np.array([1.0, -1.0]), draws=500)
    assert lo < 0 < hi and hi - lo < 3
    better = correct.copy()
    better[0, :, :200] = True                    # arm 0 right on 200 more images (minus overlap)
    lo2, hi2 = cs.two_level_bootstrap(better, np.array([1.0, -1.0]), draws=500)
    assert lo2 > 0


def test_seed_machine_keeps_a_started_seed_on_its_machine(tmp_path):
    from tricks.running.confirm_plan import seed_machine

    assert seed_machine(tmp_path, 5, "AMD", started=False) == "AMD"
    assert seed_machine(tmp_path, 5, "Intel", started=True) is None     # started on AMD: left for it
    assert seed_machine(tmp_path, 5, "Intel", started=False) == "Intel"  # never started: taken over
    assert seed_machine(tmp_path, 5, "Intel", started=True) == "Intel"


def test_a_dirty_tree_is_refused(monkeypatch, tmp_path):
    from tricks.running import confirm as confirm_mod
    from tricks.running.plan import StudyOptions

    claims = parse_claims(CLAIM, str(tmp_path / "claims.toml"))
    monkeypatch.setattr(confirm_mod, "resolve_groups", lambda c, load: {})
    monkeypatch.setattr(confirm_mod, "source_seeds", lambda c: {"explore": [0, 1]})
    monkeypatch.setattr(confirm_mod, "git_revision", lambda: {"revision": "f" * 40, "dirty": True})
    base = StudyOptions(spec=None, source=None, out_dir=tmp_path / "out", precision="fp32")
    with pytest.raises(TricksError, match="uncommitted changes"):
        confirm_mod.run_confirmation(claims, base, (5,), run_study=lambda o: None)
    with pytest.raises(TricksError, match="used by the exploratory studies: explore: 1"):
        confirm_mod.run_confirmation(claims, base, (1, 5), run_study=lambda o: None)
    assert not (tmp_path / "out").exists()


def _tricks(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tricks", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_a_tiny_confirmation_end_to_end(tmp_path, image_folder):
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\n[training]\nepochs = 1\nbatch_size = 16\nseeds = [0, 1]\n'
                    '[[variants]]\nname = "plain"\ntricks = []\n'
                    '[[variants]]\nname = "norm"\nbase = "plain"\ntricks = [{ name = "normalize_inputs" }]\n')
    data = ["--dataset", "imagefolder", "--data-dir", image_folder, "--device", "cpu", "--precision", "fp32"]
    r = _tricks("ablation", "--spec", spec, "--out", tmp_path / "explore", "--no-progress", "--no-report",
                "--workers", "1", *data)
    assert r.returncode == 0, r.stderr
    claims = tmp_path / "claims.toml"
    claims.write_text(CLAIM.replace("s.toml", "tiny.toml").replace('"a"', '"norm"').replace('"b"', '"plain"'))
    out = tmp_path / "confirm"
    args = ["confirm", "--claims", claims, "--out", out, "--workers", "1", "--no-progress", *data]
    r = _tricks(*args, "--seeds", "1-3", "--allow-dirty")
    assert r.returncode == 2 and "explore: 1" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
    r = _tricks(*args, "--seeds", "2,3", "--allow-dirty")
    assert r.returncode == 0, r.stderr
    reg = json.loads((out / "preregistration.json").read_text())
    assert reg["seeds"] == [2, 3] and reg["precision"] == "fp32" and reg["allow_dirty"] is True
    assert reg["exploratory"]["a_beats_b"]["seeds"] == [0, 1]
    runs = sorted((out / "studies" / "tiny" / "runs").glob("*.json"))
    assert [p.stem for p in runs] == ["norm__seed2", "norm__seed3", "plain__seed2", "plain__seed3"]
    rec = json.loads(runs[0].read_text())
    labels = json.loads((out / "studies" / "tiny" / "test_labels.json").read_text())
    truth = decode_labels(next(iter(labels.values()))["labels"])
    pred = decode_labels(rec["test_predictions"])
    assert len(pred) == len(truth) == 30
    assert np.mean(np.array(pred) == np.array(truth)) == pytest.approx(rec["metrics"]["accuracy"])
    import pandas as pd

    table = pd.read_csv(out / "confirm.csv")
    assert list(table["claim"]) == ["a_beats_b"] and table["seeds_complete"][0] == 2
    assert table["family_size"][0] == 1 and table["predictions"][0] == "stored"
    assert table["verdict"][0] in ("confirmed", "not confirmed")
    report = (out / "CONFIRM.md").read_text()
    assert "One family: the 1 claims below" in report and "Not a registered confirmation" in report
    # a second start reuses everything; an edited claims file is refused, naming the claim
    r = _tricks(*args, "--seeds", "2,3", "--allow-dirty")
    assert r.returncode == 0 and "4 reused" in r.stdout, r.stdout + r.stderr
    claims.write_text(claims.read_text().replace('direction = "better"', 'direction = "worse"'))
    r = _tricks(*args, "--seeds", "2,3", "--allow-dirty")
    assert r.returncode == 2 and "claim a_beats_b edited" in r.stderr
    r = _tricks("confirm", "--report-only", "--out", out)
    assert r.returncode == 0 and (out / "CONFIRM.md").exists()

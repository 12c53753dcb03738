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


def test_each_test_equals_scipy_in_both_directions():
    d = np.array([0.8, -0.3, 1.2, 0.5, 0.1, 0.9, -0.2, 0.7, 0.0, 0.4])
    for alt, direction in (("greater", "better"), ("less", "worse")):
        t, f = cs.directional_ps(d, direction)
        assert t == pytest.approx(sps.ttest_1samp(d, 0.0, alternative=alt).pvalue)
        assert f == pytest.approx(sps.permutation_test((d,), np.mean, permutation_type="samples",
                                                       alternative=alt, n_resamples=np.inf).pvalue)
    flips = np.array(list(itertools.product((1, -1), repeat=len(d))))
    assert cs.sign_flip_p(d, "less") == pytest.approx(np.mean(flips @ d <= d.sum() + 1e-12))   # a zero flips too
    t, f = cs.directional_ps(d - 0.4, "equivalent", margin=0.6)   # TOST: the larger of the two one-sided p
    assert t == pytest.approx(max(sps.ttest_1samp(d - 0.4 + 0.6, 0.0, alternative="greater").pvalue,
                                  sps.ttest_1samp(d - 0.4 - 0.6, 0.0, alternative="less").pvalue))
    assert f == pytest.approx(max(cs.sign_flip_p(d - 0.4 + 0.6, "greater"), cs.sign_flip_p(d - 0.4 - 0.6, "less")))
    lo, hi = cs.t_interval(d, 1 - 0.05 / 24)
    ref = sps.t.interval(1 - 0.05 / 24, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert (lo, hi) == pytest.approx(ref)


def test_the_bootstrap_is_deterministic_and_resamples_images_jointly():
    rng = np.random.default_rng(3)
    correct = rng.random((2, 4, 500)) < 0.6
    w = np.array([1.0, -1.0])
    assert cs.two_level_bootstrap(correct, w, draws=300) == cs.two_level_bootstrap(correct, w, draws=300)
    # every seed alike: seed resampling adds nothing, so the interval is the images' alone, and it matches a
    # loop that resamples one set of images per draw for all seeds (joint), not one per seed
    same = np.repeat(correct[:, :1, :], 4, axis=1)
    lo, hi = cs.two_level_bootstrap(same, w, draws=400, seed=9)
    per_image = (same[0, 0].astype(float) - same[1, 0]) * 100
    draws = np.random.default_rng(9).multinomial(500, np.full(500, 1 / 500), size=400) @ per_image / 500
    assert (lo, hi) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), rel=1e-4)


RUN_TEMPLATE = Path(__file__).resolve().parents[1] / "results/confirm/studies/lr_schedules/runs/constant__seed5.json"


def _scripted_confirmation(root: Path, acc: dict, claims: list[dict], seeds: list[int]) -> Path:
    """A confirmation folder from scripted accuracies {(variant, seed): accuracy}; no predictions."""
    template = json.loads(RUN_TEMPLATE.read_text())
    template.pop("test_predictions", None)
    runs = root / "studies" / "x" / "runs"
    runs.mkdir(parents=True)
    for (v, s), a in acc.items():
        rec = {**template, "variant": v, "seed": s, "metrics": {**template["metrics"], "accuracy": a}}
        (runs / f"{v}__seed{s}.json").write_text(json.dumps(rec))
    (root / "preregistration.json").write_text(json.dumps({
        "seeds": seeds, "exploratory": {}, "claims_sha256": "0" * 64, "claims_path": "benchmarks/claims.toml",
        "registered_at": "2026-12-04T00:00:00Z", "revision": None, "dirty": False, "precision": "fp32",
        "threads": 1, "specs": {}}))
    (root / "claims.json").write_text(json.dumps({"name": "scripted", "claims": [
        {"folder": "studies/x", "study": "explore", "margin": None, "workload": None, "tuned": False,
         "contrast": c["name"], **c} for c in claims]}))
    return root


def test_a_scripted_confirmation_holds_one_family_of_every_claim(tmp_path):
    from statsmodels.stats.multitest import multipletests

    from tricks.analysis.confirm_table import load_confirmation

    seeds = list(range(5, 13))
    rng = np.random.default_rng(0)
    acc = {}
    for s in seeds:
        base = 0.70 + rng.normal(0, 0.01)
        acc.update({("base", s): base, ("a", s): base + 0.01 + rng.normal(0, 0.002),
                    ("b", s): base + rng.normal(0, 0.005), ("ab", s): base + 0.03 + rng.normal(0, 0.002),
                    ("c", s): base + rng.normal(0, 0.01)})
    claims = [{"name": "a_up", "weights": [["a", 1], ["base", -1]], "direction": "better"},
              {"name": "a_x_b", "weights": [["ab", 1], ["a", -1], ["b", -1], ["base", 1]], "direction": "better"},
              {"name": "c_down", "weights": [["c", 1], ["base", -1]], "direction": "worse"}]
    t = load_confirmation(_scripted_confirmation(tmp_path / "all", acc, claims, seeds)).table.set_index("claim")
    d = {c["name"]: np.array([sum(w * acc[(v, s)] for v, w in c["weights"]) * 100 for s in seeds]) for c in claims}
    alt = {"a_up": "greater", "a_x_b": "greater", "c_down": "less"}
    tp = [sps.ttest_1samp(d[k], 0.0, alternative=alt[k]).pvalue for k in alt]
    fp = [sps.permutation_test((d[k],), np.mean, permutation_type="samples", alternative=alt[k],
                               n_resamples=np.inf).pvalue for k in alt]
    assert list(t["family_size"]) == [3, 3, 3]
    assert list(t["t_p_holm"]) == pytest.approx(multipletests(tp, method="holm")[1])
    assert list(t["sign_flip_p_holm"]) == pytest.approx(multipletests(fp, method="holm")[1])
    assert t.loc["a_x_b", "delta"] == pytest.approx(d["a_x_b"].mean())            # the weighted contrast
    assert list(t["verdict"]) == ["confirmed", "confirmed", "not confirmed"]
    # one arm of one seed missing: every verdict pending and no adjusted p, whatever the complete claims show
    partial = {k: v for k, v in acc.items() if k != ("b", 12)}
    t2 = load_confirmation(_scripted_confirmation(tmp_path / "part", partial, claims, seeds)).table.set_index("claim")
    assert set(t2["verdict"]) == {"pending"} and t2[["t_p_holm", "sign_flip_p_holm"]].isna().all().all()
    assert t2.loc["a_x_b", "seeds_complete"] == 7 and t2.loc["a_up", "seeds_complete"] == 8
    assert load_confirmation(tmp_path / "part").runs == (39, 40)   # 5 arms x 8 seeds, shared arms once
    # a record that scored NaN fails the record schema: it counts as missing (its seed incomplete, every
    # verdict pending, the family still all 3 claims) and the report names the file and what is wrong
    from tricks.analysis.confirm_report import build_confirm_report

    folder = _scripted_confirmation(tmp_path / "nan", {**acc, ("c", 5): float("nan")}, claims, seeds)
    c3 = load_confirmation(folder)
    assert set(c3.table["verdict"]) == {"pending"} and list(c3.table["family_size"]) == [3, 3, 3]
    assert c3.table.set_index("claim").loc["c_down", "seeds_complete"] == 7
    assert list(c3.corrupted) == [str(folder / "studies/x/runs/c__seed5.json")]
    report = build_confirm_report(folder).read_text()
    assert "1 run file(s) are unreadable" in report and "metrics.accuracy must be a finite number" in report


def test_a_variant_claimed_tuned_and_untuned_is_refused_and_a_tuned_lr_is_the_grid_value(tmp_path):
    from types import SimpleNamespace

    from tricks.running.confirm_plan import resolve_groups

    grid = (1 / 3 * 1e-3, 1e-3, 3e-3)   # a grid value that selection.csv's 6 digits cannot hold
    spec = SimpleNamespace(name="s", variants=[SimpleNamespace(name=v) for v in ("a", "b")], workloads=[],
                           multi_workload=False, tuning=SimpleNamespace(lr=grid))
    (tmp_path / "explore").mkdir()
    (tmp_path / "explore" / "selection.csv").write_text(f"variant,selected_lr\na,{grid[0]:.6g}\nb,0.001\n")
    tuned = CLAIM + "tuned = true\n"
    groups = resolve_groups(parse_claims(tuned, str(tmp_path / "c.toml")), lambda p: spec)
    assert groups["s"].fixed_lr == {"a": grid[0], "b": 1e-3}          # exactly the grid's value, not 0.000333333
    second = CLAIM.replace('name = "a_beats_b"', 'name = "again"')
    with pytest.raises(TricksError, match="variant a, b of spec s is claimed both"):
        resolve_groups(parse_claims(tuned + second.split('name = "c"\n')[1], str(tmp_path / "c.toml")),
                       lambda p: spec)
    (tmp_path / "explore" / "selection.csv").write_text("variant,selected_lr\na,0.002\nb,0.001\n")
    with pytest.raises(TricksError, match="selects LR 0.002 for variant a, not a value of spec s's grid"):
        resolve_groups(parse_claims(tuned, str(tmp_path / "c.toml")), lambda p: spec)

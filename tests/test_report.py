"""Figures, tables and REPORT.md regenerated from stored runs (fake runs: no training)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tricks.errors import TricksError
from tricks.analysis.report import DESIGN_FIGURES, FIGURES, build_report

from .conftest import REPO, write_fake_study

PLAIN_FIGURES = [f for f in FIGURES if f not in DESIGN_FIGURES]   # a study without a design

VARIANTS = [("baseline", None), ("better", "baseline"), ("worse", "better"), ("same", "baseline")]
SEEDS = [0, 1, 2]
ACCS = {**{("baseline", s): a for s, a in zip(SEEDS, (0.50, 0.52, 0.51))},
        **{("better", s): a for s, a in zip(SEEDS, (0.60, 0.63, 0.61))},
        **{("worse", s): a for s, a in zip(SEEDS, (0.40, 0.41, 0.43))},
        **{("same", s): a for s, a in zip(SEEDS, (0.51, 0.51, 0.52))}}


@pytest.fixture
def study(tmp_path):
    return write_fake_study(tmp_path / "res", ACCS, VARIANTS, SEEDS)


def test_report_writes_every_table_and_figure(study):
    path = build_report(study)
    assert path == study / "REPORT.md"
    for name in PLAIN_FIGURES:
        f = study / "figures" / name
        assert f.is_file() and f.stat().st_size > 5_000, name
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(study / "summary.csv")
    assert list(summary["variant"]) == ["baseline", "better", "worse", "same"]
    assert summary.loc[1, "micro_f1_mean"] == pytest.approx((0.60 + 0.63 + 0.61) / 3)
    deltas = pd.read_csv(study / "deltas.csv").set_index(["variant", "against"])
    assert deltas.loc[("better", "baseline"), "verdict"] == "improvement"
    assert deltas.loc[("worse", "better"), "verdict"] == "regression"
    assert deltas.loc[("same", "baseline"), "verdict"] == "within noise"
    runs = pd.read_csv(study / "runs.csv")
    assert len(runs) == 12 and set(runs.columns) >= {"variant", "seed", "status", "accuracy", "micro_f1",
                                                      "macro_f1", "epochs", "train_seconds"}
    text = path.read_text()
    assert "Helped beyond seed noise" in text and "**better** +10.33 pts" in text
    assert "Hurt beyond seed noise" in text and "**worse**" in text
    assert "Within noise vs baseline" in text and "same (+0.33 pts)" in text
    for name in PLAIN_FIGURES:
        assert f"(figures/{name})" in text


def test_deleted_figures_are_regenerated(study):
    build_report(study)
    for f in (study / "figures").iterdir():
        f.unlink()
    (study / "REPORT.md").unlink()
    build_report(study)
    assert sorted(p.name for p in (study / "figures").iterdir()) == sorted(PLAIN_FIGURES)


def test_partial_study_renders_and_lists_what_is_missing(tmp_path):
    accs = dict(ACCS)
    del accs[("worse", 2)], accs[("same", 0)]
    d = write_fake_study(tmp_path / "part", accs, VARIANTS, SEEDS, diverged={("better", 1)})
    text = build_report(d).read_text()
    assert "## Missing runs" in text and "worse seed 2, same seed 0" in text
    assert "## Diverged runs" in text and "better seed 1" in text
    summary = pd.read_csv(d / "summary.csv").set_index("variant")
    assert summary.loc["better", "runs_ok"] == 2 and summary.loc["better", "runs_diverged"] == 1


def test_a_stale_run_with_other_settings_is_not_counted(study):
    rec_path = study / "runs" / "better__seed0.json"
    rec = json.loads(rec_path.read_text())
    rec["settings_key"] = "something-else"
    rec_path.write_text(json.dumps(rec))
    text = build_report(study).read_text()
    assert "better seed 0" in text     # listed as missing
    assert len(pd.read_csv(study / "runs.csv")) == 11


def test_one_seed_study_gives_no_interval(tmp_path):
    d = write_fake_study(tmp_path / "one", {("baseline", 0): 0.5, ("better", 0): 0.6}, VARIANTS[:2], [0])
    text = build_report(d).read_text()
    assert "1 seed(s): no interval" in text and "Not decidable with fewer than 2 paired seeds" in text


def test_a_directory_without_study_json_is_a_clear_error(tmp_path):
    with pytest.raises(TricksError, match="no study.json"):
        build_report(tmp_path)


def test_figures_command_does_not_import_torch(study):
    code = ("import sys; from tricks.cli import main; rc = main(['figures', '--results', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(study)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert (study / "REPORT.md").is_file()


def test_regeneration_is_byte_identical(study):
    build_report(study)
    first = {p.name: p.read_bytes() for p in [*(study / "figures").iterdir(), study / "REPORT.md",
                                              study / "summary.csv", study / "deltas.csv"]}
    build_report(study)
    second = {p.name: p.read_bytes() for p in [*(study / "figures").iterdir(), study / "REPORT.md",
                                               study / "summary.csv", study / "deltas.csv"]}
    assert first == second


def test_learning_curves_compare_the_nll_whatever_each_variant_trained_on():
    from tricks.analysis.figures import training_nll

    h = pd.DataFrame({"variant": ["a", "a", "mse"], "train_loss": [2.0, 1.5, 0.3],
                      "train_nll": [None, None, 1.7]})
    assert training_nll(h).tolist() == [2.0, 1.5, 1.7]
    assert training_nll(h.drop(columns="train_nll")).tolist() == [2.0, 1.5, 0.3]


def test_the_report_names_each_cpu_and_how_many_runs_flushed_subnormals(tmp_path):
    from tricks.running.records import run_path, write_json

    out = write_fake_study(tmp_path / "s", {("baseline", 0): 0.4, ("baseline", 1): 0.42, ("norm", 0): 0.46,
                                            ("norm", 1): 0.47}, [("baseline", None), ("norm", "baseline")], [0, 1])
    for stem, cpu, denormals in (("baseline__seed1", "Intel Xeon", "flushed"), ("norm__seed1", "Intel Xeon", "kept")):
        rec = json.loads(run_path(out, stem).read_text())
        rec["provenance"].update(cpu=cpu, denormals=denormals)
        write_json(run_path(out, stem), rec)
    line = next(x for x in build_report(out).read_text().splitlines() if x.startswith("- device:"))
    assert "CPU: test (2 runs), Intel Xeon (2 runs);" in line
    assert "subnormal floats flushed to zero in 1 of 4 runs" in line


def test_a_variant_diverged_in_every_seed_is_named_so_not_too_few_seeds(tmp_path):
    diverged = {("better", 0), ("better", 1), ("better", 2), ("same", 1)}
    d = write_fake_study(tmp_path / "div", ACCS, VARIANTS, SEEDS, diverged=diverged)
    text = build_report(d).read_text()
    deltas = pd.read_csv(d / "deltas.csv").set_index(["variant", "against"])
    assert deltas.loc[("better", "baseline"), "verdict"] == "diverged (all 3 seeds)"
    assert deltas.loc[("worse", "better"), "verdict"] == "better diverged (all 3 seeds)"   # its base has no score
    assert deltas.loc[("worse", "baseline"), "verdict"] == "regression"                    # untouched
    assert deltas.loc[("same", "baseline"), "n"] == 2                                      # seed 1 left out
    summary = pd.read_csv(d / "summary.csv").set_index("variant")
    assert summary.loc["better", "note"] == "diverged (all 3 seeds)" and summary.loc["better", "runs_ok"] == 0
    assert "too few seeds" not in text and "Not decidable" not in text
    assert ("Diverged runs: 4 of 12 finished (better__seed0, better__seed1, better__seed2, same__seed1): "
            "training loss became non-finite") in text
    assert "- same seed 1: training loss became nan in epoch 2" in text
    assert "| better | 0 | 3 | n/a | n/a | diverged (all 3 seeds) | n/a |" in text
    assert ("Diverged in every seed, so there is no score to compare (see Diverged runs): "
            "**better** (all 3 seeds).") in text


def _with_skipped(path, skipped):
    rec = json.loads(path.read_text())
    rec["dataset"]["skipped_images"] = skipped
    path.write_text(json.dumps(rec))


def test_the_report_names_the_unreadable_images_the_loader_skipped(study):
    examples = [f"train/cat/{i:04d}.jpg" for i in range(10)]
    _with_skipped(study / "study.json", {"count": 12, "examples": examples})
    lines = build_report(study).read_text().splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("- dataset:"))
    assert lines[at + 1] == ("- skipped 12 unreadable image(s) when decoding, so no run trained or tested on them: "
                             + ", ".join(f"`{e}`" for e in examples) + " and 2 more")


def test_skipped_images_come_from_the_runs_when_study_json_does_not_say_and_none_is_silent(study):
    _with_skipped(study / "runs" / "baseline__seed0.json", {"count": 1, "examples": ["test/dog/0003.jpg"]})
    text = build_report(study).read_text()
    assert "- skipped 1 unreadable image(s) when decoding, so no run trained or tested on them: " \
           "`test/dog/0003.jpg`\n" in text
    _with_skipped(study / "runs" / "baseline__seed0.json", {"count": 0, "examples": []})
    _with_skipped(study / "study.json", {"count": 0, "examples": []})
    assert "unreadable" not in build_report(study).read_text()


def test_the_report_defines_p_better_gives_mde_holm_and_the_test_sets_own_uncertainty(tmp_path):
    from tricks.analysis.stats import detectable

    accs = {**{("baseline", s): 0.70 for s in SEEDS}, **{("better", s): a for s, a in zip(SEEDS, (0.80, 0.81, 0.83))},
            **{("same", s): a for s, a in zip(SEEDS, (0.70, 0.71, 0.70))}}   # same: tie, win, tie
    out = write_fake_study(tmp_path / "s", accs, [("baseline", None), ("better", "baseline"), ("same", "baseline")],
                           SEEDS)
    manifest = json.loads((out / "study.json").read_text())
    manifest["dataset"]["test_images"] = 10_000
    (out / "study.json").write_text(json.dumps(manifest))
    text = build_report(out).read_text()
    deltas = pd.read_csv(out / "deltas.csv").set_index("variant")
    for v in ("better", "same"):   # m = 2 comparisons: Holm's strictest step is 0.05 / 2
        assert deltas.loc[v, "mde_holm"] == pytest.approx(detectable(3, deltas.loc[v, "delta_std"], 0.025), rel=1e-5)
        assert deltas.loc[v, "mde_holm"] > deltas.loc[v, "mde"]
    assert deltas.loc["same", "p_improve"] == pytest.approx(2 / 3)   # a tie counts half: (0.5 + 1 + 0.5) / 3
    low, high = sorted(deltas["mde_holm"]), sorted(deltas["mde"])
    assert (f"What these seeds could detect: with 3 paired seeds the smallest effect these comparisons detect at 80% "
            f"power after Holm (two-sided, 0.05/2 at its strictest step) is {100 * low[0]:.2f} to {100 * low[1]:.2f} "
            f"points ({100 * high[0]:.2f} to {100 * high[1]:.2f} per comparison at 0.05)") in text
    assert "What these seeds could detect (" not in text   # report_findings' per-comparison sentence is replaced
    assert ("P(better): the share of the paired seeds in which the variant's micro-F1 is higher than that of the one "
            "it is compared with, a tie counting half") in text
    assert "| same | baseline | 3 |" in text and "| 0.67 | within noise |" in text
    # Wilson 95% on 10,000 images at 70%: [69.09, 70.89], half-width 0.90 points, beside the seed intervals
    assert "| baseline | 3 | 0 | 70.00 | 0.00 | [70.00, 70.00] | 70.00 | [69.09, 70.89] |" in text
    assert ("On 10,000 test images one accuracy carries a binomial sampling half-width (Wilson 95%) of about ±0.90 "
            "points at baseline's mean accuracy of 70.00%") in text
    assert text.index("Test-set sampling:") < text.index("## Paired deltas")


def test_training_images_are_the_split_less_validation_or_the_subset():
    from tricks.analysis.report_header import trained_images

    assert trained_images({"train_subset": None, "validation": 5000}, {"train_images": 50000}) == \
        "45000 (the training split less the 5000 validation images)"
    assert trained_images({"train_subset": 20000, "validation": 5000}, {"train_images": 50000}) == \
        "20000 (class-balanced subset)"
    assert trained_images({"train_subset": None, "validation": 0}, {"train_images": 50000}) == \
        "50000 (the whole training split)"

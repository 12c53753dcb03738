"""Every input is a contract: files read back are validated, the CI gate fails closed, corrupted
run files are named, and every bad input is one line with exit code 2 (scripted inputs, no training
except where a command must reach the data)."""

import json
import math
import subprocess
import sys

import pytest

from tricks.analysis.regression import CORRUPTED, UNVERIFIABLE, compare, make_reference
from tricks.analysis.studydata import load_study
from tricks.cli import main
from tricks.errors import DataError
from tricks.running.schema import REFERENCE, SchemaError, validate
from tricks.training.data import DataSource, load_dataset

from .conftest import REPO, STUDY_SPEC, make_image_folder, write_fake_study

VARIANTS = [("baseline", None), ("norm", "baseline")]
SEEDS = [0, 1, 2]
ACCS = {("baseline", 0): 0.40, ("baseline", 1): 0.42, ("baseline", 2): 0.41,
        ("norm", 0): 0.46, ("norm", 1): 0.47, ("norm", 2): 0.49}


@pytest.fixture
def fake(tmp_path):
    return write_fake_study(tmp_path / "study", dict(ACCS), VARIANTS, SEEDS)


@pytest.fixture
def reference(fake, tmp_path):
    ref = make_reference(load_study(fake))
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref))
    return path


def run_cli(*args, capsys):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r["variants"]["norm"].update(tolerance="wide"), "variants.norm.tolerance must be a finite number"),
    (lambda r: r["variants"]["norm"].update(tolerance=float("inf")), "variants.norm.tolerance must be a finite"),
    (lambda r: r["variants"]["norm"].update(tolerance=float("nan")), "variants.norm.tolerance must be a finite"),
    (lambda r: r["variants"]["norm"].pop("delta"), "variants.norm.delta is missing"),
    (lambda r: r["baseline"].update(floor=None), "baseline.floor must be a finite number"),
    (lambda r: r.update(variants=[1, 2]), "variants must be an object"),
    (lambda r: r.clear(), "schema is missing"),
])
def test_a_reference_of_the_wrong_shape_is_one_line_exit_2(edit, fragment, fake, reference, capsys):
    ref = json.loads(reference.read_text())
    edit(ref)
    reference.write_text(json.dumps(ref))
    rc, out, err = run_cli("check", "--results", str(fake), "--reference", str(reference), capsys=capsys)
    assert rc == 2 and fragment in err and str(reference) in err
    assert len(err.strip().splitlines()) == 1 and "PASS" not in out


def test_a_reference_that_is_a_list_or_not_json_is_exit_2(fake, reference, capsys):
    reference.write_text("[1, 2, 3]")
    rc, _, err = run_cli("check", "--results", str(fake), "--reference", str(reference), capsys=capsys)
    assert rc == 2 and "must be an object" in err
    reference.write_text("{not json")
    rc, _, err = run_cli("check", "--results", str(fake), "--reference", str(reference), capsys=capsys)
    assert rc == 2 and "not valid JSON" in err


def test_the_gate_fails_closed_on_numbers_it_cannot_verify(fake):
    data = load_study(fake)
    ref = make_reference(data)
    assert compare(ref, data).passed
    bad = json.loads(json.dumps(ref))
    bad["variants"]["norm"]["tolerance"] = math.nan          # an 87-point drop must not pass through a NaN
    result = compare(bad, data)
    assert not result.passed and [r["verdict"] for r in result.rows if r["variant"] == "norm"] == [UNVERIFIABLE]
    with pytest.raises(SchemaError):
        validate(bad, REFERENCE, "ref")
    uncovered = json.loads(json.dumps(ref))
    del uncovered["variants"]["norm"]                        # a variant the reference does not check
    result = compare(uncovered, data)
    assert not result.passed and any(r["variant"] == "norm" and r["verdict"] == UNVERIFIABLE for r in result.rows)


def test_a_truncated_run_file_is_named_as_corrupted_not_missing(fake, reference, capsys):
    broken = fake / "runs" / "norm__seed1.json"
    broken.write_text(broken.read_text()[:200])
    rc, _, err = run_cli("figures", "--results", str(fake), capsys=capsys)
    assert rc == 1 and f"corrupted run file {broken}" in err and "not valid JSON" in err
    report = (fake / "REPORT.md").read_text()
    assert "## Corrupted run files" in report and "runs/norm__seed1.json" in report
    assert "## Missing runs" not in report
    rows = (fake / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + 5
    rc, out, err = run_cli("check", "--results", str(fake), "--reference", str(reference), capsys=capsys)
    assert rc == 1 and CORRUPTED in out and "FAIL" in out and str(broken) in err


def test_a_run_file_with_a_wrong_field_is_corrupted_with_the_field_named(fake, capsys):
    path = fake / "runs" / "baseline__seed0.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["accuracy"] = 7
    path.write_text(json.dumps(rec))
    data = load_study(fake)
    assert list(data.corrupted) == [str(path)]
    assert "metrics.accuracy must be a finite number in [0, 1], got 7" in data.corrupted[str(path)]


@pytest.mark.parametrize("edit, fragment", [
    (lambda m: m.update(runs="all"), "runs must be a list"),
    (lambda m: m["spec"].pop("variants"), "spec.variants is missing"),
    (lambda m: m.update(seeds=[0, "1"]), "seeds[1] must be an integer"),
    (lambda m: m.update(epochs=None), "epochs must be an integer"),
])
def test_figures_on_a_study_json_of_the_wrong_shape_is_one_line_exit_2(edit, fragment, fake, capsys):
    manifest = json.loads((fake / "study.json").read_text())
    edit(manifest)
    (fake / "study.json").write_text(json.dumps(manifest))
    rc, _, err = run_cli("figures", "--results", str(fake), capsys=capsys)
    assert rc == 2 and fragment in err and "study.json" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("source, fragment", [
    ("raise RuntimeError('no GPU driver')", "failed to import: RuntimeError: no GPU driver"),
    ("def broken(:\n    pass", "failed to import: SyntaxError"),
    ("import sys\nsys.exit(3)", "called sys.exit(3)"),
])
def test_a_plugin_module_that_fails_on_import_is_one_line_exit_2(source, fragment, plugin_module, tmp_path, capsys):
    plugin_module("bad_plugin_mod", source)
    spec = tmp_path / "s.toml"
    spec.write_text('imports = ["bad_plugin_mod"]\n[[variants]]\nname = "a"\n')
    rc, _, err = run_cli("list", "--spec", str(spec), capsys=capsys)
    assert rc == 2 and "'bad_plugin_mod'" in err and fragment in err and len(err.strip().splitlines()) == 1


def test_a_class_whose_images_are_all_unreadable_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "x")
    for f in (root / "train" / "green").iterdir():
        f.write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped 20 unreadable"), \
            pytest.raises(DataError, match=r"class folder train/green has no readable image"):
        load_dataset(DataSource("imagefolder", str(root)), cache_dir=tmp_path / "c", progress=False)


def test_a_dataset_with_one_class_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "x", classes=("only",))
    with pytest.raises(DataError, match="one class folder .*at least two classes"):
        load_dataset(DataSource("imagefolder", str(root)), cache_dir=tmp_path / "c", progress=False)


def ablation(image_folder, out, *extra):
    return ["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--variants", "baseline", "--seeds", "0",
            "--epochs", "1",
            "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out", str(out), "--no-progress", *extra]


@pytest.mark.parametrize("seeds, fragment", [("", "--seeds takes"), ("0,,1", "no empty items"), (",", "--seeds")])
def test_empty_seed_lists_are_refused(seeds, fragment, image_folder, tmp_path, capsys):
    rc, _, err = run_cli(*[a if a != "0" else seeds for a in ablation(image_folder, tmp_path / "o")], capsys=capsys)
    assert rc == 2 and fragment in err


def test_out_naming_a_file_says_so_and_a_data_error_leaves_no_directory(image_folder, tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    rc, _, err = run_cli(*ablation(image_folder, f / "sub"), capsys=capsys)
    assert rc == 2 and "is a file, not a directory" in err
    out = tmp_path / "never"
    rc, _, err = run_cli(*ablation(tmp_path / "no_such_data", out), capsys=capsys)
    assert rc == 2 and "does not exist" in err and not out.exists()


def test_an_unwritable_runs_folder_fails_before_any_training(image_folder, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "runs").write_text("a file where the runs folder belongs")
    rc, _, err = run_cli(*ablation(image_folder, out), capsys=capsys)
    assert rc == 2 and f"cannot write to {out / 'runs'}" in err
    assert not (out / "runs.csv").exists()          # nothing was trained


def test_the_unreadable_image_warning_is_one_line_without_source(tmp_path):
    root = make_image_folder(tmp_path / "x")
    (root / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    r = subprocess.run([sys.executable, "-m", "tricks", "ablation", "--device", "cpu", "--spec", str(STUDY_SPEC),
                        "--variants",
                        "baseline", "--seeds", "0", "--epochs", "1", "--dataset", "imagefolder", "--data-dir",
                        str(root), "--out", str(tmp_path / "o"), "--no-progress", "--no-report", "--workers", "1"],
                       capture_output=True, text=True, cwd=REPO, timeout=300,
                       env={**__import__("os").environ, "TRICKS_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "unreadable" in line]
    assert warning == [warning[0]] and warning[0].startswith("tricks: warning: skipped 1 unreadable image(s)")
    assert "warnings.warn" not in r.stderr and ".py:" not in r.stderr

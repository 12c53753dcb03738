"""Records read once (running.index): the index answers what reading the files would (complete runs,
corrupted files, file-name order), reads a file again only once it changed, files the records the study
writes without reading them back, and a study start reads each stored run file exactly once."""

from __future__ import annotations

import json

import pytest

from tricks.plugins import load_spec
from tricks.running import conflicts, index as index_mod, plan, records
from tricks.running.index import RecordIndex
from tricks.running.records import load_runs, scan_runs
from tricks.running.study import StudyOptions, run_study
from tricks.training.data import DataSource

from .conftest import STUDY_SPEC, fake_record


def _folder(tmp_path):
    out = tmp_path / "study"
    (out / "runs").mkdir(parents=True)
    for v, seed in (("b", 1), ("a", 0), ("a_b", 0), ("a", 10)):
        records.write_json(out / "runs" / f"{v}__seed{seed}.json", fake_record(v, seed, 0.5, "k"))
    (out / "runs" / "torn__seed0.json").write_text('{"schema": 2, "vari')
    (out / "runs" / "notes.txt").write_text("not a run")
    return out


def test_the_index_answers_what_reading_the_files_would(tmp_path):
    out = _folder(tmp_path)
    idx = RecordIndex(out)
    assert idx.records() == load_runs(out)
    assert (idx.records(), idx.corrupted()) == scan_runs(out)
    assert idx.reads == 5 and len(idx) == 5
    assert idx.record("a__seed0")["variant"] == "a" and idx.problem("a__seed0") is None
    assert idx.record("torn__seed0") is None and "not valid JSON" in idx.problem("torn__seed0")
    assert idx.record("missing__seed0") is None and idx.problem("missing__seed0") is None
    assert RecordIndex(tmp_path / "nothing").records() == []


def test_a_file_is_read_again_only_once_it_changed(tmp_path):
    out = _folder(tmp_path)
    idx = RecordIndex(out)
    idx.refresh()
    assert idx.reads == 5                                     # nothing changed: nothing read
    records.write_json(out / "runs" / "b__seed1.json", fake_record("b", 1, 0.7, "k2"))   # another process
    (out / "runs" / "a__seed10.json").unlink()
    records.write_json(out / "runs" / "c__seed0.json", fake_record("c", 0, 0.5, "k"))
    idx.refresh()
    assert idx.reads == 7 and idx.records() == load_runs(out)
    assert idx.record("b__seed1")["settings_key"] == "k2" and not idx.exists("a__seed10")


def test_a_record_this_process_wrote_is_filed_not_read(tmp_path):
    out = _folder(tmp_path)
    idx = RecordIndex(out)
    rec = fake_record("d", 0, 0.6, "k")
    records.write_json(out / "runs" / "d__seed0.json", rec)
    idx.add("d__seed0", rec)
    idx.refresh()
    assert idx.reads == 5 and idx.record("d__seed0") == rec and idx.records() == load_runs(out)


@pytest.fixture
def counted(monkeypatch):
    """How many times any run file is parsed, by whichever module."""
    calls = []
    real = records.check_record

    def counting(path):
        calls.append(str(path))
        return real(path)
    for module in (records, index_mod, plan, conflicts):
        monkeypatch.setattr(module, "check_record", counting)
    return calls


def test_a_study_start_reads_each_stored_run_once(image_folder, tmp_path, counted):
    """A study of 4 runs, then the same study again (everything reused, precision auto: read from the
    stored runs): the first never reads a record back, the second reads each of the 4 files once."""
    out = tmp_path / "res"
    opts = StudyOptions(spec=load_spec(STUDY_SPEC), source=DataSource("imagefolder", str(image_folder)), out_dir=out,
                        variants=["baseline", "norm_inputs"], seeds=(0, 1), epochs=1, workers=1, progress=False,
                        device="cpu", precision="fp32")
    first = run_study(opts, on_notice=lambda m: None)
    assert len(first.finished) == 4 and counted == []
    csv_rows = (out / "runs.csv").read_text().splitlines()
    again = run_study(StudyOptions(**{**vars(opts), "precision": "auto"}), on_notice=lambda m: None)
    assert again.reused == 4 and again.finished == []
    assert sorted(counted) == sorted(str(p) for p in (out / "runs").glob("*.json")) and len(counted) == 4
    assert (out / "runs.csv").read_text().splitlines() == csv_rows
    assert json.loads((out / "runs" / "baseline__seed0.json").read_text())["status"] == "ok"

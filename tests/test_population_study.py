"""Population training in a study (running.cohorts, --population K): cohorts by shape and size, one
record per member naming its cohort, variants that cannot be batched trained solo and listed, the
population in the settings key (never in a solo CPU run's), resume, and the flag's errors."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace

import pytest
import torch

from tricks.cli import main
from tricks.errors import TricksError
from tricks.plugins import load_spec
from tricks.running.cohorts import CUDA_DEFAULT_POPULATION, Cohort, form_cohorts, population_size
from tricks.running.settings import RunSettings
from tricks.running.study import StudyOptions, run_study
from tricks.training.data import DataSource

from .conftest import STUDY_SPEC

BASE = dict(spec="s", tricks=(), imports=(), epochs=1, batch_size=16, train_subset=None, precision="fp32",
            data_kind="imagefolder", data_sha256="0" * 64, population=True)
VARIANTS = '''
    [[variants]]
    name = "baseline"
    [[variants]]
    name = "norm"
    tricks = [{ name = "normalize_inputs" }]
    [[variants]]
    name = "drop"
    tricks = [{ name = "dropout", p = 0.3, after = ["conv"] }]
    [[variants]]
    name = "sam"
    tricks = [{ name = "sam" }]
'''


def test_population_training_is_opt_in_until_a_gpu_check_measured_it():
    assert population_size(None, torch.device("cpu")) == 0                    # off on the CPU by default
    assert population_size(None, torch.device("cuda")) == CUDA_DEFAULT_POPULATION == 0   # and on CUDA, unmeasured
    assert population_size(0, torch.device("cuda")) == population_size(1, torch.device("cpu")) == 0
    assert population_size(8, torch.device("cpu")) == 8
    with pytest.raises(TricksError, match="--population must be 0"):
        population_size(-1, torch.device("cpu"))


def test_cohorts_split_by_shape_then_into_nearly_equal_sizes():
    plain = [RunSettings(**BASE, variant=f"v{i}", seed=0) for i in range(10)]
    drop = [RunSettings(**{**BASE, "tricks": ({"name": "dropout", "p": 0.2, "after": ["dense"]},)}, variant="d", seed=s)
            for s in range(2)]
    sam = RunSettings(**{**BASE, "tricks": ({"name": "sam"},), "population": False}, variant="sam", seed=0)
    jobs = form_cohorts(plain + drop + [sam], 4, 10)
    cohorts = [j for j in jobs if isinstance(j, Cohort)]
    assert [len(c.members) for c in cohorts] == [4, 3, 3, 2] and jobs[-1] is sam
    assert [r.variant for c in cohorts[:3] for r in c.members] == [f"v{i}" for i in range(10)]
    assert cohorts[0].name == "v0__seed0+3" and cohorts[0].stem == "v0__seed0"
    other_epochs = [RunSettings(**{**BASE, "epochs": e}, variant="v", seed=0) for e in (1, 2)]
    assert len(form_cohorts(other_epochs, 4, 10)) == 2                 # another training setup: another cohort


def test_a_study_in_populations_writes_one_record_per_member(image_folder, tmp_path):
    spec = tmp_path / "pop.toml"
    spec.write_text('name = "pop"\n[training]\nepochs = 2\nbatch_size = 16\nseeds = [0, 1]\n'
                    + textwrap.dedent(VARIANTS))
    out = tmp_path / "res"
    notices = []
    opts = StudyOptions(spec=load_spec(spec), source=DataSource("imagefolder", str(image_folder)), out_dir=out,
                        workers=2, progress=False, device="cpu", precision="fp32")
    outcome = run_study(opts, on_notice=notices.append, population=3)
    assert outcome.failed == {} and len(outcome.finished) == 8
    assert notices == ["--population 3: sam trains solo (its gradients come from sam's own passes)"]
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    cohorts = {stem: r["provenance"].get("population") for stem, r in recs.items()}
    # baseline and norm share a shape: 4 runs in 2 cohorts of 2; drop has its own; sam trains alone
    assert cohorts["sam__seed0"] is None and recs["sam__seed0"]["settings"].get("population") is None
    assert {c["cohort"] for s, c in cohorts.items() if s.startswith(("baseline", "norm"))} == \
           {"baseline__seed0+1", "baseline__seed1+1"}
    assert cohorts["drop__seed1"] == {"cohort": "drop__seed0+1", "size": 2, "index": 1}
    assert all(recs[s]["settings"]["population"] is True for s in recs if not s.startswith("sam"))
    assert all(r["epochs_run"] == 2 and r["status"] == "ok" and r["metrics"]["accuracy"] >= 0 for r in recs.values())
    assert json.loads((out / "study.json").read_text())["population"] == \
           {"size": 3, "solo": {"sam": "its gradients come from sam's own passes"}}
    again = run_study(opts, on_notice=notices.append, population=3)      # resumed: everything reused
    assert again.reused == 8 and again.finished == []


def test_population_off_keeps_a_solo_cpu_run_unchanged(image_folder, tmp_path):
    """The default on the CPU: no population in the settings (the stored runs' keys), in-process."""
    out = tmp_path / "res"
    opts = StudyOptions(spec=load_spec(STUDY_SPEC), source=DataSource("imagefolder", str(image_folder)),
                        out_dir=out, variants=["baseline"], seeds=(0,), epochs=1, workers=1, progress=False,
                        device="cpu", precision="fp32")
    outcome = run_study(opts, on_notice=lambda m: None)
    rec = json.loads((out / "runs" / "baseline__seed0.json").read_text())
    assert outcome.finished == ["baseline__seed0"] and "population" not in rec["provenance"]
    assert "population" not in rec["settings"] and "device" not in rec["settings"]
    assert "population" not in json.loads((out / "study.json").read_text())
    assert RunSettings.from_dict(rec["settings"]).key() == rec["settings_key"]
    # the same run in a population of its own is another run: another key, a refusal without --replace
    with pytest.raises(TricksError, match="population: stored"):
        run_study(opts, on_notice=lambda m: None, population=2)
    again = run_study(replace(opts, replace=True), on_notice=lambda m: None, population=2)   # in-process cohort
    rec = json.loads((out / "runs" / "baseline__seed0.json").read_text())
    assert again.finished == ["baseline__seed0"] and rec["settings"]["population"] is True
    assert rec["provenance"]["population"] == {"cohort": "baseline__seed0+0", "size": 1, "index": 0}


def test_a_cohort_is_one_ray_task_with_a_record_per_member(image_folder, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'backprop-tricks[ray]'")
    out = tmp_path / "res"
    rc = main(["ablation", "--device", "cpu", "--executor", "ray", "--population", "2", "--spec", str(STUDY_SPEC),
               "--variants", "baseline,norm_inputs", "--seeds", "0", "--epochs", "1", "--dataset", "imagefolder",
               "--data-dir", str(image_folder), "--out", str(out), "--no-progress", "--no-report"])
    assert rc == 0
    recs = [json.loads((out / "runs" / f"{v}__seed0.json").read_text()) for v in ("baseline", "norm_inputs")]
    assert [r["provenance"]["population"]["cohort"] for r in recs] == ["baseline__seed0+1"] * 2
    assert all(r["provenance"]["executor"]["kind"] == "ray" and r["status"] == "ok" for r in recs)


def test_a_negative_population_is_one_line_exit_2(image_folder, tmp_path, capsys):
    rc = main(["ablation", "--device", "cpu", "--population", "-1", "--dataset", "imagefolder", "--data-dir",
               str(image_folder), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--population must be 0 (off) or a number of runs" in err
    assert not (tmp_path / "o").exists()

"""Per-epoch checkpoints: an interrupted run resumes at its last epoch and ends exactly as an
uninterrupted one; checkpoints of other settings are ignored; the study deletes them once written."""

import pytest
import torch

from tricks.plugins import load_plugins
from tricks.running.settings import RunSettings
from tricks.running.study import StudyOptions, run_study
from tricks.training.recipe import build_recipe
from tricks.plugins import load_spec
from tricks.training.checkpoint import CHECKPOINTS_DIR, Checkpoints, checkpoint_path, discard, remove_if_empty
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import train_run

from .conftest import plugin_spec

load_plugins()
CPU = torch.device("cpu")


class Interrupt(Exception):
    pass


@pytest.fixture
def tiny(image_folder, tmp_path):
    return load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)


def settings(ds, tricks, epochs=4, validation=0):
    return RunSettings("t", "v", tuple(tricks), (), 0, epochs, 8, None, "fp32", "imagefolder", ds.checksum,
                       validation=validation)


def run(s, ds, checkpoints=None, stop_at_epoch=None):
    """train_run; with ``stop_at_epoch``, interrupted as that epoch ends (before its checkpoint)."""
    def emit(kind, p):
        if kind == "epoch" and p["epoch"] == stop_at_epoch:
            raise Interrupt
    torch.set_num_threads(1)
    return train_run(build_recipe(s.variant, s.tricks), s, ds, CPU, emit, checkpoints)


def comparable(r):
    """Everything of an outcome that does not depend on the clock."""
    history = [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]]
    return history, r["predictions"], r["lr_trace"], r["status"], r["stop_reason"], r["epochs_run"]


# Every kind of state a checkpoint must carry: dropout masks (global RNG), augmentation (its own
# generator), per-step and per-epoch schedules behind a warm-up, a metric-driven schedule, momentum
# buffers, and a callback that keeps the best weights.
RECIPES = {
    "dropout_augment_exp": ([{"name": "dropout", "p": 0.3, "after": ["conv", "dense"]},
                             {"name": "augment", "padding": 4, "flip_p": 0.5}, {"name": "exp_lr", "lr": 2e-3, "gamma": 0.8}], 0),
    "warmup_one_cycle_sgd": ([{"name": "warmup", "steps": 5, "start_factor": 0.1}, {"name": "one_cycle"},
                              {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}], 0),
    "plateau_early_stop": ([{"name": "reduce_on_plateau", "factor": 0.5, "patience": 0},
                            {"name": "early_stopping", "patience": 3, "restore_best": True}], 15),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_an_interrupted_run_resumes_at_its_last_epoch_and_ends_bit_identical(name, tiny, tmp_path):
    tricks, validation = RECIPES[name]
    s = settings(tiny, tricks, validation=validation)
    straight = run(s, tiny)
    ck = Checkpoints(checkpoint_path(tmp_path / CHECKPOINTS_DIR, s.stem), s.key())
    with pytest.raises(Interrupt):
        run(s, tiny, ck, stop_at_epoch=3)      # epochs 1 and 2 saved; epoch 3 lost
    assert ck.load()[0]["epoch"] == 2 and ck.load()[0]["threads"] == s.threads == 1
    resumed = run(s, tiny, ck)
    assert resumed["resumed_from_epoch"] == 2 and straight["resumed_from_epoch"] == 0
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert comparable(resumed) == comparable(straight)
    assert ck.load()[0]["epoch"] == 3          # the last epoch is never saved: the run is over


def test_a_checkpoint_of_other_settings_or_a_torn_one_is_ignored(tiny, tmp_path):
    s = settings(tiny, [{"name": "normalize_inputs"}], epochs=2)
    path = checkpoint_path(tmp_path, s.stem)
    other = settings(tiny, [{"name": "normalize_inputs"}], epochs=3)
    with pytest.raises(Interrupt):
        run(other, tiny, Checkpoints(path, other.key()), stop_at_epoch=2)
    assert Checkpoints(path, other.key()).load()[0]["epoch"] == 1
    assert Checkpoints(path, s.key()).load() == (None, "belongs to other settings of this run")   # 3 epochs, not 2
    r = run(s, tiny, Checkpoints(path, s.key()))
    assert r["resumed_from_epoch"] == 0 and r["epochs_run"] == 2
    assert r["notices"] == [f"ignored checkpoint {path}: it belongs to other settings of this run; "
                            "this run trains from epoch 1"]
    path.write_bytes(path.read_bytes()[:100])                     # torn mid-write
    state, why = Checkpoints(path, s.key()).load()
    assert state is None and why.startswith("cannot be read (truncated or not a checkpoint)")
    assert Checkpoints(tmp_path / "absent.pt", s.key()).load() == (None, None)   # no file: nothing to say


class Boom:
    """A pickle whose loading runs a command (it would create the file ``SIDE_EFFECT`` names)."""
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.target}",))


def test_a_crafted_checkpoint_runs_no_code_and_the_run_trains_from_epoch_1(tiny, tmp_path, capsys):
    """A pickle with a side-effecting __reduce__ placed where a run resumes: nothing executes, the run
    trains from epoch 1 and says which file it ignored; the record ends as an uninterrupted run's."""
    s = settings(tiny, [{"name": "normalize_inputs"}], epochs=2)
    path = checkpoint_path(tmp_path / CHECKPOINTS_DIR, s.stem)
    path.parent.mkdir()
    side_effect = tmp_path / "pwned"
    torch.save({"format": 2, "key": s.key(), "torch": str(torch.__version__), "epoch": 1,
                "payload": Boom(side_effect)}, path)
    state, why = Checkpoints(path, s.key()).load()
    assert state is None and why.startswith("holds objects other than tensors, numbers and strings")
    assert not side_effect.exists()
    straight = run(s, tiny)
    messages = []
    torch.set_num_threads(1)
    r = train_run(build_recipe(s.variant, s.tricks), s, tiny, CPU,
                  lambda kind, p: messages.append(p["message"]) if kind == "notice" else None,
                  Checkpoints(path, s.key()))
    assert not side_effect.exists()
    assert r["resumed_from_epoch"] == 0 and [h["epoch"] for h in r["history"]] == [1, 2]
    assert len(messages) == 1 and str(path) in messages[0] and "trains from epoch 1" in messages[0]
    assert r["notices"] == messages
    assert comparable(r) == comparable(straight)


def test_state_that_is_not_plain_data_is_refused_at_save_naming_where(tmp_path):
    ck = Checkpoints(tmp_path / "x.pt", "k")
    with pytest.raises(TypeError, match=r"callbacks.*\[0\].*'best'.*\(Boom\)"):
        ck.save({"epoch": 1, "callbacks": [{"best": Boom(tmp_path / "never")}]})
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "never").exists()
    ck.save({"epoch": 1, "callbacks": [{"best": 0.5, "w": torch.ones(2)}], "milestones": (1, 2)})
    state, why = ck.load()
    assert why is None and state["callbacks"][0]["best"] == 0.5 and state["milestones"] == (1, 2)
    assert torch.equal(state["callbacks"][0]["w"], torch.ones(2))


def test_no_module_of_the_package_loads_with_weights_only_false():
    from pathlib import Path

    import tricks

    root = Path(tricks.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "weights_only=False" in p.read_text()]
    assert offenders == []


def test_discard_removes_the_file_and_the_study_end_the_empty_directory(tmp_path):
    d = tmp_path / CHECKPOINTS_DIR
    d.mkdir()
    (d / "a__seed0.pt").write_bytes(b"x")
    (d / "b__seed0.pt").write_bytes(b"x")
    discard(d, "a__seed0")
    assert sorted(p.name for p in d.iterdir()) == ["b__seed0.pt"]
    remove_if_empty(d)
    assert d.is_dir()               # a run's checkpoint is still there
    discard(d, "b__seed0")
    assert d.is_dir()               # kept while the study runs: a worker may be about to write into it
    remove_if_empty(d)
    assert not d.exists()
    discard(None, "a__seed0")       # no checkpoints (a Ray run): nothing to do
    remove_if_empty(None)
    remove_if_empty(d)              # gone already: nothing to do


STOPPER = '''
import os
from pathlib import Path
from tricks.specs.base import Trick
from tricks.specs.callbacks import Callback
from tricks.specs.registry import register_trick

class Stop(Callback):
    def on_epoch_end(self, state):
        flag = Path(os.environ["STOP_FLAG"])
        if state.epoch == 2 and flag.exists():
            flag.unlink()
            raise KeyboardInterrupt

@register_trick
class StopOnce(Trick):
    name = "stop_once"
    description = "Test only: Ctrl-C at the end of epoch 2 while a flag file exists."
    def callbacks(self):
        return [Stop()]
'''


def test_a_study_interrupted_mid_run_resumes_it_from_its_checkpoint(image_folder, tmp_path, plugin_module,
                                                                       monkeypatch):
    plugin_module("stopper_plugin", STOPPER)
    spec = plugin_spec(tmp_path, "ck", "stopper_plugin", '[[variants]]\nname = "v"\ntricks = ["stop_once"]\n',
                       epochs=3, seeds=(0,))
    flag = tmp_path / "flag"
    flag.write_text("stop")
    monkeypatch.setenv("STOP_FLAG", str(flag))
    out = tmp_path / "res"
    opts = StudyOptions(spec=load_spec(spec), source=DataSource("imagefolder", str(image_folder)), out_dir=str(out),
                        device="cpu", workers=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_study(opts)
    assert not (out / "runs" / "v__seed0.json").exists()
    assert (out / CHECKPOINTS_DIR / "v__seed0.pt").is_file()
    outcome = run_study(opts)
    assert outcome.finished == ["v__seed0"]
    import json

    record = json.loads((out / "runs" / "v__seed0.json").read_text())
    assert record["resumed_from_epoch"] == 1 and [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert not (out / CHECKPOINTS_DIR).exists()       # deleted once the record was written


def test_the_study_end_clears_a_killed_workers_temporary_file(tmp_path):
    """A worker killed while writing a checkpoint leaves ``.<name>.*.tmp`` behind: the directory still goes
    at the study's end (the CI flake of a SIGTERM'd study whose resumed run left ``checkpoints/``)."""
    d = tmp_path / CHECKPOINTS_DIR
    d.mkdir()
    (d / ".a__seed0.pt.x1y2.tmp").write_bytes(b"half")
    remove_if_empty(d)
    assert not d.exists()
    d.mkdir()
    (d / ".a__seed0.pt.x1y2.tmp").write_bytes(b"half")
    (d / "b__seed0.pt").write_bytes(b"x")
    remove_if_empty(d)
    assert sorted(p.name for p in d.iterdir()) == ["b__seed0.pt"]

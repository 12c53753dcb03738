"""Nothing a user ran is replaced silently, and a run's numbers never depend on how many runs were left.

- A folder holding finished runs of the same (variant, seed) made with other settings: refused before
  training, one line per kind of difference, exit 2; ``--replace`` moves the old records aside.
- Adding seeds or resuming is unchanged; ``--precision auto`` takes the folder's stored precision.
- Each CPU run trains on its own thread count (1 by default), so a run trained alone and the same
  run trained beside another give identical records, and a run resumed as the last one pending ends
  as if never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path


from tricks.cli import main
from tricks.running.conflicts import Conflict, differences
from tricks.running.settings import RunSettings

from .conftest import STUDY_SPEC, plugin_spec
from .test_checkpoint import STOPPER as CHECKPOINT_STOPPER


def ablation(image_folder, out, *extra):
    return main(["ablation", "--device", "cpu", "--spec", str(STUDY_SPEC), "--dataset", "imagefolder", "--data-dir",
                 str(image_folder),
                 "--out", str(out), "--no-progress", "--no-report", *extra])


def comparable(record: dict):
    """What a run's numbers are: history without the clock, scores, LR trace."""
    history = [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in record["history"]]
    return history, record["metrics"], record["lr_trace"], record["status"], record["settings_key"]


def test_other_settings_are_refused_in_one_line_per_difference_then_replace_moves_them_aside(
        image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    base = ["--variants", "baseline", "--seeds", "0", "--workers", "1", "--precision", "fp32"]
    assert ablation(image_folder, out, *base, "--epochs", "1") == 0
    run_file = out / "runs" / "baseline__seed0.json"
    before = run_file.read_bytes()
    capsys.readouterr()

    assert ablation(image_folder, out, *base, "--epochs", "2", "--train-subset", "30") == 2
    err = capsys.readouterr().err
    assert "already holds 1 finished run of this study's (variant, seed) pairs made with other settings" in err
    assert "  epochs: stored 1 -> asked 2 (1 run)" in err
    assert "  train_subset: stored 'None' -> asked 30 (1 run)" in err or "  train_subset: stored None" in err
    assert "--out DIR" in err and "--replace" in err and "Traceback" not in err
    assert run_file.read_bytes() == before                          # nothing touched
    assert not (out / "replaced").exists()

    assert ablation(image_folder, out, *base, "--epochs", "2", "--replace") == 0
    err = capsys.readouterr().err
    moved = list((out / "replaced").glob("*/runs/baseline__seed0.json"))
    assert len(moved) == 1 and moved[0].read_bytes() == before     # kept, byte for byte
    assert f"moved 1 stored run(s) made with other settings to {moved[0].parent.parent}" in err
    assert json.loads(run_file.read_text())["epochs_run"] == 2


def test_adding_seeds_or_resuming_is_not_a_conflict(image_folder, tmp_path, capsys):
    out = tmp_path / "res"
    base = ["--variants", "baseline", "--epochs", "1", "--workers", "1", "--precision", "fp32"]
    assert ablation(image_folder, out, *base, "--seeds", "0") == 0
    capsys.readouterr()
    assert ablation(image_folder, out, *base, "--seeds", "0,1") == 0
    assert "2 runs planned, 1 reused from earlier, 1 trained" in capsys.readouterr().out


def test_precision_auto_takes_the_stored_precision_and_says_so(image_folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "res"
    base = ["--variants", "baseline", "--epochs", "1", "--workers", "1"]
    assert ablation(image_folder, out, *base, "--seeds", "0", "--precision", "fp32") == 0
    capsys.readouterr()
    import tricks.running.study as study

    monkeypatch.setattr(study, "bf16_is_native", lambda device: True)   # auto would pick bf16 on its own
    assert ablation(image_folder, out, *base, "--seeds", "0,1", "--precision", "auto") == 0
    captured = capsys.readouterr()
    assert f"--precision auto: using fp32, the precision of the 1 run(s) stored in {out}" in captured.err
    assert "2 runs planned, 1 reused from earlier, 1 trained" in captured.out
    assert json.loads((out / "runs" / "baseline__seed1.json").read_text())["settings"]["precision"] == "fp32"


def _settings(**changes) -> RunSettings:
    base = dict(spec="s", variant="v", tricks=(), imports=(), seed=0, epochs=10, batch_size=64, train_subset=None,
                precision="fp32", data_kind="imagefolder", data_sha256="a" * 64)
    return RunSettings(**{**base, **changes})


def test_differences_are_grouped_by_setting_with_counts():
    stored = _settings().to_dict()
    conflicts = [Conflict(_settings(seed=k, epochs=1, precision="bf16"), Path(f"v__seed{k}.json"), stored)
                 for k in range(3)]
    conflicts.append(Conflict(_settings(seed=3, epochs=1, data_sha256="b" * 64), Path("v__seed3.json"), stored))
    lines = differences(conflicts)
    assert lines == ["  data_sha256: stored aaaaaaaaaaaa… -> asked bbbbbbbbbbbb… (1 run)",
                     "  epochs: stored 10 -> asked 1 (4 runs)",
                     "  precision: stored 'fp32' -> asked 'bf16' (3 runs)"]
    # a record from before threads were a setting counts as one thread: no difference is invented
    old = {k: v for k, v in stored.items() if k != "threads"}
    assert differences([Conflict(_settings(epochs=1), Path("x"), old)]) == ["  epochs: stored 10 -> asked 1 (1 run)"]


def test_the_thread_count_is_a_setting_that_keeps_old_keys():
    assert _settings().key() == _settings(threads=1).key()           # stored studies keep their keys
    assert _settings(threads=2).key() != _settings().key()
    assert RunSettings.from_dict({k: v for k, v in _settings().to_dict().items() if k != "threads"}).threads == 1


def test_a_run_trained_alone_equals_the_same_run_trained_beside_another(image_folder, tmp_path):
    """Alone: one run pending, one in-process worker. Beside another: two worker processes. Each run
    trains on one thread either way (before, the lone run took every core and other numbers)."""
    common = ["--seeds", "0", "--epochs", "2", "--precision", "fp32"]
    assert ablation(image_folder, tmp_path / "alone", "--variants", "dropout_both", *common) == 0
    assert ablation(image_folder, tmp_path / "pair", "--variants", "baseline,dropout_both", *common) == 0
    alone = json.loads((tmp_path / "alone" / "runs" / "dropout_both__seed0.json").read_text())
    pair = json.loads((tmp_path / "pair" / "runs" / "dropout_both__seed0.json").read_text())
    assert comparable(alone) == comparable(pair)
    assert alone["provenance"]["torch_threads"] == pair["provenance"]["torch_threads"] == 1


# test_checkpoint's Ctrl-C-at-epoch-2 plugin, registered under its own name for this module
STOPPER = CHECKPOINT_STOPPER.replace('name = "stop_once"', 'name = "stop_once_threads"')


def test_a_run_resumed_as_the_last_one_pending_ends_as_an_uninterrupted_one(image_folder, tmp_path, plugin_module,
                                                                            monkeypatch):
    plugin_module("stopper_threads_plugin", STOPPER)
    variants = ('[[variants]]\nname = "v"\ntricks = ["stop_once_threads", {name = "dropout", p = 0.3}]\n'
                '[[variants]]\nname = "w"\ntricks = []\n')
    spec = plugin_spec(tmp_path, "threads", "stopper_threads_plugin", variants, epochs=3, seeds=(0,))
    flag = tmp_path / "flag"
    monkeypatch.setenv("STOP_FLAG", str(flag))

    def study(out, *extra):
        return main(["ablation", "--device", "cpu", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir",
                     str(image_folder),
                     "--out", str(out), "--no-progress", "--no-report", "--precision", "fp32", *extra])

    assert study(tmp_path / "straight", "--workers", "2") == 0        # uninterrupted, beside w
    flag.write_text("stop")
    assert study(tmp_path / "cut", "--workers", "2") == 130            # Ctrl-C in v's epoch 2
    assert (tmp_path / "cut" / "checkpoints" / "v__seed0.pt").is_file()
    assert study(tmp_path / "cut", "--variants", "v") == 0              # v alone: the last one pending
    cut = json.loads((tmp_path / "cut" / "runs" / "v__seed0.json").read_text())
    straight = json.loads((tmp_path / "straight" / "runs" / "v__seed0.json").read_text())
    assert cut["resumed_from_epoch"] == 1 and straight["resumed_from_epoch"] == 0
    assert comparable(cut) == comparable(straight)


def test_a_workers_progress_bar_starts_each_run_without_the_previous_runs_numbers():
    import io

    from tricks.running.progress import Progress

    p = Progress(2, enabled=True)
    for bar in [p.study]:
        bar.fp = io.StringIO()
    p.event(0, "a__seed0", "start", {"epochs": 2})
    bar = p.bars[0]
    bar.fp = io.StringIO()
    p.event(0, "a__seed0", "epoch", {"epoch": 1, "epochs": 2, "loss": 1.234, "acc": 0.567})
    assert "acc=0.567" in bar.postfix and "loss=1.234" in bar.postfix
    p.event(0, "b__seed0", "start", {"epochs": 2})
    assert p.bars[0] is bar and not bar.postfix and bar.n == 0 and bar.desc.startswith("b__seed0")
    p.close()


def test_a_notice_is_printed_with_or_without_bars(capsys):
    from tricks.running.progress import Progress

    p = Progress(1, enabled=False)
    p.event(0, "a__seed0", "notice", {"message": "ignored checkpoint x.pt: it cannot be read"})
    p.close()
    assert "tricks: a__seed0: ignored checkpoint x.pt: it cannot be read" in capsys.readouterr().err


def test_the_revision_is_read_when_the_code_loads_not_when_a_run_finishes():
    """The fork server's preload (inherited by every worker) and the study driver read the git revision
    once, as the code loads: a commit made while a study trains is not what its runs record."""
    from tricks.running import provenance

    provenance.git_revision.cache_clear()
    import importlib

    import tricks.running.preload as preload

    importlib.reload(preload)
    assert provenance.git_revision.cache_info().currsize == 1

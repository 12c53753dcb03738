"""The per-step LR figure's series: every traced run spans its whole length, a constant LR included."""

import json

import pytest

from tricks.analysis.figures import lr_lines
from tricks.analysis.report import build_report
from tricks.analysis.studydata import load_study

from .conftest import write_fake_study

SPE = 5   # optimizer steps per epoch of the fake runs (3 epochs: the last step is 15)
TRACES = {"constant": {"step": [0], "lr": [1e-3]},                 # recorded once: the LR never changes
          "step_lr": {"step": [0, 10], "lr": [1e-3, 1e-4]},        # last change in epoch 2 of 3
          "to_end": {"step": [0, 7, 15], "lr": [1e-3, 5e-4, 0.0]}}  # a change recorded at the last step


@pytest.fixture
def study(tmp_path):
    variants = [("constant", None), ("step_lr", "constant"), ("to_end", "constant"), ("old", "constant")]
    accs = {(v, s): 0.5 for v, _ in variants for s in (0, 1)}
    d = write_fake_study(tmp_path / "lr", accs, variants, [0, 1])
    for v, trace in TRACES.items():
        for seed in (0, 1):
            path = d / "runs" / f"{v}__seed{seed}.json"
            rec = json.loads(path.read_text())
            rec["lr_trace"] = {"steps_per_epoch": SPE, **trace}
            if seed == 1:   # another seed's trace must not be drawn: the first seed stands for the variant
                rec["lr_trace"]["lr"] = [2 * x for x in trace["lr"]]
            path.write_text(json.dumps(rec))
    return d   # "old": a run recorded before the per-step trace, LR 1e-3 * 0.8^(epoch - 1) per epoch


def test_each_variant_is_drawn_from_its_first_step_to_its_last(study):
    data = load_study(study)
    lines = dict(lr_lines(data.lr_steps(), data.order))
    assert list(lines) == ["constant", "step_lr", "to_end", "old"]
    as_lists = {v: (t["epoch"].tolist(), t["lr"].tolist()) for v, t in lines.items()}
    assert as_lists["constant"] == ([0.0, 3.0], [1e-3, 1e-3])            # a flat line over the whole run
    assert as_lists["step_lr"] == ([0.0, 2.0, 3.0], [1e-3, 1e-4, 1e-4])  # the last LR held to the end
    assert as_lists["to_end"] == ([0.0, 1.4, 3.0], [1e-3, 5e-4, 0.0])    # nothing added: it ends there
    epochs, lrs = as_lists["old"]
    assert epochs == [0, 1, 2, 3] and lrs == pytest.approx([1e-3, 8e-4, 6.4e-4, 6.4e-4])


def test_the_report_draws_the_per_step_figure(study):
    text = build_report(study).read_text()
    png = study / "figures" / "lr_schedule.png"
    assert png.stat().st_size > 5_000 and "Learning rate at every optimizer step" in text

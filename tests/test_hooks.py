"""Recipe v2: every part of the training step is a hook. Decision logic is tested with scripted
inputs (fake validation histories, fixed tensors); one tiny real run checks the wiring."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, ReduceLROnPlateau, SequentialLR

from tricks.errors import SpecError
from tricks.plugins import load_plugins
from tricks.plugins.early_stopping import EarlyStopping
from tricks.running.settings import RunSettings
from tricks.specs.callbacks import EpochState
from tricks.training.recipe import StepHooks, build_recipe
from tricks.training.data import DataSource, load_dataset, split_training
from tricks.training.engine import evaluate, train_one_epoch, train_run
from tricks.training.lr_trace import MAX_POINTS, LRTrace
from tricks.training.schedule import Budget

load_plugins()


def drive(recipe, budget: Budget, metrics=None):
    """The LR before every optimizer step of a whole run, driven as the engine drives it."""
    torch.manual_seed(0)
    opt = recipe.optimizer(recipe.model(0, 10))
    ctl = recipe.lr_controller(opt, budget)
    lrs = []
    for epoch in range(budget.epochs):
        for _ in range(budget.steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            ctl.after_step()
        ctl.after_epoch((metrics or [{"train_loss": 1.0}] * budget.epochs)[epoch])
    return lrs


def reference(make, budget: Budget, per_step: bool, lr=1e-3):
    """The same LR sequence from torch schedulers built by ``make(opt)`` and stepped by hand."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make(opt)
    lrs = []
    for _ in range(budget.epochs):
        for _ in range(budget.steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_step:
                sched.step()
        if not per_step:
            sched.step()
    return lrs


def test_warmup_then_cosine_per_step_equals_sequential_lr_step_by_step():
    b = Budget(epochs=3, steps_per_epoch=7)
    got = drive(build_recipe("v", [{"name": "warmup", "steps": 5, "start_factor": 0.1},
                                   {"name": "cosine_lr", "interval": "step"}]), b)
    want = reference(lambda o: SequentialLR(o, [LinearLR(o, 0.1, 1.0, total_iters=5),
                                                CosineAnnealingLR(o, T_max=21 - 5)], milestones=[5]), b, True)
    assert got == want
    assert got[0] == pytest.approx(1e-4) and got[5] == pytest.approx(1e-3) and got[-1] < 2e-5


def test_cosine_alone_per_epoch_reaches_eta_min_at_the_last_epoch():
    b = Budget(epochs=4, steps_per_epoch=3)
    got = drive(build_recipe("v", [{"name": "cosine_lr", "lr": 2e-3}]), b)
    assert got == reference(lambda o: CosineAnnealingLR(o, T_max=4), b, False, lr=2e-3)
    assert got[::3] == pytest.approx([2e-3, 1.7071e-3, 1e-3, 0.2929e-3], rel=1e-3)


def test_warmup_holds_a_per_epoch_schedule_until_it_is_over():
    # warm-up of 5 steps with 3 steps per epoch: the exponential decay starts at the end of epoch 2
    b = Budget(epochs=4, steps_per_epoch=3)
    got = drive(build_recipe("v", [{"name": "warmup", "steps": 5, "start_factor": 0.5},
                                   {"name": "exp_lr", "lr": 1e-3, "gamma": 0.5}]), b)
    assert got[:5] == pytest.approx([5e-4, 6e-4, 7e-4, 8e-4, 9e-4])
    assert got[5] == pytest.approx(1e-3)                   # warm-up over, epoch 2 still at full LR
    assert got[6:9] == pytest.approx([5e-4] * 3)           # first decay after epoch 2
    assert got[9:] == pytest.approx([2.5e-4] * 3)


def test_warmup_alone_ends_at_a_constant_lr():
    got = drive(build_recipe("v", [{"name": "warmup", "steps": 4, "start_factor": 0.2}]), Budget(2, 5))
    assert got[:4] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4]) and got[4:] == pytest.approx([1e-3] * 6)


def test_plateau_schedule_reads_validation_loss_only():
    b = Budget(epochs=6, steps_per_epoch=2)
    val = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5]                 # improves, then stalls for 3 epochs
    metrics = [{"train_loss": 0.1 * (6 - e), "val_loss": v, "val_accuracy": 0.5} for e, v in enumerate(val)]
    got = drive(build_recipe("v", [{"name": "reduce_on_plateau", "factor": 0.5, "patience": 1}]), b, metrics)
    ref_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref = ReduceLROnPlateau(ref_opt, factor=0.5, patience=1, threshold=1e-3)
    want = []
    for v in val:
        want += [ref_opt.param_groups[0]["lr"]] * 2
        ref.step(v)
    assert got == want
    assert got[-1] == pytest.approx(5e-4)        # one cut after two epochs without improvement
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        drive(build_recipe("v", [{"name": "reduce_on_plateau"}]), Budget(1, 1), [{"train_loss": 1.0}])


def epoch_states(values, key="val_loss"):
    return [EpochState(epoch=i + 1, epochs=len(values), lr=1e-3, metrics={"train_loss": 1.0, key: v})
            for i, v in enumerate(values)]


def run_callback(cb, values, key="val_loss"):
    """The epoch at which ``cb`` asks to stop on a scripted history, or None."""
    for state in epoch_states(values, key):
        cb.on_epoch_end(state)
        if state.should_stop:
            return state.epoch, state.stop_reason
    return None, ""


def test_early_stopping_on_a_scripted_validation_history():
    es = build_recipe("v", [{"name": "early_stopping", "patience": 2, "min_delta": 0.01}]).callbacks()[0]
    epoch, reason = run_callback(es, [1.0, 0.8, 0.795, 0.79, 0.9, 0.7])
    # 0.795 and 0.79 improve on 0.8 by less than min_delta: two epochs without improvement -> stop at 4
    assert epoch == 4 and es.best == 0.8 and es.best_epoch == 2
    assert "did not improve by more than 0.01 for 2 epoch(s)" in reason
    acc = build_recipe("v", [{"name": "early_stopping", "monitor": "val_accuracy", "patience": 1}]).callbacks()[0]
    assert acc.mode == "max"
    assert run_callback(acc, [0.3, 0.4, 0.35], "val_accuracy")[0] == 3
    never = EarlyStopping("val_loss", "min", patience=3, min_delta=0.0, restore_best=False)
    assert run_callback(never, [1.0, 0.9, 0.8, 0.7])[0] is None


def test_early_stopping_restores_the_best_weights():
    model = torch.nn.Linear(2, 1)
    es = EarlyStopping("val_loss", "min", patience=1, min_delta=0.0, restore_best=True)
    best = model.weight.detach().clone()
    es.on_epoch_end(EpochState(1, 3, 1e-3, {"val_loss": 0.5}, model))
    with torch.no_grad():
        model.weight.add_(1.0)
    state = EpochState(2, 3, 1e-3, {"val_loss": 0.6}, model)
    es.on_epoch_end(state)
    assert state.should_stop
    es.on_train_end(model)
    assert torch.equal(model.weight, best)


def test_label_smoothing_equals_cross_entropy_with_smoothing():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 10
    crit = build_recipe("v", [{"name": "label_smoothing", "eps": 0.2}]).step_hooks().criterion
    assert torch.allclose(crit(F.log_softmax(logits, 1), y), F.cross_entropy(logits, y, label_smoothing=0.2),
                          atol=1e-6)
    hooks = build_recipe("v", [{"name": "label_smoothing"}]).step_hooks()
    assert hooks.changes_loss and not build_recipe("v", []).step_hooks().changes_loss


def test_augment_changes_training_batches_reproducibly_and_never_evaluation():
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    aug = build_recipe("v", [{"name": "augment"}]).step_hooks().augment
    assert len(aug) == 1
    a = aug[0](x, torch.Generator().manual_seed(5))
    b = aug[0](x, torch.Generator().manual_seed(5))
    c = aug[0](x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    # a crop of a flipped-or-not image: every augmented image is a shifted window of the padded original
    flip = build_recipe("v", [{"name": "augment", "padding": 0, "flip_p": 1.0}]).step_hooks().augment[0]
    assert torch.equal(flip(x, torch.Generator()), x.flip(3))

    calls = []

    def spy(batch, generator):
        calls.append(batch.shape[0])
        return batch

    model = build_recipe("v", []).model(0, 3)
    imgs = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(20) % 3
    opt = torch.optim.Adam(model.parameters())
    train_one_epoch(model, opt, imgs, labels, torch.nn.Identity(), 8, torch.arange(20),
                    hooks=StepHooks(augment=[spy]), augment_generator=torch.Generator())
    assert calls == [8, 8, 4]                    # every training batch, once
    evaluate(model, imgs, labels, torch.nn.Identity())
    assert calls == [8, 8, 4]                    # evaluation has no augmentation path at all


def test_no_shuffle_gives_the_same_order_every_epoch_and_shuffling_does_not():
    g = torch.Generator().manual_seed(0)
    fixed = build_recipe("v", [{"name": "no_shuffle"}])
    assert torch.equal(fixed.data_order(10, g), torch.arange(10)) and torch.equal(fixed.data_order(10, g),
                                                                                  torch.arange(10))
    base = build_recipe("v", [])
    first, second = base.data_order(10, g), base.data_order(10, g)
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)


def test_validation_split_is_fixed_class_balanced_and_disjoint_from_training():
    labels = torch.arange(1000) % 10
    tr, val = split_training(labels, validation=100, train_subset=300)
    tr2, val2 = split_training(labels, validation=100, train_subset=300)
    assert torch.equal(tr, tr2) and torch.equal(val, val2)          # no seed or variant enters the draw
    assert len(val) == 100 and len(tr) == 300 and not set(tr.tolist()) & set(val.tolist())
    assert torch.bincount(labels[val]).tolist() == [10] * 10
    assert torch.bincount(labels[tr]).tolist() == [30] * 10
    whole, none = split_training(labels, validation=0)
    assert len(none) == 0 and torch.equal(whole, torch.arange(1000))
    rest, v = split_training(labels, validation=200)
    assert len(rest) == 800 and torch.equal(v, val2) is False and not set(rest.tolist()) & set(v.tolist())


def test_a_trick_that_needs_validation_is_refused_without_a_split():
    for name in ("early_stopping", "reduce_on_plateau"):
        r = build_recipe("v", [{"name": name}])
        with pytest.raises(SpecError, match=f"{name} decide.*validation split is 0 images.*--validation N"):
            r.check_validation(0)
        r.check_validation(500)
    build_recipe("v", [{"name": "cosine_lr"}]).check_validation(0)


def test_settings_key_is_unchanged_by_defaults_and_changes_with_a_trick_version():
    base = dict(spec="s", variant="v", tricks=({"name": "exp_lr", "lr": 2e-3, "gamma": 0.8},), imports=(),
                seed=0, epochs=1, batch_size=64, train_subset=None, precision="fp32", data_kind="x",
                data_sha256="0")
    old = RunSettings(**base)                    # as stored before validation and versions existed
    assert RunSettings(**base, validation=0, trick_versions=(("exp_lr", 1),)).key() == old.key()
    assert RunSettings(**base, trick_versions=(("exp_lr", 2),)).key() != old.key()
    assert RunSettings(**base, validation=10).key() != old.key()
    again = RunSettings.from_dict(json.loads(json.dumps(RunSettings(**base, validation=5).to_dict())))
    assert again.key() == RunSettings(**base, validation=5).key()


def test_lr_trace_keeps_change_points_and_thins_long_traces():
    t = LRTrace()
    for step, lr in [(0, 1.0), (1, 1.0), (2, 0.5), (2, 0.25), (3, 0.25)]:
        t.record(step, lr)
    assert t.to_dict(4) == {"steps_per_epoch": 4, "step": [0, 2], "lr": [1.0, 0.25]}
    long = LRTrace()
    for s in range(5 * MAX_POINTS):
        long.record(s, 1.0 / (s + 1))
    d = long.to_dict(100)
    assert len(d["step"]) <= MAX_POINTS + 1 and d["step"][0] == 0 and d["step"][-1] == 5 * MAX_POINTS - 1


def test_a_tiny_run_records_validation_the_lr_per_step_and_both_losses(image_folder, tmp_path):
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)
    tricks = ({"name": "warmup", "steps": 3, "start_factor": 0.1}, {"name": "label_smoothing", "eps": 0.1},
              {"name": "early_stopping", "patience": 1, "restore_best": True})
    s = RunSettings("t", "v", tricks, (), 0, 3, 8, None, "fp32", "imagefolder", ds.checksum, validation=15)
    torch.set_num_threads(1)
    r = train_run(build_recipe("v", tricks), s, ds, torch.device("cpu"))
    assert r["train_images"] == 45 and r["validation_images"] == 15      # 60 images, 5 per class held out
    h = r["history"][0]
    assert {"val_loss", "val_accuracy", "train_nll", "test_loss", "test_accuracy"} <= set(h)
    assert h["train_nll"] != h["train_loss"]
    trace = r["lr_trace"]
    assert trace["steps_per_epoch"] == 6 and trace["step"][:4] == [0, 1, 2, 3]
    assert trace["lr"][0] == pytest.approx(1e-4) and trace["lr"][3] == pytest.approx(1e-3)
    assert r["optimizer_class"] == "Adam"


NOISE_TRICKS = '''
import torch
from tricks.specs.base import Trick
from tricks.specs.registry import register_trick

SEEN = []

@register_trick
class ZeroNoiseOwn(Trick):
    name = "zero_noise_own"
    description = "Test only: draws gradient noise of scale 0 from the run's own generator."
    def before_optimizer_step(self, model, generator):
        SEEN.append(generator)
        for p in model.parameters():
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, device=p.grad.device), alpha=0.0)

@register_trick
class ZeroNoiseGlobal(Trick):
    name = "zero_noise_global"
    description = "Test only: the same, from torch's global RNG (the dropout masks' stream)."
    def before_optimizer_step(self, model):
        for p in model.parameters():
            p.grad.add_(torch.randn(p.grad.shape, device=p.grad.device), alpha=0.0)
'''


def test_before_optimizer_step_hooks_draw_from_the_runs_own_generator_not_the_dropout_stream(
        image_folder, tmp_path, plugin_module):
    """A hook that takes ``generator`` gets the run's own; its draws leave the dropout masks, and so the
    whole run, as without it. The same draws from torch's global RNG shift every later mask."""
    mod = plugin_module("noise_plugin", NOISE_TRICKS)
    import importlib

    noise = importlib.import_module("noise_plugin")
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)
    assert mod.is_file()

    def outcome(*extra):
        tricks = ({"name": "dropout", "p": 0.5, "after": ["conv", "dense"]},) + tuple({"name": n} for n in extra)
        s = RunSettings("t", "v", tricks, (), 0, 2, 8, None, "fp32", "imagefolder", ds.checksum)
        torch.set_num_threads(1)
        r = train_run(build_recipe("v", tricks), s, ds, torch.device("cpu"))
        return [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]], r["predictions"]

    plain = outcome()
    assert outcome("zero_noise_own") == plain
    assert noise.SEEN and all(isinstance(g, torch.Generator) for g in noise.SEEN)
    assert outcome("zero_noise_global") != plain

"""Weight averaging (ema, swa) and sharpness-aware minimization (sam): the arithmetic against closed
forms and hand computations on tiny models, checkpoint round trips, and tiny engine runs (finite,
the right weights evaluated, an interrupted run resumed bit for bit). The reference implementations'
properties (AveragedModel, update_bn, SWALR) are in test_trick_references.py."""

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tricks.errors import SpecError
from tricks.plugins import load_plugins
from tricks.specs.types import Budget, TrainSplit
from tricks.training.checkpoint import CHECKPOINTS_DIR, Checkpoints, checkpoint_path, plain_problem
from tricks.training.recipe import build_recipe, one_pass

load_plugins()
from tricks.plugins import ema, sam, swa  # noqa: E402 - registered after the built-ins


def scalar_model() -> nn.Module:
    return nn.Linear(1, 1, bias=False).double()


def set_weights(model: nn.Module, values) -> None:
    with torch.no_grad():
        for p, v in zip(model.parameters(), values, strict=True):
            p.copy_(v)


def through_checkpoint(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Flatten(), nn.Linear(4 * 2 * 2, 3), nn.LogSoftmax(dim=1))


def train_split(n=12, batch_size=4, seed=1) -> TrainSplit:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 2, 2), dtype=torch.uint8, generator=g)
    return TrainSplit(images, torch.zeros(n, dtype=torch.long), lambda x: x.float() / 255.0, batch_size)


# -- ema -------------------------------------------------------------------------------------

def test_ema_after_k_steps_is_the_closed_form_started_at_the_first_steps_weights():
    decay, ps = 0.9, [0.3, -1.2, 2.5, 0.7, 4.0, -0.1]
    trick, model = ema.EMA(decay=decay), scalar_model()
    assert trick.evaluation_model(model, None) is model          # no step yet: the trained weights
    for k in range(1, len(ps) + 1):
        set_weights(model, [torch.tensor([[ps[k - 1]]], dtype=torch.float64)])
        trick.after_optimizer_step(model, None)
        shadow = trick.evaluation_model(model, None)
        expected = decay ** (k - 1) * ps[0] + sum((1 - decay) * decay ** (k - i) * ps[i - 1] for i in range(2, k + 1))
        assert shadow.weight.item() == pytest.approx(expected, abs=1e-12)
        if k == 1:
            assert torch.equal(shadow.weight, model.weight)      # an exact copy, no bias correction
    assert shadow is not model and not shadow.training and not shadow.weight.requires_grad
    assert trick.steps == len(ps)


def test_ema_averages_the_batch_norm_statistics_or_copies_them_and_refuses_a_decay_outside_0_1():
    for buffers in ("average", "copy"):
        model, trick = bn_net(), ema.EMA(decay=0.9, buffers=buffers)
        model(torch.rand(4, 3, 2, 2))
        trick.after_optimizer_step(model, None)
        first = model[1].running_mean.clone()
        model(torch.rand(4, 3, 2, 2) + 1.0)
        trick.after_optimizer_step(model, None)
        shadow = trick.evaluation_model(model, None)
        if buffers == "copy":
            assert torch.equal(shadow[1].running_mean, model[1].running_mean)
            assert int(shadow[1].num_batches_tracked) == 2
        else:    # AveragedModel(use_buffers=True): the integer count blended and truncated, as torch does
            assert torch.equal(shadow[1].running_mean, first.lerp(model[1].running_mean, 1 - 0.9))
            assert int(shadow[1].num_batches_tracked) == int(1 * 0.9 + 2 * (1 - 0.9))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(SpecError, match="decay"):
            ema.EMA(decay=bad)
    with pytest.raises(SpecError, match="buffers"):
        ema.EMA(buffers="reestimate")


def test_ema_state_through_a_checkpoint_continues_bit_for_bit_on_a_new_model():
    torch.manual_seed(3)
    snapshots = [[torch.randn_like(p) for p in bn_net().parameters()] for _ in range(8)]
    straight, model = ema.EMA(decay=0.8), bn_net()
    for w in snapshots:
        set_weights(model, w)
        straight.after_optimizer_step(model, None)
    first, model = ema.EMA(decay=0.8), bn_net()
    for w in snapshots[:5]:
        set_weights(model, w)
        first.after_optimizer_step(model, None)
    state = through_checkpoint(first.state_dict())
    assert plain_problem(state) is None and state["steps"] == 5
    resumed, model = ema.EMA(decay=0.8), bn_net()       # the engine rebuilds the model; the trick has none
    resumed.load_state_dict(state)
    for w in snapshots[5:]:
        set_weights(model, w)
        resumed.after_optimizer_step(model, None)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a["steps"] == b["steps"] == 8 and a["shadow"].keys() == b["shadow"].keys()
    assert all(torch.equal(a["shadow"][k], b["shadow"][k]) for k in a["shadow"])
    fresh = ema.EMA()
    fresh.load_state_dict(through_checkpoint(ema.EMA().state_dict()))   # saved before any step
    assert fresh.evaluation_model(model, None) is model


# -- swa -------------------------------------------------------------------------------------

def drive(recipe, budget: Budget):
    """The LR of every optimizer step of a run, with the after-step hooks called as the engine does."""
    torch.manual_seed(0)
    model = recipe.model(0, 10)
    opt = recipe.optimizer(model)
    ctl = recipe.lr_controller(opt, budget)
    hooks = recipe.step_hooks()
    lrs = []
    for _ in range(budget.epochs):
        for _ in range(budget.steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            for hook in hooks.after_optimizer_step:
                hook(model, opt)
            ctl.after_step()
        ctl.after_epoch({"train_loss": 1.0})
    return lrs, ctl


def test_swa_keeps_the_base_lr_before_start_epoch_and_its_own_lr_from_then_on():
    budget = Budget(epochs=5, steps_per_epoch=4)
    lrs, ctl = drive(build_recipe("v", [{"name": "swa", "start_epoch": 3, "lr": 2e-4}]), budget)
    assert lrs[:8] == [1e-3] * 8 and lrs[8:] == pytest.approx([2e-4] * 12, rel=1e-12)
    assert plain_problem(through_checkpoint(ctl.state_dict())) is None    # the lambdas are not saved
    # a 6-step warm-up holds a per-epoch schedule past the end of epoch 1: the switch stays at epoch 3
    lrs, _ = drive(build_recipe("v", [{"name": "warmup", "steps": 6, "start_factor": 0.5},
                                      {"name": "swa", "start_epoch": 3, "lr": 2e-4}]), budget)
    assert lrs[6:8] == pytest.approx([1e-3] * 2) and lrs[8:] == pytest.approx([2e-4] * 12, rel=1e-12)


def test_swa_average_after_n_folds_is_the_mean_of_the_end_of_epoch_weights():
    trick, model = swa.SWA(start_epoch=3, bn_update=False), bn_net()
    trick.lr_schedule(torch.optim.SGD(model.parameters(), lr=0.1), Budget(epochs=6, steps_per_epoch=2))
    torch.manual_seed(5)
    folded = []
    for step in range(1, 13):
        w = [torch.randn_like(p) for p in model.parameters()]
        set_weights(model, w)
        trick.after_optimizer_step(model, None)
        if step < 6:
            assert trick.evaluation_model(model, None) is model          # nothing averaged yet
        if step % 2 == 0 and step // 2 >= 3:
            folded.append(w)
    assert trick.folds == len(folded) == 4
    average = trick.evaluation_model(model, None)
    for a, *snaps in zip(average.parameters(), *folded):
        assert torch.allclose(a, torch.stack(snaps).mean(0), atol=1e-6, rtol=0)
    assert torch.equal(average[1].running_mean, model[1].running_mean)      # bn_update off: copied
    resumed = swa.SWA(start_epoch=3, bn_update=False)
    resumed.load_state_dict(through_checkpoint(trick.state_dict()))
    again = resumed.evaluation_model(bn_net(), None)
    assert all(torch.equal(x, y) for x, y in zip(again.state_dict().values(), average.state_dict().values()))


def test_swa_re_estimates_batch_norm_statistics_of_the_average_on_the_training_batches():
    model, split = bn_net(), train_split()
    trick = swa.SWA(start_epoch=1)
    trick.lr_schedule(torch.optim.SGD(model.parameters(), lr=0.1), Budget(epochs=2, steps_per_epoch=1))
    model(torch.rand(4, 3, 2, 2))                      # the trained model's statistics: not the split's
    trick.after_optimizer_step(model, None)
    rng = torch.get_rng_state()
    average = trick.evaluation_model(model, split)
    assert torch.equal(torch.get_rng_state(), rng)     # dropout stayed in eval mode: no global draw
    with torch.no_grad():
        conv = average[0](split.prepare(split.images))          # every batch the same size: mean of means
    expected = conv.mean(dim=(0, 2, 3))
    assert torch.allclose(average[1].running_mean, expected, atol=1e-6)
    assert not torch.allclose(model[1].running_mean, expected, atol=1e-3)
    assert not average.training and average[1].momentum == model[1].momentum
    stats = average[1].running_mean.clone()
    average[1].running_mean.add_(1.0)
    assert trick.evaluation_model(model, split) is average and torch.equal(average[1].running_mean, stats + 1)
    assert swa.reestimate_bn(nn.Linear(2, 2), []) is False      # no batch norm: nothing to do


# -- sam -------------------------------------------------------------------------------------

def test_sam_perturbation_has_global_l2_norm_rho_along_the_gradient():
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(3, 4)), nn.Parameter(torch.randn(5)), nn.Parameter(torch.randn(2))]
    for p in params[:2]:
        p.grad = torch.randn_like(p) * 7.0
    e = sam.perturbation(params, 0.05)
    assert len(e) == 2
    assert torch.linalg.vector_norm(torch.cat([x.flatten() for x in e])).item() == pytest.approx(0.05, abs=1e-6)
    grads = torch.cat([p.grad.flatten() for p in params[:2]])
    assert torch.allclose(torch.cat([x.flatten() for x in e]), 0.05 * grads / grads.norm(), atol=1e-7)


def loss_fn(net, x, y):
    out = net(x)
    return F.nll_loss(out, y), out


def test_sam_gradients_are_the_loss_gradient_at_w_plus_e_and_the_weights_come_back_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(dim=1))
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    before = [p.detach().clone() for p in model.parameters()]
    loss, out = sam.SAM(rho=0.1).compute_gradients(model, x, y, loss_fn)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    w = [b.clone().requires_grad_() for b in before]            # by hand: g at w, e, gradient at w + e
    first = F.nll_loss(F.log_softmax(F.linear(x, w[0], w[1]), dim=1), y)
    g = torch.autograd.grad(first, w)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    shifted = [(wi + 0.1 * gi / norm).detach().requires_grad_() for wi, gi in zip(w, g)]
    expected = torch.autograd.grad(F.nll_loss(F.log_softmax(F.linear(x, *shifted), dim=1), y), shifted)
    for p, ge in zip(model.parameters(), expected):
        assert torch.allclose(p.grad, ge, atol=1e-6)
    assert loss.item() == pytest.approx(first.item(), abs=1e-7)             # the first pass's loss
    assert torch.allclose(out, F.log_softmax(F.linear(x, *before), dim=1))


def test_sam_moves_batch_norm_statistics_once_and_replays_the_first_pass_dropout_masks():
    x, y = torch.rand(6, 3, 2, 2), torch.randint(0, 3, (6,))
    plain, model = bn_net(), bn_net()
    plain.train(), model.train()
    torch.manual_seed(11)
    one_pass(plain, x, y, loss_fn)
    after_one_pass = torch.get_rng_state()
    torch.manual_seed(11)
    sam.SAM().compute_gradients(model, x, y, loss_fn)
    assert torch.equal(torch.get_rng_state(), after_one_pass)      # the dropout stream goes on as in a plain step
    assert torch.equal(model[1].running_mean, plain[1].running_mean) and int(model[1].num_batches_tracked) == 1
    assert model[1].track_running_stats


# -- tiny runs through the engine -----------------------------------------------------------------

# The engine-run helpers (settings, an interruptible run, a clock-free view of its outcome) and the
# tiny dataset fixture are test_checkpoint's: the resume checks here are the same checks.
from .test_checkpoint import Interrupt, comparable, run, settings, tiny  # noqa: E402,F401 - tiny is a fixture


@pytest.mark.parametrize("tricks, evaluated", [
    ([{"name": "ema", "decay": 0.9}], ["ema"] * 4),
    ([{"name": "batch_norm"}, {"name": "swa", "start_epoch": 2}], ["trained", "swa", "swa", "swa"]),
], ids=["ema", "swa_bn"])
def test_an_averaging_run_evaluates_the_average_and_resumes_bit_identical(tricks, evaluated, tiny, tmp_path):
    s = settings(tiny, tricks)
    straight = run(s, tiny)
    assert straight["status"] == "ok" and all(math.isfinite(h["train_loss"]) for h in straight["history"])
    assert [h["evaluated"] for h in straight["history"]] == evaluated
    ck = Checkpoints(checkpoint_path(tmp_path / CHECKPOINTS_DIR, s.stem), s.key())
    with pytest.raises(Interrupt):
        run(s, tiny, ck, stop_at_epoch=3)
    assert ck.load()[0]["epoch"] == 2
    resumed = run(s, tiny, ck)
    assert resumed["resumed_from_epoch"] == 2 and comparable(resumed) == comparable(straight)


def test_a_sam_run_trains_with_finite_losses_and_evaluates_the_trained_weights(tiny):
    r = run(settings(tiny, [{"name": "sam"}], epochs=2), tiny)
    assert r["status"] == "ok" and all(math.isfinite(h["train_loss"]) and math.isfinite(h["test_loss"])
                                       for h in r["history"])
    assert [h["evaluated"] for h in r["history"]] == ["trained", "trained"]

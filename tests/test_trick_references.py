"""Each averaging and batch-mixing trick against its reference implementation's defining property:
EMA equals ``AveragedModel(..., get_ema_multi_avg_fn(decay), use_buffers=True)`` step for step, SWA's
average and batch-norm statistics equal ``AveragedModel`` + ``update_bn``, SWA's annealing follows
``SWALR``, cutmix with ``prob = 0`` is exactly the plain step, and cutmix's ``switch_prob`` with mixup
is timm's one-of-the-two per batch, with every batch-level draw from a CPU generator."""

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn

from tricks.errors import SpecError
from tricks.plugins import load_plugins
from tricks.specs.types import Batch, Budget, TrainSplit
from tricks.training.engine import autocast, train_one_epoch
from tricks.training.recipe import build_recipe

from .conftest import cuda_or_skip

load_plugins()
from tricks.plugins import cutmix, ema, mixup, swa  # noqa: E402 - registered by load_plugins


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sgd_steps(model: nn.Module, steps: int, after, size=32, precision="fp32"):
    """``steps`` SGD steps of ``model`` (train mode: BN statistics move) on random batches; ``after(model)``
    after each, as the engine calls the after-step hooks."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = gen(0)
    model.train()
    for _ in range(steps):
        x, y = torch.rand(8, 3, size, size, generator=g), torch.randint(0, 10, (8,), generator=g)
        x = x.to(next(model.parameters()).dtype)
        opt.zero_grad()
        with autocast(torch.device("cpu"), precision):
            loss = nn.functional.nll_loss(model(x).float(), y)
        loss.backward()
        opt.step()
        after(model)


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def resnet8() -> nn.Module:
    return build_recipe("v", [], model="resnet8").model(0, 10)


# -- ema ---------------------------------------------------------------------------------------

def warm_multi_avg_fn(decay):
    """torch's EMA update at the warmed-up decay of the n-th update."""
    def update(avg, cur, n):
        get_ema_multi_avg_fn(min(decay, (1 + int(n)) / (10 + int(n))))(avg, cur, n)
    return update


@pytest.mark.parametrize("params", [{}, {"warmup": True}, {"buffers": "copy"}], ids=["default", "warmup", "copy"])
def test_ema_of_a_batch_norm_model_equals_averaged_model_step_for_step(params):
    model, trick = resnet8(), ema.EMA(decay=0.9, **params)
    fn = warm_multi_avg_fn(0.9) if params.get("warmup") else get_ema_multi_avg_fn(0.9)
    ref = AveragedModel(model, multi_avg_fn=fn, use_buffers=params.get("buffers") != "copy")
    seen = []

    def after(m):
        trick.after_optimizer_step(m, None)
        ref.update_parameters(m)
        seen.append(same_state(trick.evaluation_model(m, None), ref.module))
    sgd_steps(model, 6, after)
    assert seen == [True] * 6
    shadow = trick.evaluation_model(model, None)
    bn_mean = dict(shadow.named_buffers())["stem.bn.running_mean"]
    live = dict(model.named_buffers())["stem.bn.running_mean"]
    assert torch.equal(bn_mean, live) == (params.get("buffers") == "copy")   # averaged, not copied


def test_ema_warm_up_decay_is_min_of_decay_and_1_plus_n_over_10_plus_n():
    assert [ema.warmed_decay(0.999, n) for n in (0, 1, 8, 10_000)] == [0.1, 2 / 11, 0.5, 0.999]
    trick, model = ema.EMA(decay=0.999, warmup=True), nn.Linear(1, 1, bias=False).double()
    for w in (1.0, 3.0, 5.0):
        with torch.no_grad():
            model.weight.fill_(w)
        trick.after_optimizer_step(model, None)
    # copy 1.0, then lerp to 3.0 by 1 - 2/11, then to 5.0 by 1 - 3/12
    first = 1.0 + (3.0 - 1.0) * (1 - 2 / 11)
    assert trick.evaluation_model(model, None).weight.item() == pytest.approx(first + (5.0 - first) * 0.75, abs=1e-12)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.float32),
                                              ("fp32", torch.bfloat16)], ids=["fp32", "bf16_autocast", "bf16_weights"])
def test_ema_vectorized_update_is_bit_identical_to_the_per_parameter_loop_on_tf_cnn(precision, dtype):
    model = build_recipe("v", []).model(0, 10).to(dtype)
    trick = ema.EMA(decay=0.99)
    loop = []

    def after(m):
        trick.after_optimizer_step(m, None)
        if not loop:
            loop.extend(p.detach().clone() for p in m.parameters())
            return
        for s, p in zip(loop, m.parameters()):
            s.lerp_(p.detach(), 1.0 - 0.99)          # this trick's update before it was vectorized
    sgd_steps(model, 5, after, precision=precision)
    shadow = list(trick.evaluation_model(model, None).parameters())
    assert all(a.dtype == dtype and torch.equal(a, b) for a, b in zip(shadow, loop, strict=True))


# -- swa ---------------------------------------------------------------------------------------

def bn_net() -> nn.Module:       # no dropout: update_bn puts the whole model in training mode
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 10), nn.LogSoftmax(dim=1))


def test_swa_average_and_its_batch_norm_statistics_equal_averaged_model_and_update_bn():
    model = bn_net()
    trick = swa.SWA(start_epoch=2)
    trick.lr_schedule(torch.optim.SGD(model.parameters(), lr=0.1), Budget(epochs=4, steps_per_epoch=3))
    ref = AveragedModel(model)
    steps = []

    def after(m):
        trick.after_optimizer_step(m, None)
        steps.append(1)
        if len(steps) % 3 == 0 and len(steps) // 3 >= 2:     # the end of epochs 2, 3 and 4
            ref.update_parameters(m)
    sgd_steps(model, 12, after, size=8)
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=gen(1))
    split = TrainSplit(images, torch.zeros(20, dtype=torch.long), lambda x: x.float() / 255, 6)
    average = trick.evaluation_model(model, split)
    update_bn(split.batches(), ref.module)
    ref.module.eval()
    assert trick.folds == 3 and int(ref.n_averaged) == 3
    assert same_state(average, ref.module)          # weights, running mean and var, num_batches_tracked


def lrs_per_epoch(params: dict, epochs=8, steps=2):
    recipe = build_recipe("v", [{"name": "swa", **params}])
    model = recipe.model(0, 10)
    opt = recipe.optimizer(model)
    ctl = recipe.lr_controller(opt, Budget(epochs, steps))
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        for _ in range(steps):
            opt.step()
            for hook in recipe.step_hooks().after_optimizer_step:
                hook(model, opt)
            ctl.after_step()
        ctl.after_epoch({"train_loss": 1.0})
    return out


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swa_anneals_to_its_lr_as_swalr_does_from_the_start_epoch(strategy):
    got = lrs_per_epoch({"start_epoch": 3, "lr": 2e-4, "anneal_epochs": 3, "anneal_strategy": strategy})
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref = SWALR(opt, swa_lr=2e-4, anneal_epochs=3, anneal_strategy=strategy)
    want = []
    for _ in range(6):               # epoch 3 + j trains at the LR after j + 1 SWALR steps
        opt.step()
        ref.step()
        want.append(opt.param_groups[0]["lr"])
    assert got[:2] == [1e-3, 1e-3] and got[2:] == pytest.approx(want, rel=1e-12, abs=0)
    assert got[4] == pytest.approx(2e-4, rel=1e-12) and got[2] > got[3] > got[4]
    assert lrs_per_epoch({"start_epoch": 3, "lr": 2e-4})[2:] == lrs_per_epoch(
        {"start_epoch": 3, "lr": 2e-4, "anneal_epochs": 0, "anneal_strategy": strategy})[2:]   # 0: the jump


def test_swa_start_fraction_follows_the_budget_and_replaces_start_epoch():
    t = swa.SWA(start_fraction=0.7)
    assert [t.start_for(e) for e in (10, 3, 1, 20)] == [8, 3, 1, 15]
    assert lrs_per_epoch({"start_fraction": 0.7}, epochs=10) == lrs_per_epoch({"start_epoch": 8}, epochs=10)
    assert t.to_spec() == {"name": "swa", "start_fraction": 0.7, "lr": 5e-4, "bn_update": True}
    assert swa.SWA(**{k: v for k, v in t.to_spec().items() if k != "name"}).p == t.p
    with pytest.raises(SpecError, match="start_epoch or start_fraction, not both"):
        swa.SWA(start_epoch=8, start_fraction=0.7)
    for bad in (1.0, -0.1):
        with pytest.raises(SpecError, match="start_fraction"):
            swa.SWA(start_fraction=bad)


# -- cutmix and mixup ----------------------------------------------------------------------------

def epoch_weights(tricks, seed=3):
    """The tf_cnn weights after one engine epoch of a recipe on 40 random images (batch 8)."""
    recipe = build_recipe("v", tricks)
    model = recipe.model(0, 10)
    g = gen(seed)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (40,), generator=g)
    hooks = recipe.step_hooks()
    train_one_epoch(model, recipe.optimizer(model), images, labels, nn.Identity(), 8, torch.randperm(40, generator=g),
                    hooks=hooks, augment_generator=gen(11), num_classes=10)
    return [p.detach().clone() for p in model.parameters()]


def test_cutmix_with_prob_0_is_exactly_the_plain_step():
    for base in ([], [{"name": "augment"}]):      # with a second draw from the same stream, too
        plain = epoch_weights(base)
        assert all(torch.equal(a, b) for a, b in zip(epoch_weights(base + [{"name": "cutmix", "prob": 0.0}]), plain))
        assert not all(torch.equal(a, b) for a, b in zip(epoch_weights(base + [{"name": "cutmix"}]), plain))


def batch(seed=0, n=8):
    return Batch(torch.rand(n, 3, 8, 8, generator=gen(seed)), torch.arange(n) % 4, 4)


def test_cutmix_prob_draws_one_coin_per_batch_then_cuts_as_before():
    trick, g = cutmix.CutMix(prob=0.5), gen(5)
    outcomes = []
    for _ in range(200):
        coin = gen(0).set_state(g.get_state())
        applied = float(torch.rand((), dtype=torch.float64, generator=coin)) < 0.5
        want = cutmix.CutMix().augment_batch(batch(), coin) if applied else batch()
        got = trick.augment_batch(batch(), g)
        assert torch.equal(got.images, want.images) and torch.equal(got.targets, want.targets)
        assert torch.equal(g.get_state(), coin.get_state())       # the same draws, in the same order
        outcomes.append(applied)
    assert 80 < sum(outcomes) < 120


@pytest.mark.parametrize("order", ["mixup_first", "cutmix_first"])
def test_switch_prob_applies_one_of_mixup_and_cutmix_per_batch_as_timm_does(order):
    pair = [{"name": "mixup", "alpha": 0.4}, {"name": "cutmix", "switch_prob": 0.5}]
    hooks = build_recipe("v", pair if order == "mixup_first" else pair[::-1]).step_hooks()
    alone_mix, alone_cut = mixup.Mixup(alpha=0.4), cutmix.CutMix()
    g, chose = gen(2), []
    for _ in range(100):
        ref = gen(0).set_state(g.get_state())
        out = batch()
        for hook in hooks.augment_batch:
            out = hook(out, g)
        use_cut = float(torch.rand((), dtype=torch.float64, generator=ref)) < 0.5   # prob 1: the switch coin only
        want = (alone_cut if use_cut else alone_mix).augment_batch(batch(), ref)
        assert torch.equal(out.images, want.images) and torch.equal(out.targets, want.targets)
        chose.append(use_cut)
    assert 35 < sum(chose) < 65
    assert cutmix.CutMix(switch_prob=0.5).to_spec() == {"name": "cutmix", "alpha": 1.0, "switch_prob": 0.5}


def test_switch_prob_without_mixup_is_cutmix_alone_and_prob_gates_the_pair():
    alone = build_recipe("v", [{"name": "cutmix", "switch_prob": 0.3}]).step_hooks().augment_batch[0]
    out, want = alone(batch(), gen(4)), cutmix.CutMix().augment_batch(batch(), gen(4))
    assert torch.equal(out.images, want.images)
    hooks = build_recipe("v", [{"name": "mixup"}, {"name": "cutmix", "switch_prob": 1.0, "prob": 0.0}]).step_hooks()
    out = batch()
    for hook in hooks.augment_batch:
        out = hook(out, gen(4))
    assert torch.equal(out.images, batch().images) and not out.soft     # prob 0: neither


class DeviceGenerator:
    """Stands in for a CUDA generator: its seed is known on the host; drawing from it is refused."""
    device = torch.device("cuda")

    def initial_seed(self):
        return 1234


def test_batch_level_draws_on_a_device_come_from_a_cpu_generator_seeded_on_the_host():
    draws = mixup.BatchDraws(salt=7)
    cpu = gen(1)
    assert draws.generator(cpu) is cpu and draws.state_dict() == {}       # on CPU: the run's own stream
    host = draws.generator(DeviceGenerator())
    assert host.device.type == "cpu" and host.initial_seed() == 1241 and draws.generator(DeviceGenerator()) is host
    draws.coin(DeviceGenerator(), 0.5)
    resumed = mixup.BatchDraws(salt=7)
    resumed.load_state_dict(draws.state_dict())
    assert torch.equal(resumed.generator(DeviceGenerator()).get_state(), host.get_state())


@pytest.mark.cuda
def test_mixup_cutmix_and_the_switch_never_sync_with_the_device():
    dev = cuda_or_skip()
    g = torch.Generator(device=dev).manual_seed(5)
    b = Batch(torch.rand(16, 3, 8, 8, device=dev), torch.arange(16, device=dev) % 4, 4)
    hooks = build_recipe("v", [{"name": "mixup"}, {"name": "cutmix", "switch_prob": 0.5, "prob": 0.8}]).step_hooks()
    singles = [mixup.Mixup(), cutmix.CutMix(prob=0.5)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            for hook in hooks.augment_batch + [t.augment_batch for t in singles]:
                b = hook(b, g)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert b.images.device.type == "cuda" and torch.isfinite(b.images).all()

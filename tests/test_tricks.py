"""Each trick's effect on the model, optimizer, schedule and data; hook ownership rules."""

import math

import pytest
import torch
from torch import nn

from tricks.specs.base import Trick
from tricks.errors import SpecError
from tricks.plugins import load_plugins
from tricks.training.recipe import Recipe
from tricks.specs.registry import TRICKS
from tricks.plugins import load_spec
from tricks.training.schedule import Budget, Schedule

from .conftest import STUDY_SPEC

load_plugins()


def recipe(*tricks, variant="v"):
    return Recipe(variant, [TRICKS.get(n)(**p) for n, p in tricks])


def layer_names(model):
    return [n for n, _ in model.named_children()]


@pytest.mark.parametrize("after,expected", [
    (["dense"], ["drop_relu4"]),
    (["conv"], ["drop_relu1", "drop_relu2", "drop_relu3"]),
    (["conv", "dense"], ["drop_relu1", "drop_relu2", "drop_relu3", "drop_relu4"]),
])
def test_dropout_modules_sit_right_after_the_named_relus(after, expected):
    m = recipe(("dropout", {"p": 0.2, "after": after})).model(seed=0, num_classes=10)
    names = layer_names(m)
    drops = [n for n in names if n.startswith("drop_")]
    assert drops == expected
    for d in drops:
        assert names[names.index(d) - 1] == d[len("drop_"):]
        assert isinstance(getattr(m, d), nn.Dropout) and getattr(m, d).p == 0.2


def test_study_spec_places_dropout_as_the_study_says():
    spec = load_spec(STUDY_SPEC)
    by_name = {v.name: v for v in spec.variants}
    model = lambda v: Recipe(v, by_name[v].instantiate()).model(0, 10)  # noqa: E731
    assert [n for n in layer_names(model("dropout_dense")) if n.startswith("drop")] == ["drop_relu4"]
    assert len([n for n in layer_names(model("dropout_conv")) if n.startswith("drop")]) == 3
    assert len([n for n in layer_names(model("dropout_both")) if n.startswith("drop")]) == 4
    assert not any(n.startswith("drop") for n in layer_names(model("init_weights")))


def test_exp_lr_after_epoch_3_is_2e3_times_0_8_cubed():
    r = recipe(("exp_lr", {"lr": 2e-3, "gamma": 0.8}))
    model = r.model(0, 10)
    opt = r.optimizer(model)
    ctl = r.lr_controller(opt, Budget(epochs=4, steps_per_epoch=3))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(3):
            opt.step()
            ctl.after_step()
        ctl.after_epoch({"train_loss": 1.0})
    assert lrs[0] == pytest.approx(2e-3)
    assert lrs[3] == pytest.approx(2e-3 * 0.8 ** 3)   # the LR used in epoch 4, after 3 decays


def test_baseline_is_adam_at_1e3_with_no_decay_and_no_scheduler():
    r = recipe()
    opt = r.optimizer(r.model(0, 10))
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["weight_decay"] == 0.0
    ctl = r.lr_controller(opt, Budget(epochs=2, steps_per_epoch=2))
    assert ctl.schedule is None and ctl.warmup is None
    for _ in range(4):
        ctl.after_step()
    ctl.after_epoch({"train_loss": 1.0})
    assert opt.param_groups[0]["lr"] == 1e-3


def test_weight_decay_reaches_adam():
    r = recipe(("weight_decay", {"weight_decay": 1e-4}), ("exp_lr", {}))
    g = r.optimizer(r.model(0, 10)).param_groups[0]
    assert g["weight_decay"] == 1e-4 and g["lr"] == 2e-3


def test_normalized_training_inputs_have_mean_0_std_1_per_channel():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (500, 3, 8, 8), generator=g, dtype=torch.uint8)
    imgs[:, 1] //= 3           # a channel with a different mean and spread
    t = recipe(("normalize_inputs", {})).input_transform(imgs)
    x = t(imgs.float() / 255)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_channel_stats_from_histograms_match_the_float_sum_in_float32():
    """The histogram formula gives the float32 constants the float64 sum over every pixel gave, so
    runs stored before it are reproduced bit for bit (the engine uses the constants in float32)."""
    from tricks.plugins.normalize import channel_stats

    g = torch.Generator().manual_seed(1)
    for n, size in ((1000, 32), (777, 32), (64, 5)):
        imgs = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
        imgs[:, 2] //= 7
        x = imgs.to(torch.float64) / 255.0
        ref_mean = x.mean(dim=(0, 2, 3))
        ref_std = ((x * x).mean(dim=(0, 2, 3)) - ref_mean * ref_mean).sqrt()
        mean, std = channel_stats(imgs)
        assert mean.dtype == torch.float64 and mean.shape == (3,)
        assert torch.equal(mean.float(), ref_mean.float()) and torch.equal(std.float(), ref_std.float())
        assert torch.allclose(mean, ref_mean, rtol=0, atol=1e-14)


def test_baseline_inputs_stay_in_0_1():
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(recipe().input_transform(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))(x), x)


def test_kaiming_init_zeroes_biases_and_sets_he_variance():
    m = recipe(("kaiming_init", {})).model(seed=0, num_classes=10)
    for layer in (m.conv1, m.conv2, m.conv3, m.fc1, m.fc2):
        assert torch.count_nonzero(layer.bias) == 0
        fan_in = layer.weight[0].numel()
        bound = math.sqrt(6 / fan_in)          # kaiming_uniform with ReLU gain sqrt(2)
        assert layer.weight.abs().max() <= bound + 1e-6
        assert layer.weight.abs().max() > 0.9 * bound
    default = recipe().model(seed=0, num_classes=10)
    assert torch.count_nonzero(default.conv1.bias) > 0


def test_same_seed_same_init_across_variants_with_the_same_scheme():
    a = recipe().model(3, 10)
    b = recipe(("dropout", {"after": ["conv"]}), ("normalize_inputs", {})).model(3, 10)
    c = recipe().model(4, 10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


class ToyScheduler(Trick):
    name = "toy_sched"
    description = "a second scheduler"

    def lr_schedule(self, optimizer, budget):
        return Schedule(torch.optim.lr_scheduler.StepLR(optimizer, 1))


class ToyLr(Trick):
    name = "toy_lr"
    description = "sets lr"

    def optimizer_settings(self):
        return {"lr": 0.5}


def test_two_schedulers_are_refused():
    with pytest.raises(SpecError, match="'exp_lr' and 'toy_sched' both set lr_schedule"):
        Recipe("v", [TRICKS.get("exp_lr")(), ToyScheduler()])


def test_two_tricks_setting_the_same_optimizer_key_are_refused():
    with pytest.raises(SpecError, match="both set optimizer.lr"):
        Recipe("v", [TRICKS.get("exp_lr")(), ToyLr()])


def test_the_same_trick_twice_is_refused():
    with pytest.raises(SpecError, match="listed twice"):
        recipe(("dropout", {"after": ["conv"]}), ("dropout", {"after": ["dense"]}))


def test_claimed_hooks_are_derived_from_overrides():
    assert TRICKS.get("exp_lr").claimed_hooks() == ("optimizer_settings", "lr_schedule")
    assert TRICKS.get("dropout").claimed_hooks() == ("modify_model",)
    assert ToyScheduler.claimed_hooks() == ("lr_schedule",)


def test_fast_dropout_keeps_nn_dropout_semantics():
    from tricks.plugins.dropout import FastDropout

    d = FastDropout(0.2)
    x = torch.ones(200_000)
    torch.manual_seed(0)
    y = d.train()(x)
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - 0.2) < 0.005                      # P(drop) = p, per element
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.8))   # kept values scaled by 1/(1-p)
    assert abs(y.mean().item() - 1.0) < 0.01               # expectation preserved
    assert torch.equal(d.eval()(x), x)                     # identity at evaluation
    xg = torch.ones(1000, requires_grad=True)
    out = d.train()(xg)
    out.sum().backward()
    assert torch.equal(xg.grad, out.detach())              # gradient flows through the same mask


def test_fast_dropout_masks_are_independent_per_element_and_follow_the_layout():
    from tricks.plugins.dropout import MASK_LEVELS, FastDropout

    p = 0.3
    d = FastDropout(p).train()
    torch.manual_seed(1)
    y = d(torch.ones(400_000))
    dropped = y == 0
    # neighbours share a 64-bit draw (4 x 16 bits): their drops must still be independent
    for gap in (1, 2, 3, 4):
        both = (dropped[:-gap] & dropped[gap:]).double().mean().item()
        assert abs(both - p * p) < 0.004, gap
    assert abs(y[~dropped][0].item() - MASK_LEVELS / (MASK_LEVELS - round(p * MASK_LEVELS))) < 1e-6
    # same layout and dtype as the input, for channels_last and bf16 activations
    x = torch.ones(8, 16, 6, 6).contiguous(memory_format=torch.channels_last).bfloat16()
    out = d(x)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    assert abs((out == 0).float().mean().item() - p) < 0.05
    # a non-dense input (a strided view) is handled, and the draw is reproducible under a seed
    view = torch.ones(50, 40)[:, ::2]
    torch.manual_seed(7)
    a = d(view)
    torch.manual_seed(7)
    assert torch.equal(a, d(view)) and a.shape == (50, 20)
    assert not torch.equal(a, d(view))                     # a fresh mask on the next call

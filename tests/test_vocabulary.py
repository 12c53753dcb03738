"""The extra trick vocabulary: schedules against their torch references, losses, optimizers, model edits, inits."""

import math

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as L

from tricks.errors import SpecError
from tricks.plugins import load_plugins
from tricks.training.recipe import build_recipe
from tricks.specs.registry import TRICKS
from tricks.training.schedule import Budget

load_plugins()

NEW = ("step_lr", "multistep_lr", "cosine_restarts", "one_cycle", "cyclic_lr", "poly_lr", "linear_lr", "mse_loss",
       "sgd", "adamw", "l1", "grad_clip", "batch_norm", "activation", "lecun_init", "xavier_init")
BUDGET = Budget(epochs=3, steps_per_epoch=5)


def recipe(*tricks):
    return build_recipe("v", [{"name": n, **p} for n, p in tricks])


def fresh_optimizer(r):
    return r.optimizer_class()([nn.Parameter(torch.zeros(1))], **r.optimizer_settings())


def drive(opt, after_step, after_epoch, budget=BUDGET):
    """The LR of every optimizer step, stepping as the engine does."""
    lrs = []
    for _ in range(budget.epochs):
        for _ in range(budget.steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            after_step()
        after_epoch()
    return lrs


def controller_lrs(r, budget=BUDGET):
    opt = fresh_optimizer(r)
    ctl = r.lr_controller(opt, budget)
    return drive(opt, ctl.after_step, lambda: ctl.after_epoch({"train_loss": 1.0}), budget)


def reference_lrs(r, make, interval):
    opt = fresh_optimizer(r)
    sched = make(opt)
    noop = lambda: None  # noqa: E731
    return drive(opt, sched.step if interval == "step" else noop, sched.step if interval == "epoch" else noop)


E, S = BUDGET.epochs, BUDGET.total_steps
SCHEDULES = [
    ("step_lr", {"lr": 0.1, "step_size": 1, "gamma": 0.5}, "epoch", lambda o: L.StepLR(o, 1, 0.5)),
    ("step_lr", {}, "epoch", lambda o: L.StepLR(o, 4, 0.1)),
    ("multistep_lr", {"milestones": [2, 1], "gamma": 0.3}, "epoch", lambda o: L.MultiStepLR(o, [1, 2], 0.3)),
    ("cosine_restarts", {"lr": 0.1, "T_0": 2, "eta_min": 1e-3}, "epoch",
     lambda o: L.CosineAnnealingWarmRestarts(o, 2, 1, 1e-3)),
    ("cosine_restarts", {"T_0": 1, "T_mult": 2}, "epoch", lambda o: L.CosineAnnealingWarmRestarts(o, 1, 2)),
    ("one_cycle", {"max_lr": 0.05, "pct_start": 0.4, "anneal_strategy": "linear", "div_factor": 10.0,
                   "final_div_factor": 100.0}, "step",
     lambda o: L.OneCycleLR(o, 0.05, total_steps=S, pct_start=0.4, anneal_strategy="linear", div_factor=10.0,
                            final_div_factor=100.0)),
    ("one_cycle", {}, "step", lambda o: L.OneCycleLR(o, 3e-3, total_steps=S)),
    ("cyclic_lr", {"base_lr": 0.01, "max_lr": 0.05, "step_size_up": 3, "mode": "triangular2"}, "step",
     lambda o: L.CyclicLR(o, 0.01, 0.05, step_size_up=3, mode="triangular2", cycle_momentum=False)),
    ("cyclic_lr", {"base_lr": 0.01, "max_lr": 0.05, "step_size_up": 2, "mode": "exp_range", "gamma": 0.9}, "step",
     lambda o: L.CyclicLR(o, 0.01, 0.05, step_size_up=2, mode="exp_range", gamma=0.9, cycle_momentum=False)),
    ("poly_lr", {"lr": 0.1, "power": 2.0}, "epoch", lambda o: L.PolynomialLR(o, total_iters=E, power=2.0)),
    ("linear_lr", {"start_factor": 1.0, "end_factor": 0.1}, "epoch",
     lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=E)),
]


@pytest.mark.parametrize("name,params,interval,make", SCHEDULES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULES)])
def test_schedule_matches_its_torch_scheduler_step_by_step(name, params, interval, make):
    r = recipe((name, params))
    got = controller_lrs(r)
    assert got == pytest.approx(reference_lrs(r, make, interval), rel=1e-12, abs=0)
    assert len(got) == S
    if params:
        assert len(set(got)) > 1          # the schedule actually moves within the small budget
    if interval == "epoch":               # per-epoch schedules hold the LR within an epoch
        assert all(len(set(got[e * 5:(e + 1) * 5])) == 1 for e in range(E))


def test_schedule_lr_param_is_an_optimizer_setting_only_when_set():
    assert recipe(("poly_lr", {})).optimizer_settings()["lr"] == 1e-3
    assert recipe(("poly_lr", {"lr": 0.1})).optimizer_settings()["lr"] == 0.1
    assert controller_lrs(recipe(("step_lr", {"lr": 0.1, "step_size": 1, "gamma": 0.5})))[::5] == [0.1, 0.05, 0.025]
    # one_cycle and cyclic_lr set the LR themselves: no lr parameter to be silently overwritten
    assert all("lr" not in {q.name for q in TRICKS.get(n).params} for n in ("one_cycle", "cyclic_lr"))


def test_warmup_then_one_cycle_is_sequential_linear_then_one_cycle():
    w = 4
    r = recipe(("warmup", {"steps": w, "start_factor": 0.2}), ("one_cycle", {"max_lr": 0.05}))

    def make(o):
        oc = L.OneCycleLR(o, 0.05, total_steps=S - w)
        return L.SequentialLR(o, [L.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=w), oc], milestones=[w])

    got = controller_lrs(r)
    assert got == pytest.approx(reference_lrs(r, make, "step"), rel=1e-12, abs=0)
    # the ramp goes 0.2 -> 1 x the one-cycle start (max_lr / 25), then the cycle starts from its step 0
    assert got[:w + 1] == pytest.approx([0.002 * f for f in (0.2, 0.4, 0.6, 0.8, 1.0)], rel=1e-12)
    assert 0.04 < max(got) <= 0.05 and got[-1] < 0.002


def test_per_epoch_schedule_budget_subtracts_the_warmup():
    # 7 warm-up steps take 2 epoch ends of 5 steps: poly over 3 - 2 = 1 epoch
    r = recipe(("warmup", {"steps": 7, "start_factor": 0.5}), ("poly_lr", {"lr": 0.1, "power": 1.0}))
    opt = fresh_optimizer(r)
    ctl = r.lr_controller(opt, BUDGET)
    assert ctl.schedule.scheduler.total_iters == 1


@pytest.mark.parametrize("name,params,fragment", [
    ("multistep_lr", {"milestones": [0, 3]}, "positive integers"),
    ("multistep_lr", {"milestones": [2.5]}, "positive integers"),
    ("multistep_lr", {"milestones": [True]}, "positive integers"),
    ("multistep_lr", {"milestones": "5"}, "positive integers"),
    ("multistep_lr", {"milestones": []}, "must be a list"),
    ("multistep_lr", {"milestones": [3, 3]}, "twice"),
    ("step_lr", {"step_size": 0}, "in [1,"),
    ("cosine_restarts", {"T_mult": 0}, "in [1,"),
    ("one_cycle", {"pct_start": 1.0}, "in (0, 1)"),
    ("one_cycle", {"anneal_strategy": "exp"}, "one of cos, linear"),
    ("cyclic_lr", {"base_lr": 0.1, "max_lr": 0.01}, "must be above base_lr"),
    ("linear_lr", {"start_factor": 0.0}, "in (0, 1]"),
    ("sgd", {"nesterov": True, "momentum": 0.0}, "needs momentum > 0"),
    ("activation", {"fn": "gelu"}, "one of tanh"),
])
def test_bad_parameters_are_refused(name, params, fragment):
    with pytest.raises(SpecError) as e:
        TRICKS.get(name)(**params)
    assert fragment in str(e.value)


def test_multistep_milestones_are_stored_sorted():
    assert TRICKS.get("multistep_lr")(milestones=[8, 5]).to_spec()["milestones"] == [5, 8]


# -- losses and step hooks ---------------------------------------------------------------------
def test_mse_loss_is_the_batch_mean_of_the_squared_error_summed_over_classes():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    crit = recipe(("mse_loss", {})).step_hooks().criterion
    # (0.3^2 + 0.2^2 + 0.1^2 + 0.1^2 + 0.1^2 + 0.2^2) / 2 = (0.14 + 0.06) / 2
    assert crit(probs.log(), torch.tensor([0, 2])).item() == pytest.approx(0.10, rel=1e-12)
    assert recipe(("mse_loss", {})).step_hooks().changes_loss


def test_l1_sums_absolute_conv_and_linear_weights_but_not_biases():
    model = nn.Sequential(nn.Conv2d(1, 1, 2), nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[[1.0, -2.0], [0.5, -0.5]]]]))
        model[3].weight.copy_(torch.tensor([[-3.0, 1.0]]))
        for b in (model[0].bias, model[3].bias):
            b.fill_(100.0)
    term, = recipe(("l1", {"strength": 0.01})).step_hooks().loss_terms
    assert term(model).item() == pytest.approx(0.01 * (4.0 + 4.0), rel=1e-6)
    assert TRICKS.get("l1")().p["strength"] == 1e-5


def test_grad_clip_rescales_the_global_norm_to_max_norm():
    model = nn.Linear(1, 1)
    clip, = recipe(("grad_clip", {"max_norm": 1.0})).step_hooks().before_optimizer_step
    model.weight.grad, model.bias.grad = torch.tensor([[3.0]]), torch.tensor([4.0])   # norm 5
    clip(model, None)
    assert model.weight.grad.item() == pytest.approx(0.6, rel=1e-5)
    assert model.bias.grad.item() == pytest.approx(0.8, rel=1e-5)
    model.weight.grad, model.bias.grad = torch.tensor([[0.3]]), torch.tensor([0.4])   # norm 0.5: untouched
    clip(model, None)
    assert (model.weight.grad.item(), model.bias.grad.item()) == (pytest.approx(0.3), pytest.approx(0.4))


# -- optimizers -------------------------------------------------------------------------------
def one_step(r):
    model = r.model(0, 10)
    opt = r.optimizer(model)
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    opt.step()
    return model, opt


def test_sgd_has_momentum_buffers_after_a_step():
    model, opt = one_step(recipe(("sgd", {"lr": 0.01})))
    assert type(opt) is torch.optim.SGD
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == (0.01, 0.9, False, 0.0)
    assert all(opt.state[p]["momentum_buffer"] is not None for p in model.parameters())


def test_sgd_nesterov_and_weight_decay_compose():
    r = recipe(("sgd", {"nesterov": True, "lr": 0.05}), ("weight_decay", {"weight_decay": 1e-4}))
    assert r.optimizer_settings() == {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}


def test_sgd_and_exp_lr_both_setting_lr_is_refused_but_an_unset_sgd_lr_composes():
    with pytest.raises(SpecError, match="both set optimizer.lr"):
        recipe(("sgd", {"lr": 0.05}), ("exp_lr", {}))
    r = recipe(("sgd", {}), ("exp_lr", {"lr": 0.02, "gamma": 0.8}))
    assert r.optimizer_settings()["lr"] == 0.02
    assert recipe(("sgd", {})).optimizer_settings()["lr"] == 1e-3      # unset and alone: the baseline's


def test_adamw_uses_its_decoupled_weight_decay_and_the_baseline_lr_unless_set():
    _, opt = one_step(recipe(("adamw", {})))
    assert type(opt) is torch.optim.AdamW
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]) == (1e-3, 0.01)
    assert recipe(("adamw", {"lr": 5e-4, "weight_decay": 0.1})).optimizer_settings()["lr"] == 5e-4
    with pytest.raises(SpecError, match="both set optimizer.weight_decay"):
        recipe(("adamw", {}), ("weight_decay", {}))


# -- model edits ------------------------------------------------------------------------------
def names(model):
    return [n for n, _ in model.named_children()]


def test_batch_norm_sits_between_each_conv_and_its_relu():
    m = recipe(("batch_norm", {}), ("dropout", {"after": ["conv"]})).model(0, 10)
    n = names(m)
    for i, ch in ((1, 32), (2, 64), (3, 64)):
        assert n[n.index(f"conv{i}") + 1:n.index(f"conv{i}") + 4] == [f"bn{i}", f"relu{i}", f"drop_relu{i}"]
        assert isinstance(getattr(m, f"bn{i}"), nn.BatchNorm2d) and getattr(m, f"bn{i}").num_features == ch
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_batch_norm_leaves_the_other_layers_init_unchanged():
    base = recipe().model(0, 10)
    bn = recipe(("batch_norm", {})).model(0, 10)
    assert torch.equal(base.fc1.weight, bn.fc1.weight) and torch.equal(base.conv3.weight, bn.conv3.weight)


@pytest.mark.parametrize("fn,cls", [("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("leaky_relu", nn.LeakyReLU),
                                    ("relu", nn.ReLU)])
def test_activation_replaces_every_relu_keeping_names(fn, cls):
    base = recipe().model(0, 10)
    m = recipe(("activation", {"fn": fn}), ("dropout", {"after": ["conv", "dense"]})).model(0, 10)
    n = names(m)
    for i in range(1, 5):
        assert type(getattr(m, f"relu{i}")) is cls and n[n.index(f"relu{i}") + 1] == f"drop_relu{i}"
    if fn != "relu":
        assert not any(type(x) is nn.ReLU for x in m.modules())
    assert names(base) == [k for k in n if not k.startswith("drop_")]
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_leaky_relu_slope_is_passed_through():
    m = recipe(("activation", {"fn": "leaky_relu", "negative_slope": 0.2})).model(0, 10)
    assert m.relu2.negative_slope == 0.2


# -- initializations ---------------------------------------------------------------------------
def fans(w):
    return w[0].numel(), w.shape[0] * w[0, 0].numel()


@pytest.mark.parametrize("name,distribution,std", [
    ("lecun_init", "normal", lambda fi, fo: 1 / math.sqrt(fi)),
    ("lecun_init", "uniform", lambda fi, fo: 1 / math.sqrt(fi)),
    ("xavier_init", "uniform", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("xavier_init", "normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
])
def test_init_weight_std_and_zero_biases(name, distribution, std):
    r = recipe((name, {"distribution": distribution}))
    m = r.model(0, 10)
    for layer in (m.conv2, m.fc1):
        fi, fo = fans(layer.weight)
        assert layer.weight.std().item() == pytest.approx(std(fi, fo), rel=0.03)
        assert abs(layer.weight.mean().item()) < 0.05 * std(fi, fo)
        assert torch.all(layer.bias == 0)
    bound = layer.weight.abs().max().item()   # fc1: uniform draws stay inside sqrt(3) std; normal ones do not
    assert (bound <= math.sqrt(3) * std(*fans(m.fc1.weight)) * (1 + 1e-6)) == (distribution == "uniform")
    assert torch.equal(r.model(0, 10).conv2.weight, m.conv2.weight)            # the seed's generator fixes it
    assert not torch.equal(r.model(1, 10).conv2.weight, m.conv2.weight)
    # every draw uses the generator: the global RNG ends where the default init alone leaves it
    recipe().model(0, 10)
    after_base = torch.rand(1)
    r.model(0, 10)
    assert torch.equal(torch.rand(1), after_base)


def test_init_defaults():
    assert TRICKS.get("lecun_init")().p["distribution"] == "normal"
    assert TRICKS.get("xavier_init")().p["distribution"] == "uniform"


def test_every_new_trick_is_registered_and_described():
    assert set(NEW) <= set(TRICKS.names())
    for n in NEW:
        assert TRICKS.get(n).description and TRICKS.get(n)().to_spec()["name"] == n

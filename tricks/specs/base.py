"""The trick plugin contract.

A trick is a class with a ``name``, a one-line ``description``, a ``version``, declared ``params``
and any of the hooks below. A hook a trick does not override is not claimed by it. A
*single-owner* hook may be claimed by one trick per variant; a *shared* hook by any number, applied
in spec order. Ownership is checked when a spec loads, so a bad combination fails before training.

Building a run (once per (variant, seed), in this order):

===================================  ======  ===================================================
hook                                 owner   contract
===================================  ======  ===================================================
``input_transform(train_images)``    single  uint8 training images -> a module mapping a float
                                             batch in [0, 1] to network inputs (train and eval)
``modify_model(model[, sites])``     shared  returns the (possibly new) model, e.g. with dropout;
                                             ``sites``: the model's ``specs.models.Sites``
``init_weights(model, generator)``   single  re-initializes parameters (after the default init)
``optimizer_class()``                single  a ``torch.optim.Optimizer`` subclass (default Adam)
``optimizer_settings()``             shared  {key: value}; each key (lr, momentum, ...) has one
                                             owner and must be an argument of the class; a
                                             None value is unset (not claimed, not applied)
``param_groups(model)``              single  splits parameters into groups
``lr_schedule(optimizer, budget)``   single  a ``Schedule``: scheduler + interval + monitor
``warmup()``                         single  a ``Warmup`` placed in front of the schedule
``criterion()``                      single  ``f(log_probs, targets) -> mean loss`` (default NLL)
``callbacks()``                      shared  ``callbacks.Callback`` objects (per epoch)
===================================  ======  ===================================================

Every training step (``training.engine.train_one_epoch``), in this order:

===================================  ======  ===================================================
``data_order(n, generator)``         single  each epoch's order of the n training images (a
                                             permutation; default: shuffled by the run's seed)
``augment(images, generator)``       shared  float [0, 1] NCHW training images -> images of the
                                             same shape; ``generator`` is the run's own, on the
                                             device. Never applied to validation or test images
``augment_batch(batch, generator)``  shared  a ``Batch`` (images and targets) -> a ``Batch``,
                                             after ``augment``; may return soft targets (a
                                             probability per class: mixup, cutmix)
``compute_gradients(model, inputs,   single  the step's forward/backward passes; default: one,
targets, loss_fn)``                          ``loss, log_probs = loss_fn(model, inputs, targets)``
                                             then ``loss.backward()``; returns (loss, log_probs)
                                             of the first pass (SAM: two passes)
``loss_term(model)``                 shared  a scalar tensor added to the training loss (L1, ...)
``before_optimizer_step(model[,      shared  after backward, before ``optimizer.step()``
generator])``                                (gradient clipping, gradient noise, ...); a hook
                                             that takes ``generator`` gets the run's own (on
                                             the device, seeded by the run's seed)
``after_optimizer_step(model,        shared  after ``optimizer.step()``, before the LR
optimizer)``                                 controller's step (EMA and SWA averages)
===================================  ======  ===================================================

Every evaluation (validation and test alike, every epoch; ``training.engine.evaluate``):

===================================  ======  ===================================================
``evaluation_model(model, train)``   single  the module to evaluate instead of the trained one
                                             (EMA or SWA weights), or ``model`` itself; ``train``
                                             is the ``TrainSplit`` (batch-norm statistics of
                                             averaged weights are re-estimated on it)
``predict(model, inputs)``           single  log-probabilities for evaluation inputs (default
                                             ``model(inputs)``; test-time augmentation)
===================================  ======  ===================================================

The criterion takes class indices or soft targets (``Batch.targets``): the baseline NLL of soft
targets is ``-(targets * log_probs).sum(1).mean()``, which equals the target-weighted mix of the
hard-target losses. A trick with state that a resumed run needs (EMA weights, say) gives it in
``state_dict()``/``load_state_dict()`` as plain data (tensors, numbers, strings and containers of
them): it goes into the run's per-epoch checkpoint.

Random numbers: a hook draws only from the generator it is given (``init_weights``: the run's init
stream; ``data_order``: the data-order stream; ``augment``, ``augment_batch`` and
``before_optimizer_step``: their own streams). Torch's global RNG is the dropout masks' stream: a
draw from it inside a hook shifts every later dropout mask, so the variant would differ from its
base in more than the trick.

A trick whose decisions read validation metrics sets ``needs_validation = True``: a variant
using it is refused when the study's validation split is 0 images. A trick whose parameters can
leave it nothing to do within a budget (SWA starting after the last epoch, a warm-up as long as the
run) says so in ``check_budget`` and declares ``ALLOW_NOOP`` among its parameters: a spec is refused
when it loads (``Ownership.budget_problems``), and a run whose budget the command line shortened
records a notice, unless the trick is given ``allow_noop = true``. ``check_variant`` refuses
combinations with other tricks (restoring the best weights beside an averaging trick). Changing a trick's numerics
means bumping its ``version``: only the variants that use it get new settings (a study then
refuses their stored runs, or moves them aside and trains them again with ``--replace``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import nn

from ..errors import SpecError
from .params import Param, resolve_params
from .types import Batch, Budget, Schedule, TrainSplit, Warmup

BUILD_HOOKS = ("input_transform", "modify_model", "init_weights", "optimizer_class", "optimizer_settings",
               "param_groups", "lr_schedule", "warmup", "criterion", "callbacks")
STEP_HOOKS = ("data_order", "augment", "augment_batch", "compute_gradients", "loss_term", "before_optimizer_step",
              "after_optimizer_step")
EVAL_HOOKS = ("evaluation_model", "predict")
HOOKS = BUILD_HOOKS + STEP_HOOKS + EVAL_HOOKS
SINGLE_OWNER_HOOKS = ("input_transform", "init_weights", "optimizer_class", "param_groups", "lr_schedule",
                      "warmup", "criterion", "data_order", "compute_gradients", "evaluation_model", "predict")
SHARED_HOOKS = tuple(h for h in HOOKS if h not in SINGLE_OWNER_HOOKS)

# The opt-out of the no-op check (``Trick.check_budget``), a parameter of every trick that has one.
ALLOW_NOOP = Param("allow_noop", bool, False, "run even where the budget leaves this trick nothing to do "
                   "(else refused when the spec loads)", omit_default=True)


def describe_budget(budget: Budget) -> str:
    """``budget`` in words, for messages: "10 epochs" or "1 epoch of 16 steps"."""
    epochs = f"{budget.epochs} epoch{'s' if budget.epochs != 1 else ''}"
    return f"{epochs} of {budget.steps_per_epoch} steps" if budget.steps_per_epoch else epochs


class Trick:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1               # bump when the trick's numerics change: its variants re-run
    needs_validation: ClassVar[bool] = False  # True: refuses to load when the validation split is 0
    # True: the schedule sets the optimizer's LR itself from its own is_lr parameters (1cycle, CLR), so
    # the optimizer's lr setting is not one of the variant's LRs (tuning's peak ignores it)
    sets_lr_itself: ClassVar[bool] = False
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **given: Any):
        self.p: dict[str, Any] = resolve_params(self.params, given, owner=f"trick '{self.name}'")

    # -- build hooks (defaults are 'not claimed'; see the module docstring) -------------------
    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def modify_model(self, model: nn.Module, sites=None) -> nn.Module:
        raise NotImplementedError

    def init_weights(self, model: nn.Module, generator: torch.Generator) -> None:
        raise NotImplementedError

    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        raise NotImplementedError

    def optimizer_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        raise NotImplementedError

    def lr_schedule(self, optimizer: torch.optim.Optimizer, budget: Budget) -> Schedule:
        raise NotImplementedError

    def warmup(self) -> Warmup:
        raise NotImplementedError

    def criterion(self):
        raise NotImplementedError

    def callbacks(self) -> list:
        raise NotImplementedError

    # -- step hooks ------------------------------------------------------------------------
    def data_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def augment_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def compute_gradients(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                          loss_fn: Callable) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss_term(self, model: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def before_optimizer_step(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        raise NotImplementedError

    def after_optimizer_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        raise NotImplementedError

    # -- evaluation hooks ------------------------------------------------------------------
    def evaluation_model(self, model: nn.Module, train: TrainSplit) -> nn.Module:
        raise NotImplementedError

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- checks when a spec loads (not hooks: every trick has them) ---------------------------
    def check_model(self, model) -> None:
        """Raise ``SpecError`` naming the trick and ``model`` (a ``specs.models.Model`` class) when this
        trick cannot act on it (no sites of the kind it needs, normalization it would duplicate)."""

    def check_variant(self, tricks: Sequence["Trick"]) -> None:
        """Called with the variant's tricks (this one among them) when a variant is checked and when a
        run's recipe is built: raise ``SpecError`` for a combination this trick cannot act in, or keep
        a reference to a partner trick (cutmix's switch with mixup)."""

    def check_budget(self, budget: Budget) -> None:
        """Raise ``SpecError`` (``refuse_noop``) when this trick's parameters cannot act within
        ``budget``. ``budget.steps_per_epoch`` is 0 where the run's steps are not known yet (a spec
        whose training split's size is the dataset's): checks on step counts then wait for the run."""

    def noop_problem(self, budget: Budget) -> str | None:
        """What ``check_budget`` refuses within ``budget``, or None (also when ``allow_noop`` is set)."""
        if self.p.get("allow_noop"):
            return None
        try:
            self.check_budget(budget)
        except SpecError as exc:
            return str(exc)
        return None

    def refuse_noop(self, param: str, why: str, budget: Budget, fix: str) -> None:
        """The no-op refusal, naming the trick, the parameter and the budget: ``why`` says what the
        parameter leaves undone, ``fix`` how to change it."""
        raise SpecError(f"trick '{self.name}': {param} = {self.p[param]!r} {why} within a budget of "
                        f"{describe_budget(budget)}; {fix}, or set allow_noop = true to run it anyway")

    # -- state a resumed run needs (plain data; see the module docstring) -------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # -- introspection -------------------------------------------------------------------
    @classmethod
    def claimed_hooks(cls) -> tuple[str, ...]:
        return tuple(h for h in HOOKS if getattr(cls, h) is not getattr(Trick, h))

    def to_spec(self) -> dict[str, Any]:
        """The resolved form stored with results: name plus every parameter, defaults included (but
        for ``omit_default`` parameters at their default: see ``Param``)."""
        omitted = {p.name for p in self.params if p.omit_default and self.p[p.name] == p.default}
        return {"name": self.name, **{k: v for k, v in self.p.items() if k not in omitted}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.p.items())
        return f"{self.name}({args})"

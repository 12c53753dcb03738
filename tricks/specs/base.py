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
``modify_model(model)``              shared  returns the (possibly new) model, e.g. with dropout
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

Every training step (``training.engine.train_one_epoch``):

===================================  ======  ===================================================
``data_order(n, generator)``         single  each epoch's order of the n training images (a
                                             permutation; default: shuffled by the run's seed)
``augment(batch, generator)``        shared  float [0, 1] NCHW training batch -> batch of the
                                             same shape; ``generator`` is the run's own, on the
                                             device. Never applied to validation or test images
``loss_term(model)``                 shared  a scalar tensor added to the training loss (L1, ...)
``before_optimizer_step(model[,      shared  after backward, before ``optimizer.step()``
generator])``                                (gradient clipping, gradient noise, ...); a hook
                                             that takes ``generator`` gets the run's own (on
                                             the device, seeded by the run's seed)
===================================  ======  ===================================================

Random numbers: a hook draws only from the generator it is given (``init_weights``: the run's init
stream; ``data_order``: the data-order stream; ``augment`` and ``before_optimizer_step``: their own
streams). Torch's global RNG is the dropout masks' stream: a draw from it inside a hook shifts every
later dropout mask, so the variant would differ from its base in more than the trick.

A trick whose decisions read validation metrics sets ``needs_validation = True``: a variant
using it is refused when the study's validation split is 0 images. Changing a trick's numerics
means bumping its ``version``: only the variants that use it get new settings (a study then
refuses their stored runs, or moves them aside and trains them again with ``--replace``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .params import Param, resolve_params
from ..training.schedule import Budget, Schedule, Warmup

BUILD_HOOKS = ("input_transform", "modify_model", "init_weights", "optimizer_class", "optimizer_settings",
               "param_groups", "lr_schedule", "warmup", "criterion", "callbacks")
STEP_HOOKS = ("data_order", "augment", "loss_term", "before_optimizer_step")
HOOKS = BUILD_HOOKS + STEP_HOOKS
SINGLE_OWNER_HOOKS = ("input_transform", "init_weights", "optimizer_class", "param_groups", "lr_schedule",
                      "warmup", "criterion", "data_order")
SHARED_HOOKS = tuple(h for h in HOOKS if h not in SINGLE_OWNER_HOOKS)


class Trick:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1               # bump when the trick's numerics change: its variants re-run
    needs_validation: ClassVar[bool] = False  # True: refuses to load when the validation split is 0
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **given: Any):
        self.p: dict[str, Any] = resolve_params(self.params, given, owner=f"trick '{self.name}'")

    # -- build hooks (defaults are 'not claimed'; see the module docstring) -------------------
    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
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

    def augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def loss_term(self, model: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def before_optimizer_step(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        raise NotImplementedError

    # -- introspection -------------------------------------------------------------------
    @classmethod
    def claimed_hooks(cls) -> tuple[str, ...]:
        return tuple(h for h in HOOKS if getattr(cls, h) is not getattr(Trick, h))

    def to_spec(self) -> dict[str, Any]:
        """The resolved form stored with results: name plus every parameter, defaults included."""
        return {"name": self.name, **self.p}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.p.items())
        return f"{self.name}({args})"

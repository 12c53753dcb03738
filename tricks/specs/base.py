"""The trick plugin contract.

A trick is a class with a ``name``, a one-line ``description``, declared ``params`` and any of
the hooks below. The harness calls the hooks in this fixed order (see ``recipe.Recipe``):

1. ``input_transform(train_images)``  single owner. Maps uint8 training images to a module that
   turns a float batch in [0, 1] into network inputs (e.g. per-channel standardization).
2. ``modify_model(model)``            shared, in spec order. Returns the (possibly new) model,
   e.g. with dropout inserted. Runs after the baseline's default init, before (3).
3. ``init_weights(model, generator)`` single owner. Re-initializes parameters.
4. ``optimizer_settings()``           shared, but each key (lr, weight_decay, ...) has one owner.
   ``param_groups(model)``            single owner. Splits parameters into groups.
5. ``scheduler(optimizer)``           single owner. An LR scheduler stepped once per epoch.
6. ``callbacks()``                    shared. Per-epoch callbacks (see ``callbacks.Callback``).

A hook that a trick does not override is not claimed by it. Two tricks that claim the same
single-owner hook (or the same optimizer key) are refused when the variant is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .params import Param, resolve_params

HOOKS = ("input_transform", "modify_model", "init_weights", "optimizer_settings",
         "param_groups", "scheduler", "callbacks")
SINGLE_OWNER_HOOKS = ("input_transform", "init_weights", "param_groups", "scheduler")
OPTIMIZER_KEYS = ("lr", "weight_decay", "betas", "eps")


class Trick:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **given: Any):
        self.p: dict[str, Any] = resolve_params(self.params, given, owner=f"trick '{self.name}'")

    # -- hooks (defaults are 'not claimed'; see the module docstring) ---------------------
    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        raise NotImplementedError

    def init_weights(self, model: nn.Module, generator: torch.Generator) -> None:
        raise NotImplementedError

    def optimizer_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        raise NotImplementedError

    def scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        raise NotImplementedError

    def callbacks(self) -> list:
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

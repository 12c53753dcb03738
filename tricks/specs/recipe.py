"""A variant's recipe: the baseline plus its tricks, with hooks applied in a fixed order.

``Recipe`` checks ownership when it is built (so a bad combination fails before any training)
and then builds, for one seed, the input transform, model, optimizer, scheduler and callbacks.
The order is the one documented in ``base``: input transform, model edits, init, optimizer,
scheduler, callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .base import OPTIMIZER_KEYS, SINGLE_OWNER_HOOKS, Trick
from ..errors import SpecError
from ..training.model import baseline_net

# Baseline optimizer: Adam with PyTorch's defaults (lr 1e-3 per step, betas (0.9, 0.999)), as in the study.
BASE_OPTIMIZER = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


class ScaleTo01(nn.Module):
    """The baseline input transform: uint8 images are already divided by 255; nothing more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@dataclass
class Recipe:
    variant: str
    tricks: Sequence[Trick]
    owners: dict[str, str] = field(init=False)

    def __post_init__(self):
        self.owners = {}
        seen = set()
        for t in self.tricks:
            if t.name in seen:
                raise SpecError(f"variant '{self.variant}': trick '{t.name}' is listed twice; "
                                "give it all its parameters in one entry")
            seen.add(t.name)
            for hook in t.claimed_hooks():
                if hook in SINGLE_OWNER_HOOKS:
                    self._claim(hook, t.name)
            if "optimizer_settings" in t.claimed_hooks():
                settings = t.optimizer_settings()
                for key in settings:
                    if key not in OPTIMIZER_KEYS:
                        raise SpecError(f"trick '{t.name}' sets unknown optimizer key {key!r}; "
                                        f"valid: {', '.join(OPTIMIZER_KEYS)}")
                    self._claim(f"optimizer.{key}", t.name)

    def _claim(self, hook: str, name: str) -> None:
        other = self.owners.get(hook)
        if other is not None:
            raise SpecError(f"variant '{self.variant}': tricks '{other}' and '{name}' both set {hook}; "
                            "only one trick may own it")
        self.owners[hook] = name

    def _owner(self, hook: str) -> Trick | None:
        name = self.owners.get(hook)
        return next((t for t in self.tricks if t.name == name), None)

    def _sharing(self, hook: str) -> list[Trick]:
        return [t for t in self.tricks if hook in t.claimed_hooks()]

    # -- builders, in hook order ------------------------------------------------------------
    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        owner = self._owner("input_transform")
        return owner.input_transform(train_images) if owner else ScaleTo01()

    def model(self, seed: int, num_classes: int) -> nn.Module:
        """Seed ``seed`` fixes the default init, so variants without an init trick start identical."""
        torch.manual_seed(seed)
        model = baseline_net(num_classes)
        for t in self._sharing("modify_model"):
            model = t.modify_model(model)
        owner = self._owner("init_weights")
        if owner:
            owner.init_weights(model, torch.Generator().manual_seed(seed))
        return model

    def optimizer_settings(self) -> dict[str, Any]:
        settings = dict(BASE_OPTIMIZER)
        for t in self._sharing("optimizer_settings"):
            settings.update(t.optimizer_settings())
        return settings

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        owner = self._owner("param_groups")
        params = owner.param_groups(model) if owner else model.parameters()
        return torch.optim.Adam(params, **self.optimizer_settings())

    def scheduler(self, optimizer: torch.optim.Optimizer):
        owner = self._owner("scheduler")
        return owner.scheduler(optimizer) if owner else None

    def callbacks(self) -> list:
        return [cb for t in self._sharing("callbacks") for cb in t.callbacks()]

"""A variant's recipe: the baseline plus its tricks, with hooks applied in a fixed order.

``Recipe`` checks ownership when it is built (so a bad combination fails before any training) and
then hands the engine, for one seed, every collaborator of a run: input transform, model,
optimizer, LR controller, criterion, per-step hooks and callbacks (see ``base`` for the order and
the contracts). Hooks nobody claims fall back to the baseline: NLL on the log-softmax output,
Adam with PyTorch's defaults, a constant LR, shuffled data, no augmentation.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from ..training.model import baseline_net
from ..training.schedule import Budget, LRController
from .base import SINGLE_OWNER_HOOKS, Trick

# Baseline optimizer: Adam with PyTorch's defaults (lr 1e-3 per step, betas (0.9, 0.999)), as in the study.
BASE_OPTIMIZER_CLASS = torch.optim.Adam
BASE_OPTIMIZER = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


def optimizer_keys(cls: type) -> tuple[str, ...]:
    """The settings an optimizer class accepts: its constructor's arguments other than ``params``."""
    return tuple(n for n, p in inspect.signature(cls.__init__).parameters.items()
                 if n not in ("self", "params") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def nll(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The baseline training loss: mean negative log-likelihood of the log-softmax output."""
    return F.nll_loss(log_probs, targets)


class ScaleTo01(nn.Module):
    """The baseline input transform: uint8 images are already divided by 255; nothing more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _with_generator(hook: Callable) -> Callable[[nn.Module, torch.Generator | None], None]:
    """``hook`` as (model, generator): a ``before_optimizer_step(model)`` ignores the generator."""
    import inspect

    takes = [p for p in inspect.signature(hook).parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if len(takes) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in takes):
        return hook
    return lambda model, generator: hook(model)


@dataclass
class StepHooks:
    """The per-step collaborators of ``train_one_epoch``; empty lists mean the baseline step."""
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nll
    loss_terms: list[Callable[[nn.Module], torch.Tensor]] = field(default_factory=list)
    # (model, generator): the run's own generator for any random draw (never torch's global RNG,
    # which is the dropout masks' stream); a trick whose hook takes only (model) is called with it alone.
    before_optimizer_step: list[Callable[[nn.Module, torch.Generator | None], None]] = field(default_factory=list)
    augment: list[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = field(default_factory=list)

    @property
    def changes_loss(self) -> bool:
        """Whether the training objective differs from the baseline NLL (then the NLL is recorded too)."""
        return self.criterion is not nll or bool(self.loss_terms)


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
        cls = self.optimizer_class()
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise SpecError(f"trick '{self.owners['optimizer_class']}': optimizer_class() must return a "
                            f"torch.optim.Optimizer subclass, got {cls!r}")
        valid = optimizer_keys(cls)
        for t in self._sharing("optimizer_settings"):
            for key in _set(t):
                if key not in valid:
                    raise SpecError(f"variant '{self.variant}': trick '{t.name}' sets optimizer key {key!r}, "
                                    f"which {cls.__name__} does not take; valid: {', '.join(valid)}")
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

    @property
    def needs_validation(self) -> list[str]:
        """Names of the tricks that read validation metrics."""
        return [t.name for t in self.tricks if t.needs_validation]

    def check_validation(self, validation: int) -> None:
        needy = self.needs_validation
        if needy and validation < 1:
            raise SpecError(f"variant '{self.variant}': {', '.join(needy)} decide(s) on validation metrics, but the "
                            "validation split is 0 images; set [training] validation = N in the spec or pass "
                            "--validation N (e.g. 5000)")

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

    def optimizer_class(self) -> type:
        owner = self._owner("optimizer_class")
        return owner.optimizer_class() if owner else BASE_OPTIMIZER_CLASS

    def optimizer_settings(self) -> dict[str, Any]:
        """The baseline's settings the chosen class accepts, overridden key by key by their owners."""
        valid = optimizer_keys(self.optimizer_class())
        settings = {k: v for k, v in BASE_OPTIMIZER.items() if k in valid}
        for t in self._sharing("optimizer_settings"):
            settings.update(_set(t))
        return settings

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        owner = self._owner("param_groups")
        params = owner.param_groups(model) if owner else model.parameters()
        return self.optimizer_class()(params, **self.optimizer_settings())

    def lr_controller(self, optimizer: torch.optim.Optimizer, budget: Budget) -> LRController:
        sched, warm = self._owner("lr_schedule"), self._owner("warmup")
        return LRController(optimizer, sched.lr_schedule if sched else None, warm.warmup() if warm else None, budget)

    def step_hooks(self) -> StepHooks:
        crit = self._owner("criterion")
        return StepHooks(criterion=crit.criterion() if crit else nll,
                         loss_terms=[t.loss_term for t in self._sharing("loss_term")],
                         before_optimizer_step=[_with_generator(t.before_optimizer_step)
                                                for t in self._sharing("before_optimizer_step")],
                         augment=[t.augment for t in self._sharing("augment")])

    def data_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """This epoch's order of the ``n`` training images (default: a permutation drawn from ``generator``)."""
        owner = self._owner("data_order")
        return owner.data_order(n, generator) if owner else torch.randperm(n, generator=generator)

    def callbacks(self) -> list:
        return [cb for t in self._sharing("callbacks") for cb in t.callbacks()]


def _set(trick: Trick) -> dict[str, Any]:
    """The optimizer settings a trick sets: a value of None means "unset" (neither claimed nor applied),
    so a trick can take an optional lr and leave it to a schedule trick or the baseline."""
    return {k: v for k, v in trick.optimizer_settings().items() if v is not None}


def instantiate(tricks: Sequence[Mapping[str, Any]]) -> list[Trick]:
    """Trick objects from resolved ``{"name": ..., params}`` dicts (validated again: a worker trusts nothing)."""
    from .registry import TRICKS

    return [TRICKS.get(t["name"])(**{k: v for k, v in t.items() if k != "name"}) for t in tricks]


def build_recipe(variant: str, tricks: Sequence[Mapping[str, Any]]) -> Recipe:
    return Recipe(variant, instantiate(tricks))


def trick_versions(tricks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """{trick name: its registered version} for resolved trick dicts."""
    from .registry import TRICKS

    return {t["name"]: int(TRICKS.get(t["name"]).version) for t in tricks}

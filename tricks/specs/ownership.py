"""Which trick owns which hook in a variant: the contract's rules, checked when a spec loads.

``Ownership`` refuses a trick listed twice, two tricks claiming a single-owner hook (two schedules,
two losses, two optimizers), two tricks setting one optimizer key, a key the optimizer class does
not take, and what a trick's ``check_variant`` refuses beside the others, each naming the tricks.
``training.recipe.Recipe`` builds a run's collaborators on top of it; the spec parser uses it alone,
so parsing needs nothing above this layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..errors import SpecError
from .base import SINGLE_OWNER_HOOKS, Trick
from .models import DEFAULT_MODEL, MODELS
from .types import Budget

# Baseline optimizer: Adam with PyTorch's defaults (lr 1e-3 per step, betas (0.9, 0.999)), as in the study.
BASE_OPTIMIZER_CLASS = torch.optim.Adam
BASE_OPTIMIZER = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


def optimizer_keys(cls: type) -> tuple[str, ...]:
    """The settings an optimizer class accepts: its constructor's arguments other than ``params``."""
    return tuple(n for n, p in inspect.signature(cls.__init__).parameters.items()
                 if n not in ("self", "params") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


@dataclass
class Ownership:
    variant: str
    tricks: Sequence[Trick]
    # a [tuning] grid value's optimizer lr (specs.tuning.at_lr), per optimizer step; None: the tricks' own
    optimizer_lr: float | None = None
    model_name: str = DEFAULT_MODEL     # the registered model the tricks act on (checked: check_model)
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
        if self.model_name in MODELS:   # the built-in models register when the training layer loads
            for t in self.tricks:
                t.check_model(MODELS.get(self.model_name))
        for t in self.tricks:
            t.check_variant(self.tricks)
        cls = self.optimizer_class()
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise SpecError(f"trick '{self.owners['optimizer_class']}': optimizer_class() must return a "
                            f"torch.optim.Optimizer subclass, got {cls!r}")
        valid = optimizer_keys(cls)
        for t in self._sharing("optimizer_settings"):
            for key in settings_of(t):
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

    def optimizer_class(self) -> type:
        owner = self._owner("optimizer_class")
        return owner.optimizer_class() if owner else BASE_OPTIMIZER_CLASS

    def optimizer_settings(self) -> dict[str, Any]:
        """The baseline's settings the chosen class accepts, overridden key by key by their owners."""
        valid = optimizer_keys(self.optimizer_class())
        settings = {k: v for k, v in BASE_OPTIMIZER.items() if k in valid}
        for t in self._sharing("optimizer_settings"):
            settings.update(settings_of(t))
        if self.optimizer_lr is not None and "lr" in settings:
            settings["lr"] = self.optimizer_lr
        return settings

    @property
    def needs_validation(self) -> list[str]:
        """Names of the tricks that read validation metrics."""
        return [t.name for t in self.tricks if t.needs_validation]

    def budget_problems(self, budget: Budget) -> list[str]:
        """Why each trick that cannot act within ``budget`` would be a no-op (``Trick.check_budget``)."""
        return [why for t in self.tricks if (why := t.noop_problem(budget)) is not None]

    def check_validation(self, validation: int) -> None:
        needy = self.needs_validation
        if needy and validation < 1:
            raise SpecError(f"variant '{self.variant}': {', '.join(needy)} decide(s) on validation metrics, but the "
                            "validation split is 0 images; set [training] validation = N in the spec or pass "
                            "--validation N (e.g. 5000)")


def settings_of(trick: Trick) -> dict[str, Any]:
    """The optimizer settings a trick sets: a value of None means "unset" (neither claimed nor applied),
    so a trick can take an optional lr and leave it to a schedule trick or the baseline."""
    return {k: v for k, v in trick.optimizer_settings().items() if v is not None}


def instantiate(tricks: Sequence[Mapping[str, Any]]) -> list[Trick]:
    """Trick objects from resolved ``{"name": ..., params}`` dicts (validated again: a worker trusts nothing)."""
    from .registry import TRICKS

    return [TRICKS.get(t["name"])(**{k: v for k, v in t.items() if k != "name"}) for t in tricks]


def trick_versions(tricks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """{trick name: its registered version} for resolved trick dicts."""
    from .registry import TRICKS

    return {t["name"]: int(TRICKS.get(t["name"]).version) for t in tricks}

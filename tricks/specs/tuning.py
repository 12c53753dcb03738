"""Tuning: every variant trained at every value of a grid of peak learning rates, the value chosen
on validation (``[tuning]`` in a spec), and how one grid value maps onto a variant's tricks.

    [tuning]
    lr = [5e-4, 1e-3, 2e-3, 4e-3]   # peak learning rates, per optimizer step
    select_on = "val_accuracy"       # the final epoch's validation metric: val_accuracy or val_loss

**The mapping.** A variant's *peak LR* is the largest learning rate its settings name: the
optimizer's ``lr`` (the baseline Adam's 1e-3, or the value a trick sets, e.g. ``exp_lr``'s start LR)
and every trick parameter declared ``is_lr`` (``one_cycle``'s ``max_lr``, ``cyclic_lr``'s
``max_lr``, ``swa``'s constant LR, a cosine's ``eta_min``, ...). A trick that sets the optimizer's LR
itself (``sets_lr_itself``: 1cycle, CLR) makes the optimizer's own ``lr`` irrelevant, so it is left
out of the peak. At grid value ``g`` every one of those LRs is multiplied by ``g / peak``: the
largest becomes exactly ``g`` and the schedule keeps its shape (``exp_lr`` starts at ``g`` and decays
by the same factor per epoch, ``one_cycle`` peaks at ``g``, ``swa`` keeps its ratio to the training
LR). Relative settings (factors, gammas, warm-up fractions) are unchanged. At ``g == peak`` nothing
changes: the run is the variant as written.

Validation is where settings enter: ``parse_tuning`` refuses anything but a list of 2 to 32
distinct positive LRs and a known metric. A plugin's absolute LR parameter that is not declared
``is_lr`` is not rescaled (declare it: ``Param(..., is_lr=True)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import SpecError
from .spec_values import _check_keys

# the final epoch's validation metric a grid value is chosen on, and which way is better
SELECT_ON = {"val_accuracy": "higher", "val_loss": "lower"}
TUNING_KEYS = {"lr", "select_on"}
MAX_GRID = 32          # grid values: each multiplies the study's runs
MAX_LR = 1e6           # per optimizer step, the bound every LR parameter has


@dataclass(frozen=True)
class Tuning:
    lr: tuple[float, ...]               # the grid of peak LRs (per optimizer step), ascending
    select_on: str = "val_accuracy"     # a key of SELECT_ON; never a test metric

    def to_dict(self) -> dict[str, Any]:
        return {"lr": list(self.lr), "select_on": self.select_on}


def parse_tuning(raw: Any, where: str) -> Tuning:
    """The ``[tuning]`` table of a spec, validated (``where`` names the spec in errors)."""
    where = f"{where} [tuning]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table, got {raw!r}")
    _check_keys(raw, TUNING_KEYS, where)
    grid = raw.get("lr")
    if not isinstance(grid, list) or not 2 <= len(grid) <= MAX_GRID:
        raise SpecError(f"{where}: lr must be a list of 2 to {MAX_GRID} learning rates (per optimizer step), "
                        f"e.g. lr = [5e-4, 1e-3, 2e-3, 4e-3]; got {grid!r}")
    for v in grid:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= MAX_LR:
            raise SpecError(f"{where}: each lr must be a number in (0, {MAX_LR:g}], got {v!r}")
    values = sorted(float(v) for v in grid)
    if len(set(values)) != len(values):
        raise SpecError(f"{where}: lr lists a value twice: {grid!r}")
    select_on = raw.get("select_on", "val_accuracy")
    if select_on not in SELECT_ON:
        raise SpecError(f"{where}: select_on must be one of {', '.join(SELECT_ON)} (a validation metric of the "
                        f"final epoch; never a test metric), got {select_on!r}")
    return Tuning(tuple(values), select_on)


def _lr_params(name: str) -> tuple[str, ...]:
    from .registry import TRICKS

    return tuple(p.name for p in TRICKS.get(name).params if p.is_lr)


def _optimizer_lr(tricks: Sequence[Mapping[str, Any]]) -> float | None:
    """The optimizer's ``lr`` setting of these tricks (None when a trick sets the LR itself)."""
    from .ownership import Ownership, instantiate

    objs = instantiate(tricks)
    if any(t.sets_lr_itself for t in objs):
        return None
    return Ownership("tuning", objs).optimizer_settings().get("lr")


def peak_lr(tricks: Sequence[Mapping[str, Any]]) -> float:
    """The largest learning rate the resolved tricks name (see the module docstring), per optimizer step."""
    values = [v for t in tricks for name in _lr_params(t["name"]) if (v := t.get(name)) is not None]
    opt = _optimizer_lr(tricks)
    if opt is not None:
        values.append(opt)
    if not values:
        names = ", ".join(t["name"] for t in tricks) or "(none)"
        raise SpecError(f"tricks {names}: no learning rate to tune (the optimizer takes no lr and no trick "
                        "parameter is declared is_lr)")
    return max(values)


def _scale(value: float, peak: float, lr: float) -> float:
    return lr if value == peak else value * lr / peak


def at_lr(tricks: Sequence[Mapping[str, Any]], lr: float) -> tuple[tuple[dict[str, Any], ...], float | None]:
    """(the tricks with every ``is_lr`` parameter scaled by ``lr / peak``, the optimizer's scaled lr, or
    None when a trick sets the LR itself). At ``lr == peak`` the tricks come back unchanged."""
    peak = peak_lr(tricks)
    scaled = []
    for t in tricks:
        names = _lr_params(t["name"])
        scaled.append({k: (_scale(v, peak, lr) if k in names and v is not None else v) for k, v in t.items()})
    opt = _optimizer_lr(tricks)
    return tuple(scaled), (None if opt is None else _scale(opt, peak, lr))

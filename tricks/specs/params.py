"""Declared, validated parameters for tricks.

A trick lists its parameters as ``Param`` objects; ``resolve_params`` turns the user's dict
(from a spec file) into a complete, validated dict, or raises ``SpecError`` naming the bad
key and the valid ones. Validation happens here, where settings enter, and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import SpecError

_KINDS = {float: "a number", int: "an integer", str: "a string", bool: "true/false", list: "a list"}


@dataclass(frozen=True)
class Param:
    """One parameter of a trick.

    ``low``/``high`` bound numbers (``*_open`` makes the bound exclusive); ``choices`` restricts
    strings, or the items of a list. ``is_lr`` marks an absolute learning rate, which a spec's
    ``[tuning]`` grid scales with every other LR of the variant (``specs.tuning``). ``omit_default``
    marks a parameter added after runs were stored, whose default reproduces them: while it is at its
    default it is left out of the trick's resolved form (``Trick.to_spec``), so those runs' settings,
    and their keys, stay as they were.
    """

    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    is_lr: bool = False     # an absolute learning rate (per optimizer step): a [tuning] grid value rescales it
    omit_default: bool = False  # left out of the resolved form (and run settings) while at its default

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices)) if self.kind is not list \
                else "a non-empty list of " + ", ".join(map(str, self.choices))
        if self.low is None and self.high is None:
            return _KINDS[self.kind]
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{_KINDS[self.kind]} in {left}{lo}, {hi}{right}"

    def validate(self, value: Any, owner: str) -> Any:
        where = f"{owner}: parameter '{self.name}'"
        if value is None and self.default is None:
            return None     # "unset" (a resolved trick stores it as null), allowed where it is the default
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise SpecError(f"{where} must be finite, got {value!r}")
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
        elif self.kind is list:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not value:
                raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
            bad = [v for v in value if self.choices is not None and v not in self.choices]
            if bad:
                raise SpecError(f"{where}: unknown item(s) {bad}; valid: {', '.join(self.choices)}")
            if len(set(value)) != len(value):
                raise SpecError(f"{where} lists an item twice: {list(value)!r}")
            return sorted(value, key=list(self.choices).index) if self.choices else list(value)
        elif not isinstance(value, self.kind):
            raise SpecError(f"{where} must be {_KINDS[self.kind]}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise SpecError(f"{where} must be {self.describe_range()}, got {value!r}")
        return value


def resolve_params(declared: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Fill defaults and validate ``given`` against ``declared``; unknown keys are an error."""
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        valid = ", ".join(sorted(by_name)) or "(it takes no parameters)"
        raise SpecError(f"{owner}: unknown parameter(s) {', '.join(map(repr, unknown))}; valid: {valid}")
    return {p.name: p.validate(given[p.name], owner) if p.name in given else p.default for p in declared}

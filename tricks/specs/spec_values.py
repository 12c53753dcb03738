"""Validation helpers for spec files: TOML value checkers and trick tables -> resolved trick dicts.

Used by ``spec.py``; ``check_seeds`` is also re-exported there (the CLI checks ``--seeds`` with it).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import SpecError

# names of specs, variants, factors and workloads: they become parts of file names
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _where(path: str) -> str:
    return f"spec {path}"


def _check_keys(d: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(allowed))}")


def named_table(t: Any, i: int, allowed: set, where: str, kind: str) -> str:
    """The name of the ``i``-th (from 1) ``[[<kind>s]]`` table ``t`` of a spec: it must be a table with only
    ``allowed`` keys and a ``name`` usable in file names (NAME_RE). Each caller checks its own duplicates."""
    twhere = f"{where}: {kind} #{i}"
    if not isinstance(t, dict):
        raise SpecError(f"{twhere} must be a table, got {t!r}")
    _check_keys(t, allowed, twhere)
    name = t.get("name")
    if "name" in t and not isinstance(name, str):
        raise SpecError(f"{twhere} 'name' must be a string, got {name!r}")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(f"{twhere} needs a 'name' of letters, digits, '_', '-' or '.', got {name!r}")
    return name


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {value!r}")
    return value


def check_seeds(seeds: Any, what: str = "seeds") -> tuple[int, ...]:
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise SpecError(f"{what} must be a non-empty list of integers, got {seeds!r}")
    out = tuple(_int(s, f"{what}: each seed", 0, 2**31 - 1) for s in seeds)
    dupes = sorted({s for s in out if out.count(s) > 1})
    if dupes:
        raise SpecError(f"{what} lists seed(s) {', '.join(map(str, dupes))} more than once")
    return out


def _resolve_tricks(tricks_raw: Any, where: str) -> list[dict[str, Any]]:
    """Validated trick tables -> resolved dicts (every parameter filled in)."""
    from .registry import TRICKS

    if not isinstance(tricks_raw, list):
        raise SpecError(f"{where}: 'tricks' must be a list of tables like {{ name = \"dropout\", p = 0.2 }}")
    resolved = []
    for t in tricks_raw:
        if isinstance(t, str):
            t = {"name": t}
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise SpecError(f"{where}: each trick must be a table with a 'name', got {t!r}")
        try:
            trick = TRICKS.get(t["name"])(**{k: val for k, val in t.items() if k != "name"})
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        resolved.append(trick.to_spec())
    return resolved


def _merge_factor_tricks(factors, where: str) -> tuple[dict[str, Any], ...]:
    """The tricks of the factors that are on, in factor order. The same trick from two factors is one
    entry when their parameters agree except for list parameters, which are united (dropout after
    dense + dropout after conv = dropout after both); any other disagreement is a conflict."""
    merged: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for f in factors:
        for t in f.tricks:
            prev = merged.get(t["name"])
            if prev is None:
                merged[t["name"]], owner[t["name"]] = dict(t), f.name
                continue
            for k, v in t.items():
                if isinstance(v, list) and isinstance(prev.get(k), list):
                    prev[k] = sorted(set(prev[k]) | set(v), key=lambda x: (prev[k] + v).index(x))
                elif prev.get(k) != v:
                    raise SpecError(f"{where}: factors '{owner[t['name']]}' and '{f.name}' both switch on trick "
                                    f"'{t['name']}' with different {k} ({prev.get(k)!r} vs {v!r}); they cannot be "
                                    "combined in one variant")
    if any(isinstance(v, list) for t in merged.values() for v in t.values()):   # re-validate united lists
        from .registry import TRICKS

        merged = {n: TRICKS.get(n)(**{k: v for k, v in t.items() if k != "name"}).to_spec()
                  for n, t in merged.items()}
    return tuple(merged.values())


def parse_seeds(text: str, flag: str = "--seeds") -> tuple[int, ...]:
    """Seeds from a command-line list like ``0,1,2`` or ranges like ``5-14`` (inclusive), or both
    (``0,5-7``): non-negative, no empty items, no repeats."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or "" in parts:
        raise SpecError(f"{flag} takes comma-separated non-negative integers like 0,1,2 or a range like 5-14 "
                        f"(no empty items); got {text!r}")
    values = []
    try:
        for p in parts:
            lo, dash, hi = p.partition("-")
            if dash and lo.strip() and hi.strip():
                if int(hi) < int(lo):
                    raise SpecError(f"{flag}: the range {p} runs backwards; write {hi.strip()}-{lo.strip()}")
                values.extend(range(int(lo), int(hi) + 1))
            else:
                values.append(int(p))
    except ValueError:
        raise SpecError(f"{flag} takes comma-separated non-negative integers like 0,1,2 or a range like 5-14; "
                        f"got {text!r}") from None
    return check_seeds(values, flag)

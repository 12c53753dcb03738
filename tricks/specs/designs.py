"""Study designs: generate a spec's variants from factors instead of listing them by hand.

A factor is a name and the tricks it switches on. Designs (``design = ...`` in a spec):

- ``cumulative``: baseline, then each factor added on top of the variant before it (the original
  study's order; every step is compared with the variant it builds on). k + 1 variants.
- ``one_at_a_time``: baseline and each factor alone on it. k + 1 variants.
- ``leave_one_out``: every factor on (``all``), then each factor taken out in turn. k + 1 variants.
- ``factorial``: every combination, 2^k variants: main effects and all interactions estimable.
- ``fractional``: the smallest two-level fraction 2^(k-p) of the requested ``resolution`` (pyDOE's
  ``fracfact_by_res``); resolution IV keeps main effects clear of two-factor interactions. Its
  generators and alias structure (pyDOE's ``fracfact_aliasing``) go into study.json and the report.

Rows are 0/1 per factor (1 = on). Variant names say which factors are on: ``baseline`` when none,
else the factor names joined by ``+`` (``all`` and ``all_but_<factor>`` for leave-one-out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SpecError

DESIGNS = ("cumulative", "one_at_a_time", "leave_one_out", "factorial", "fractional")
MAX_FACTORIAL = 10          # factors: 2^10 = 1024 variants is already a cluster-sized study
RESOLUTIONS = (3, 4, 5)     # III: main effects aliased with 2-factor interactions; IV: not; V: neither 2fi


@dataclass(frozen=True)
class Factor:
    name: str
    tricks: tuple[dict[str, Any], ...]    # resolved tricks it switches on


@dataclass
class Design:
    kind: str
    factors: list[Factor]
    rows: np.ndarray                       # variants x factors, 0/1
    resolution: int | None = None          # fractional designs only
    generators: list[str] = field(default_factory=list)   # e.g. "conv_dropout = norm*exp_lr*weight_decay"
    aliases: list[str] = field(default_factory=list)      # e.g. "norm*exp_lr = weight_decay*kaiming"

    def names(self) -> list[str]:
        return [variant_name(self.kind, self.factors, row) for row in self.rows]

    def bases(self) -> list[str | None]:
        """The variant each one is compared with as its 'base' (cumulative: the one before it)."""
        names = self.names()
        if self.kind == "cumulative":
            return [None] + names[:-1]
        if self.kind == "leave_one_out":
            return [None] + [names[0]] * (len(names) - 1)
        return [None if not row.any() else "baseline" if "baseline" in names else None for row in self.rows]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "factors": [{"name": f.name, "tricks": [dict(t) for t in f.tricks]}
                                               for f in self.factors],
                "matrix": self.rows.astype(int).tolist(), "resolution": self.resolution,
                "generators": list(self.generators), "aliases": list(self.aliases)}


def variant_name(kind: str, factors: list[Factor], row) -> str:
    on = [f.name for f, x in zip(factors, row) if x]
    if kind == "leave_one_out":
        off = [f.name for f, x in zip(factors, row) if not x]
        return "all" if not off else "all_but_" + "+".join(off)
    return "+".join(on) if on else "baseline"


def generate(kind: str, factors: list[Factor], resolution: int | None = None) -> Design:
    """The design's 0/1 matrix (rows: variants, columns: factors) with its aliasing, if any."""
    k = len(factors)
    if kind not in DESIGNS:
        raise SpecError(f"unknown design {kind!r}; valid: {', '.join(DESIGNS)}")
    if k < 1 or (kind in ("factorial", "fractional") and k < 2):
        raise SpecError(f"design '{kind}' needs at least {1 if kind not in ('factorial', 'fractional') else 2} "
                        f"[[factors]], got {k}")
    if resolution is not None and kind != "fractional":
        raise SpecError(f"'resolution' applies to design = \"fractional\" only, not {kind!r}")
    eye = np.eye(k, dtype=int)
    if kind == "cumulative":
        rows = np.tril(np.ones((k + 1, k), dtype=int), -1)
    elif kind == "one_at_a_time":
        rows = np.vstack([np.zeros((1, k), dtype=int), eye])
    elif kind == "leave_one_out":
        rows = np.vstack([np.ones((1, k), dtype=int), 1 - eye])
    elif kind == "factorial":
        if k > MAX_FACTORIAL:
            raise SpecError(f"a full factorial over {k} factors is 2^{k} variants; use design = \"fractional\" "
                            f"(at most {MAX_FACTORIAL} factors for a full one)")
        rows = np.array(list(itertools.product((0, 1), repeat=k)), dtype=int)
    else:
        return _fractional(factors, resolution)
    return Design(kind, factors, rows)


def _fractional(factors: list[Factor], resolution: int | None) -> Design:
    from pydoe import fracfact_aliasing, fracfact_by_res

    if resolution not in RESOLUTIONS:
        raise SpecError(f"design = \"fractional\" needs resolution = 3, 4 or 5 (IV: main effects clear of "
                        f"two-factor interactions), got {resolution!r}")
    k = len(factors)
    try:
        signs = fracfact_by_res(k, resolution)
    except ValueError as exc:
        raise SpecError(f"no two-level fractional design of resolution {resolution} for {k} factors: {exc}") from None
    signs = signs.astype(int)
    letters = "abcdefghijklmnopqrstuvwxyz"[:k]
    names = {letter: f.name for letter, f in zip(letters, factors)}

    def word(w: str) -> str:
        return "*".join(names[c] for c in w)

    aliases = []
    if signs.shape[0] < 2 ** k:
        alias_map, _ = fracfact_aliasing(signs)
        aliases = [" = ".join(word(w.strip()) for w in group.split("=")) for group in alias_map if "=" in group]
    rows = (signs > 0).astype(int)
    rows = rows[np.lexsort(rows[:, ::-1].T)]          # a stable order: baseline first, like a binary count
    return Design("fractional", factors, rows, resolution, _generators(signs, factors), aliases)


def _generators(signs: np.ndarray, factors: list[Factor]) -> list[str]:
    """Each column that is the product of others, as "f = a*b*c" (found from the matrix itself)."""
    n, k = signs.shape
    m = int(round(np.log2(n)))
    base = _independent_columns(signs, m)
    gens = []
    for j in range(k):
        if j in base:
            continue
        for size in range(2, m + 1):
            hit = next((s for s in itertools.combinations(base, size)
                        if np.array_equal(np.prod(signs[:, list(s)], axis=1), signs[:, j])), None)
            if hit is not None:
                gens.append(f"{factors[j].name} = " + "*".join(factors[i].name for i in hit))
                break
        else:   # a generator with a sign (f = -abc)
            for size in range(2, m + 1):
                hit = next((s for s in itertools.combinations(base, size)
                            if np.array_equal(-np.prod(signs[:, list(s)], axis=1), signs[:, j])), None)
                if hit is not None:
                    gens.append(f"{factors[j].name} = -" + "*".join(factors[i].name for i in hit))
                    break
    return gens


def _independent_columns(signs: np.ndarray, m: int) -> list[int]:
    """The first m columns whose sign patterns form a full factorial (the design's base factors)."""
    chosen: list[int] = []
    for j in range(signs.shape[1]):
        trial = chosen + [j]
        patterns = {tuple(r) for r in (signs[:, trial] > 0).astype(int)}
        if len(patterns) == 2 ** len(trial):
            chosen = trial
        if len(chosen) == m:
            break
    return chosen

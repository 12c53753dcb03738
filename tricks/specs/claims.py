"""A claims file: the hypotheses a confirmation tests, fixed before its runs (``tricks confirm``).

```toml
name = "confirm"
description = "The README's headline findings, on fresh seeds"

[[claims]]
name = "one_cycle_beats_constant"
statement = "One-cycle ends above the constant LR"   # what the README says, in words
spec = "benchmarks/lr_schedules.toml"                # the spec whose settings the runs use
study = "results/lr_schedules"                       # the exploratory study the claim came from
variant = "one_cycle"
against = "constant"
direction = "better"                                 # better | worse | equivalent (needs margin)
```

A claim compares ``variant`` with ``against`` (paired by seed), or states a ``contrast``: a table of
arms and weights that sum to zero (``{ "a+b" = 1, "a" = -1, "b" = -1, "baseline" = 1 }`` is the
a x b interaction at the others' levels). ``workload`` picks one of a multi-workload spec's
workloads; ``tuned = true`` trains the variants at the LR the exploratory study selected on its
validation split (its ``selection.csv``), never re-selected. ``margin`` (accuracy points) is the
equivalence margin. This module checks the file's shape only; ``running.confirm`` resolves the specs.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .spec_values import NAME_RE, _check_keys

DIRECTIONS = ("better", "worse", "equivalent")
CLAIM_KEYS = {"name", "statement", "spec", "study", "variant", "against", "contrast", "workload", "tuned",
              "direction", "margin"}


@dataclass(frozen=True)
class Claim:
    name: str
    spec: str                          # path of the spec file, as written (relative to the claims file's folder)
    study: str                         # the exploratory results folder
    weights: tuple[tuple[str, float], ...]   # (variant, weight): variant - against is ((v, 1), (a, -1))
    direction: str                     # better | worse | equivalent
    margin: float | None = None        # accuracy points, for equivalent
    workload: str | None = None
    tuned: bool = False
    statement: str = ""

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.weights)

    def describe(self) -> str:
        """``one_cycle - constant``, or the contrast written out."""
        parts = []
        for v, w in self.weights:
            sign = "-" if w < 0 else "+"
            mag = "" if abs(w) == 1 else f"{abs(w):g}*"
            parts.append(f"{sign} {mag}{v}")
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else text


@dataclass(frozen=True)
class Claims:
    name: str
    description: str
    claims: tuple[Claim, ...]
    path: str
    text: str = field(repr=False, default="")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def spec_path(self, claim: Claim) -> Path:
        """A claim's spec file: relative to the claims file's folder if it is there, else as written."""
        return _beside(self.path, claim.spec)

    def study_path(self, claim: Claim) -> Path:
        return _beside(self.path, claim.study)


def _beside(claims_path: str, target: str) -> Path:
    p = Path(target)
    if p.is_absolute():
        return p
    near = Path(claims_path).resolve().parent / p
    return near if near.exists() else p


def load_claims(path: str | Path) -> Claims:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"claims file {path}: cannot be read ({exc.strerror or exc})") from None
    return parse_claims(text, str(path))


def parse_claims(text: str, path: str = "<claims>") -> Claims:
    where = f"claims file {path}"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where} is not valid TOML: {exc}") from None
    _check_keys(doc, {"name", "description", "claims"}, where)
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(f"{where}: 'name' must be letters, digits, '_', '-' or '.', got {name!r}")
    tables = doc.get("claims")
    if not isinstance(tables, list) or not tables:
        raise SpecError(f"{where}: needs at least one [[claims]] table")
    claims = [_claim(t, i, where) for i, t in enumerate(tables, 1)]
    dupes = sorted({c.name for c in claims if [d.name for d in claims].count(c.name) > 1})
    if dupes:
        raise SpecError(f"{where}: claim name(s) {', '.join(dupes)} used more than once")
    return Claims(name, str(doc.get("description", "")), tuple(claims), path, text)


def _claim(t: Any, i: int, where: str) -> Claim:
    cwhere = f"{where}: claim #{i}"
    if not isinstance(t, dict):
        raise SpecError(f"{cwhere} must be a table")
    _check_keys(t, CLAIM_KEYS, cwhere)
    name = t.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(f"{cwhere} needs a 'name' of letters, digits, '_', '-' or '.', got {name!r}")
    cwhere = f"{where}: claim {name}"
    for key in ("spec", "study"):
        if not isinstance(t.get(key), str) or not t[key]:
            raise SpecError(f"{cwhere}: '{key}' must name a file or folder, got {t.get(key)!r}")
    weights = _weights(t, cwhere)
    direction = t.get("direction")
    if direction not in DIRECTIONS:
        raise SpecError(f"{cwhere}: 'direction' must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    margin = t.get("margin")
    if direction == "equivalent":
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < math.inf:
            raise SpecError(f"{cwhere}: 'equivalent' needs a 'margin' in accuracy points (> 0), got {margin!r}")
        margin = float(margin)
    elif margin is not None:
        raise SpecError(f"{cwhere}: 'margin' is for direction = 'equivalent' only")
    workload = t.get("workload")
    if workload is not None and (not isinstance(workload, str) or not NAME_RE.match(workload)):
        raise SpecError(f"{cwhere}: 'workload' must be a workload's name, got {workload!r}")
    tuned = t.get("tuned", False)
    if not isinstance(tuned, bool):
        raise SpecError(f"{cwhere}: 'tuned' must be true or false, got {tuned!r}")
    statement = t.get("statement", "")
    if not isinstance(statement, str):
        raise SpecError(f"{cwhere}: 'statement' must be a string")
    return Claim(name, t["spec"], t["study"], weights, direction, margin, workload, tuned, statement)


def _weights(t: dict, where: str) -> tuple[tuple[str, float], ...]:
    if "contrast" in t:
        if "variant" in t or "against" in t:
            raise SpecError(f"{where}: give either 'contrast' or 'variant' and 'against', not both")
        c = t["contrast"]
        if not isinstance(c, dict) or len(c) < 2:
            raise SpecError(f"{where}: 'contrast' must be a table of at least two variants and their weights")
        for v, w in c.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w == 0:
                raise SpecError(f"{where}: contrast weight of {v!r} must be a non-zero number, got {w!r}")
        if abs(sum(c.values())) > 1e-9:
            raise SpecError(f"{where}: contrast weights must sum to 0 (a difference), they sum to {sum(c.values()):g}")
        return tuple((str(v), float(w)) for v, w in c.items())
    variant, against = t.get("variant"), t.get("against")
    if not isinstance(variant, str) or not isinstance(against, str):
        raise SpecError(f"{where}: needs 'variant' and 'against' (variant names of its spec), or a 'contrast'")
    if variant == against:
        raise SpecError(f"{where}: 'variant' and 'against' are both {variant!r}")
    return ((variant, 1.0), (against, -1.0))

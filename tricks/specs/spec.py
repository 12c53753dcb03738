"""Study specs: TOML files that name variants as lists of tricks with parameters.

    name = "backprop_tricks"              # results go to results/<name>/ by default
    description = "..."
    imports = ["my_tricks"]               # optional: modules that register extra tricks

    [training]
    epochs = 10                           # full passes over the training split
    batch_size = 64                       # images per optimizer step
    seeds = [0, 1, 2, 3, 4]               # default seeds, shared by every variant
    train_subset = 10000                  # optional: a class-balanced subset of the training split
    validation = 5000                     # optional: images held out of training for validation (default 0)

    [tuning]                              # optional: every variant at every peak LR; chosen on validation
    lr = [5e-4, 1e-3, 2e-3, 4e-3]         # peak learning rates, per optimizer step (specs.tuning)
    select_on = "val_accuracy"            # the final epoch's validation metric (or val_loss)

    [[variants]]
    name = "baseline"
    tricks = []

    [[variants]]
    name = "norm_inputs"
    base = "baseline"                     # inherit base's tricks; deltas are also taken against it
    tricks = [{ name = "normalize_inputs" }]

Everything is validated here; ``load_spec`` returns a ``Spec`` or raises ``SpecError``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import SpecError
from .designs import DESIGNS
from .entry import check_workload_code, parse_config
from .models import DEFAULT_MODEL, MODELS
from .tuning import Tuning, parse_tuning, peak_lr
from .types import Budget
from .workloads import Workload, parse_workloads
from .spec_values import (  # noqa: F401  (check_seeds: re-exported for the CLI)
    NAME_RE, _check_keys, _int, _resolve_tricks, _str, _where, check_seeds, named_table,
)

TOP_KEYS = {"name", "description", "imports", "training", "variants", "design", "factors", "resolution", "tuning",
            "model", "workloads", "entry", "config"}
TRAINING_KEYS = {"epochs", "batch_size", "seeds", "train_subset", "validation"}
VARIANT_KEYS = {"name", "description", "base", "tricks", "config"}
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536


@dataclass(frozen=True)
class Training:
    epochs: int = 10        # full passes over the training split (the study: 10)
    batch_size: int = 64    # images per optimizer step (the study: 64)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # five paired seeds: enough for a t-interval to mean something
    train_subset: int | None = None  # images in a class-balanced training subset; None: the whole split
    # images in a class-balanced validation split carved out of the training split before any subset;
    # 0 as in the original study (which had none). Callbacks and metric-driven schedules read only it.
    validation: int = 0


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    base: str | None                     # the variant it builds on, or None
    tricks: tuple[dict[str, Any], ...]   # resolved: {"name": ..., every parameter}
    config: dict = field(default_factory=dict)   # an entry-point study's config keys (specs.entry), base's included

    def instantiate(self):
        """The Trick objects (validated again, so a worker process trusts nothing)."""
        from .ownership import instantiate

        return instantiate(self.tricks)


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    path: str
    imports: tuple[str, ...]
    training: Training
    variants: tuple[Variant, ...] = field(default_factory=tuple)
    design: dict | None = None          # designs.Design.to_dict() when the variants were generated
    tuning: Tuning | None = None        # [tuning]: the LR grid every variant runs at; None: no tuning
    workloads: tuple[Workload, ...] = (Workload(None),)   # model = ... or [[workloads]]; default: tf_cnn

    @property
    def multi_workload(self) -> bool:
        return self.workloads[0].name is not None

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def select(self, names: list[str] | None) -> list[Variant]:
        if not names:
            return list(self.variants)
        valid = self.variant_names()
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise SpecError(f"unknown variant(s) {', '.join(map(repr, unknown))} in spec '{self.name}'; "
                            f"valid: {', '.join(valid)}")
        return [v for v in self.variants if v.name in names]


DEFAULT_NAME = "spec"   # the name of a spec given as text, without a file to name it after


LoadImports = Callable[[Iterable[str]], None]


def parse_spec(text: str, path: str | None = None, load_imports: LoadImports | None = None) -> Spec:
    """Parse and validate spec text. Trick names and parameters are checked against the registry.

    ``load_imports``, when given, is called with the spec's ``imports`` list (module names) before any
    trick name is checked, to register the tricks those modules define; without it nothing is imported
    and names are checked against whatever is registered already (``tricks.plugins.parse_spec`` loads
    the built-ins and the spec's imports first).

    The name defaults to the file's stem (``benchmarks/x.toml`` -> ``x``), or ``spec`` for text
    given without a path.
    """
    default_name = Path(path).stem if path else DEFAULT_NAME
    path = path or "<string>"
    where = _where(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where} is not valid TOML: {exc}") from None
    _check_keys(raw, TOP_KEYS, where)
    name = _str(raw.get("name", default_name), f"{where}: 'name'")
    if not NAME_RE.match(name):
        raise SpecError(f"{where}: name {name!r} must be letters, digits, '_', '-' or '.' (at most 64)")
    description = _str(raw.get("description", ""), f"{where}: 'description'")
    imports = raw.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        raise SpecError(f"{where}: 'imports' must be a list of module names, got {imports!r}")
    if load_imports is not None:
        from .user_code import spec_root, with_root

        if imports or "entry" in raw or any(isinstance(w, dict) and "entry" in w for w in raw.get("workloads", [])):
            with_root(spec_root(path))      # modules beside the spec first (``imports``, entry points)
        load_imports(imports)

    tr = raw.get("training", {})
    if not isinstance(tr, dict):
        raise SpecError(f"{where}: [training] must be a table, got {tr!r}")
    _check_keys(tr, TRAINING_KEYS, f"{where} [training]")
    d = Training()
    training = Training(
        epochs=_int(tr.get("epochs", d.epochs), f"{where} [training] epochs", 1, MAX_EPOCHS),
        batch_size=_int(tr.get("batch_size", d.batch_size), f"{where} [training] batch_size", 1, MAX_BATCH),
        seeds=check_seeds(tr.get("seeds", list(d.seeds)), f"{where} [training] seeds"),
        train_subset=_int(tr["train_subset"], f"{where} [training] train_subset", 1, 10**9)
        if "train_subset" in tr else None,
        validation=_int(tr.get("validation", d.validation), f"{where} [training] validation", 0, 10**9),
    )

    tuning = parse_tuning(raw["tuning"], where) if "tuning" in raw else None
    workloads = parse_workloads(raw, where)
    if "design" in raw:
        if "variants" in raw:
            raise SpecError(f"{where}: give either design = ... with [[factors]], or [[variants]], not both")
        from .spec_design import designed_variants

        design, variants = designed_variants(raw, where)
        return _checked(Spec(name, description, path, tuple(imports), training, tuple(variants), design,
                             tuning, workloads), load_imports is not None)
    for key in ("factors", "resolution"):
        if key in raw:
            raise SpecError(f"{where}: '{key}' needs design = \"{'fractional' if key == 'resolution' else 'factorial'}\" "
                            f"(valid designs: {', '.join(DESIGNS)})")
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, list) or not variants_raw:
        raise SpecError(f"{where}: needs at least one [[variants]] table (or design = ... with [[factors]])")
    variants: dict[str, Variant] = {}
    for i, v in enumerate(variants_raw, 1):
        vname = named_table(v, i, VARIANT_KEYS, where, "variant")
        vwhere = f"{where}: variant '{vname}'"
        if vname in variants:
            raise SpecError(f"{vwhere} is defined twice")
        base = v.get("base")
        inherited, config = (), {}
        if base is not None:
            base = _str(base, f"{vwhere} 'base'")
            if base not in variants:
                raise SpecError(f"{vwhere}: base {base!r} must be a variant defined above it; "
                                f"defined so far: {', '.join(variants) or '(none)'}")
            inherited, config = variants[base].tricks, variants[base].config
        resolved = _resolve_tricks(v.get("tricks", []), vwhere)
        variant = Variant(vname, _str(v.get("description", ""), f"{vwhere} 'description'"), base,
                          tuple(inherited) + tuple(resolved), {**config, **parse_config(v, vwhere)})
        _check_recipe(variant)
        variants[vname] = variant
    return _checked(Spec(name, description, path, tuple(imports), training, tuple(variants.values()), None, tuning,
                         workloads), load_imports is not None)


def _checked(spec: Spec, imported: bool = False) -> Spec:
    """Every variant's tricks can act on every workload's model; with ``[tuning]``, every variant has a
    learning rate to tune (else a one-line SpecError naming both). Model sites name layers, entry-point
    workloads take config keys, not tricks (``imported``: their functions import): ``check_workload_code``."""
    if spec.tuning is not None and spec.multi_workload:
        raise SpecError(f"{_where(spec.path)}: [tuning] with several [[workloads]] is not supported yet; "
                        "tune each workload in a study of its own (model = ...)")
    check_workload_code(spec, imported, _where(spec.path))
    for v in spec.variants:
        try:
            for w in spec.workloads:
                if w.model != DEFAULT_MODEL:
                    for t in v.instantiate():
                        t.check_model(MODELS.get(w.model))
            if spec.tuning is not None and not spec.workloads[0].entry:   # an entry's: check_workload_code
                peak_lr(v.tricks)
            _check_budgets(spec, v)
        except SpecError as exc:
            raise SpecError(f"{_where(spec.path)}: variant '{v.name}': {exc}") from None
    return spec


def _check_budgets(spec: Spec, variant: Variant) -> None:
    """Refuse a trick that the spec's budget leaves nothing to do (``Trick.check_budget``: SWA starting
    after the last epoch, ...) on any workload; its steps per epoch are known where a subset fixes them."""
    tricks = variant.instantiate()
    for w in spec.workloads:
        subset = w.train_subset or spec.training.train_subset
        budget = Budget(w.epochs or spec.training.epochs, -(-subset // spec.training.batch_size) if subset else 0)
        for t in tricks:
            why = t.noop_problem(budget)
            if why is not None:
                raise SpecError(why + (f" (workload '{w.name}')" if w.name else ""))


def _check_recipe(variant: Variant) -> None:
    from .ownership import Ownership as Recipe

    try:
        Recipe(variant.name, variant.instantiate())
    except SpecError:
        raise
    except Exception as exc:  # a plugin's own bug while resolving settings
        raise SpecError(f"variant '{variant.name}': {type(exc).__name__}: {exc}") from None


def load_spec(path: str | Path, load_imports: LoadImports | None = None) -> Spec:
    """Read and parse a spec file (see ``parse_spec`` for ``load_imports``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {p} does not exist (the shipped specs are in benchmarks/*.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {p}: {exc}") from None
    return parse_spec(text, str(p), load_imports)

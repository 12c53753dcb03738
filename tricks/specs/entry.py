"""The entry-point contract: a workload that trains your own code instead of a registered model.

    [[workloads]]                          # or, for a study of one workload: entry = ... at the top level
    name = "mine"
    entry = "train:run"                    # module:function; the module beside the spec first, then sys.path
    config = { lr = 1e-3, width = 32 }     # the workload's configuration (a plain table)

    [[variants]]
    name = "wide"
    base = "baseline"
    config = { width = 64 }                # a variant (or a design's factor) sets configuration keys

The function is called once per (variant, seed), in a worker, as

    result = run(config, seed, budget, context)

- ``config``: a plain dict: the workload's ``config``, then each base variant's and the variant's own
  keys on top (a design's factors: the keys of every factor that is on); with ``[tuning]``, the key
  ``lr`` (``TUNED_KEY``) holds the grid value.
- ``seed``: the run's seed, shared by every variant (the pairing): seed your own generators with it.
- ``budget``: ``{"epochs", "batch_size", "train_subset", "validation"}`` from the spec and the command
  line (``validation`` images held out: report ``val_loss`` and ``val_accuracy`` each epoch then).
- ``context`` (``running.entry.EntryContext``): ``device``, ``precision`` ("fp32" or "bf16"; ``autocast()``),
  ``threads``, ``data_dir`` and ``dataset`` (where the workload's data is), ``classes``, ``test_labels``
  (the order test predictions must follow), ``split()`` (the suite's class-balanced training and
  validation indices), ``data()`` (the decoded uint8 tensors), ``load_checkpoint()`` and
  ``save_checkpoint(state)`` (plain data with an ``epoch``, tied to the run's settings; resume from it),
  ``checkpoint_dir`` (a directory of the run's own for other files; None where runs do not resume, on
  Ray) and ``report_epoch(row)`` (progress).

The result is a dict: ``history`` (one row per finished epoch, from epoch 1: ``epoch``, ``train_loss``,
``test_accuracy``, ``lr``, and optionally ``test_loss``, ``val_loss``, ``val_accuracy``,
``train_seconds``, ``eval_seconds`` and your own numbers), ``predictions`` and ``labels`` (the final
test predictions and the labels they were scored against, in ``context.test_labels``' order), and
optionally ``status`` ("ok" or "diverged"), ``stop_reason``, ``parameters`` and ``resumed_from_epoch``.
The study scores the predictions and writes an ordinary run record, so everything above the engine
(designs, paired seeds, resume, the local pool and Ray, reports, tuning, confirmation, the CI check)
reads it as any other run. The entry's name, its config and the sha256 of its module's source are
settings of every run (``RunSettings.entry``, ``config``, ``sources``): editing the code re-runs it.
"""

from __future__ import annotations

import importlib
import math
import re
from typing import Any, Callable

from ..errors import SpecError

ENTRY_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
TUNED_KEY = "lr"            # the configuration key a [tuning] grid sets in an entry-point study
MAX_CONFIG_DEPTH = 8


def check_entry(value: Any, what: str) -> str:
    """``value`` if it names a function as ``package.module:function``, else a one-line SpecError."""
    if not isinstance(value, str) or not ENTRY_RE.match(value):
        raise SpecError(f"{what} must name a function as \"module:function\" (e.g. \"train:run\", the module "
                        f"beside the spec or on PYTHONPATH), got {value!r}")
    return value


def entry_module(entry: str) -> str:
    return entry.partition(":")[0]


def load_entry(entry: str) -> Callable:
    """The function ``entry`` names, imported (the spec's folder must be on ``sys.path`` already: see
    ``plugins.load_plugins``); a one-line SpecError when the module or the function is not there."""
    module, _, name = entry.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise SpecError(f"entry {entry!r}: cannot import module {module!r} ({exc}); put it beside the spec or "
                        "on PYTHONPATH") from None
    except SystemExit as exc:
        raise SpecError(f"entry {entry!r}: module {module!r} called sys.exit({exc.code}) while being imported") from None
    except Exception as exc:  # a SyntaxError, a RuntimeError... in the user's module
        raise SpecError(f"entry {entry!r}: module {module!r} failed to import: {type(exc).__name__}: {exc}") from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == mod.__name__)
        raise SpecError(f"entry {entry!r}: module {module!r} has no function {name!r}; its functions: "
                        f"{', '.join(found) or '(none)'}")
    return fn


def check_config(value: Any, what: str, depth: int = 0) -> Any:
    """A configuration value as JSON keeps it (strings, finite numbers, booleans, lists, tables with
    string keys); anything else (a TOML date, a NaN) is refused: configurations enter settings keys."""
    if depth > MAX_CONFIG_DEPTH:
        raise SpecError(f"{what} nests deeper than {MAX_CONFIG_DEPTH} levels")
    if isinstance(value, dict):
        return {str(k): check_config(v, f"{what}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [check_config(v, f"{what}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{what} must be a finite number, got {value!r}")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise SpecError(f"{what} must be a string, number, boolean, list or table, got {type(value).__name__} {value!r}")


def parse_config(raw: dict, what: str) -> dict[str, Any]:
    """The ``config`` table of a workload, variant or factor (``{}`` when absent)."""
    value = raw.get("config", {})
    if not isinstance(value, dict):
        raise SpecError(f"{what} 'config' must be a table like config = {{ lr = 1e-3 }}, got {value!r}")
    return check_config(value, f"{what} config")


def merge_factor_config(factors: list[tuple[str, dict]], where: str) -> dict[str, Any]:
    """The configuration of the factors that are on ((name, config) in factor order): their keys united;
    two factors setting one key to different values cannot be combined in one variant."""
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, config in factors:
        for k, v in config.items():
            if k in merged and merged[k] != v:
                raise SpecError(f"{where}: factors '{owner[k]}' and '{name}' both set config key {k!r} "
                                f"({merged[k]!r} vs {v!r}); they cannot be combined in one variant")
            merged[k], owner[k] = v, name
    return merged


def default_lr(config: dict[str, Any], where: str) -> float:
    """The LR a ``[tuning]`` grid replaces in an entry-point variant: its config's ``lr``."""
    lr = config.get(TUNED_KEY)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise SpecError(f"{where}: [tuning] sets config key {TUNED_KEY!r} of an entry-point workload, so the "
                        f"configuration needs a positive {TUNED_KEY} (the default the grid is compared with), "
                        f"got {lr!r}")
    return float(lr)


def check_workload_code(spec, imported: bool, where: str) -> None:
    """What a spec's workloads need of code, checked when it loads (a one-line SpecError naming what):
    each model's sites are layers of it (``user_code.check_model_sites``); each entry point imports
    (when ``imported``: the spec's modules are being loaded); variants on an entry point set config
    keys, never tricks (and config keys only there); with ``[tuning]``, each has a config ``lr``."""
    from .models import MODELS
    from .user_code import check_model_sites

    entries = [w for w in spec.workloads if w.entry]
    try:
        for w in spec.workloads:
            if w.entry is None:
                check_model_sites(MODELS.get(w.model))
            elif imported:
                load_entry(w.entry)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    for v in spec.variants:
        vwhere = f"{where}: variant '{v.name}'"
        if v.tricks and entries:
            which = f"workload '{entries[0].name}'" if entries[0].name else "its workload"
            raise SpecError(f"{vwhere} has tricks, but {which} trains the entry point {entries[0].entry!r}, not the "
                            "suite's loop, so they would do nothing; give the variant config = { key = value } "
                            "instead (the keys your function reads)")
        if v.config and len(entries) < len(spec.workloads):
            raise SpecError(f"{vwhere} sets config keys, which only an entry-point workload (entry = ...) reads; "
                            "a model workload's variants list tricks")
        if spec.tuning is not None and entries:
            default_lr({**(entries[0].config or {}), **v.config}, vwhere)


def run_code(spec, workload) -> dict[str, Any]:
    """The settings of a workload's runs that name user code: ``entry``, ``sources`` (the sha256 of each
    module the spec imports and of the entry's module) and ``code_root`` (the spec's folder); none of
    them for a spec without imports or entry point, so those runs keep their settings keys."""
    from .user_code import module_sources, spec_root

    modules = list(spec.imports) + ([entry_module(workload.entry)] if workload.entry else [])
    sources = module_sources(modules)
    return {"entry": workload.entry, "sources": sources, "code_root": spec_root(spec.path) if modules else None}


def run_config(workload, variant, tuned_lr: float | None) -> dict[str, Any] | None:
    """The configuration an entry point is called with: the workload's keys, the variant's on top, and a
    tuning grid's value as ``lr``; None on a model workload."""
    if workload.entry is None:
        return None
    return {**(workload.config or {}), **variant.config, **({TUNED_KEY: tuned_lr} if tuned_lr is not None else {})}


def variant_default_lr(spec, variant) -> float:
    """The LR a ``[tuning]`` grid is compared with: an entry point's config ``lr``, else the tricks' peak."""
    from .tuning import peak_lr

    w = spec.workloads[0]
    return default_lr(run_config(w, variant, None), f"variant '{variant.name}'") if w.entry else peak_lr(variant.tricks)

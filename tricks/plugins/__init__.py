"""The built-in tricks. To add one: write a module here with a ``@register_trick`` class, and
add its module name to ``BUILTIN_MODULES`` below (that line is its registry entry).

Users can also register tricks from their own modules, without editing this package, by
listing the modules under ``imports`` in a spec file.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Iterable

from ..errors import SpecError
from ..specs import spec as _spec
from ..specs.spec import Spec
from ..training import datasets as _datasets  # noqa: F401 - registers the built-in datasets

BUILTIN_MODULES = (
    "normalize",      # normalize_inputs
    "exp_lr",         # exp_lr
    "weight_decay",   # weight_decay
    "kaiming_init",   # kaiming_init
    "dropout",        # dropout
    "cosine_lr",      # cosine_lr
    "warmup",         # warmup
    "reduce_on_plateau",  # reduce_on_plateau
    "early_stopping",     # early_stopping
    "label_smoothing",    # label_smoothing
    "augment",        # augment
    "no_shuffle",     # no_shuffle
    "step_lr",        # step_lr
    "multistep_lr",   # multistep_lr
    "cosine_restarts", # cosine_restarts
    "one_cycle",      # one_cycle
    "cyclic_lr",      # cyclic_lr
    "poly_lr",        # poly_lr
    "linear_lr",      # linear_lr
    "mse_loss",       # mse_loss
    "sgd",            # sgd
    "adamw",          # adamw
    "l1",             # l1
    "grad_clip",      # grad_clip
    "batch_norm",     # batch_norm
    "activation",     # activation
    "lecun_init",     # lecun_init
    "xavier_init",    # xavier_init
    "mixup",          # mixup          (augment_batch: soft targets)
    "cutmix",         # cutmix         (augment_batch: soft targets)
    "tta",            # tta            (predict: test-time augmentation)
    "ema",            # ema            (after_optimizer_step + evaluation_model)
    "swa",            # swa            (lr_schedule + after_optimizer_step + evaluation_model)
    "sam",            # sam            (compute_gradients: two passes)
)


def load_plugins(extra_modules: Iterable[str] = ()) -> None:
    """Import the built-in trick modules and any user modules (idempotent)."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    for mod in extra_modules:
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise SpecError(f"cannot import trick module {mod!r} listed under 'imports': {exc}. "
                            "Is it beside the spec, on PYTHONPATH or installed?") from None
        except SpecError as exc:   # refused while registering (a near-miss hook name, no hook: specs.user_code)
            raise SpecError(f"trick module {mod!r} listed under 'imports': {exc}") from None
        except SystemExit as exc:
            raise SpecError(f"trick module {mod!r} listed under 'imports' called sys.exit({exc.code}) "
                            "while being imported") from None
        except Exception as exc:  # a SyntaxError, a RuntimeError... in the user's module
            raise SpecError(f"trick module {mod!r} listed under 'imports' failed to import: "
                            f"{type(exc).__name__}: {exc}") from None


def load_spec(path: str | Path) -> Spec:
    """``specs.spec.load_spec`` with the built-in tricks and the spec's ``imports`` registered first."""
    load_plugins()
    return _spec.load_spec(path, load_imports=load_plugins)


def parse_spec(text: str, path: str | None = None) -> Spec:
    """``specs.spec.parse_spec`` with the built-in tricks and the spec's ``imports`` registered first."""
    load_plugins()
    return _spec.parse_spec(text, path, load_imports=load_plugins)

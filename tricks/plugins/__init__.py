"""The built-in tricks. To add one: write a module here with a ``@register_trick`` class, and
add its module name to ``BUILTIN_MODULES`` below (that line is its registry entry).

Users can also register tricks from their own modules, without editing this package, by
listing the modules under ``imports`` in a spec file.
"""

from __future__ import annotations

import importlib
from typing import Iterable

from ..errors import SpecError

BUILTIN_MODULES = (
    "normalize",      # normalize_inputs
    "exp_lr",         # exp_lr
    "weight_decay",   # weight_decay
    "kaiming_init",   # kaiming_init
    "dropout",        # dropout
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
                            "Is it on PYTHONPATH (or installed)?") from None

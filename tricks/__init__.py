"""backprop-tricks: an ablation benchmark of efficient-backprop tricks on a small CIFAR-10 CNN.

Kept free of heavy imports so that ``tricks figures`` runs without importing torch. What a trick
author needs is importable from here, loaded on first use::

    from tricks import Trick, Param, register_trick, Schedule, Warmup, Callback

and for notebooks, ``tricks.load_study(path)`` (stored results as pandas tables; no torch).
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Trick": "tricks.specs.base", "Param": "tricks.specs.params", "register_trick": "tricks.specs.registry",
    "TRICKS": "tricks.specs.registry", "Callback": "tricks.specs.callbacks", "EpochState": "tricks.specs.callbacks",
    "Schedule": "tricks.specs.types", "Warmup": "tricks.specs.types", "Budget": "tricks.specs.types",
    "Batch": "tricks.specs.types", "TrainSplit": "tricks.specs.types",
    "load_study": "tricks.analysis.api",   # stored results as pandas tables, for notebooks (no torch)
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tricks' has no attribute {name!r}; public names: {', '.join(__all__)}")
    import importlib

    return getattr(importlib.import_module(module), name)

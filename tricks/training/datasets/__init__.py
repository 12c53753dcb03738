"""The built-in datasets, one module each. To add one: write a module here with a ``@register_dataset``
class (the contract: ``specs.datasets``), and add its module name to ``BUILTIN_DATASETS`` below (that
line is its registry entry). A user's own dataset needs no edit here: its module goes under a spec's
``imports``, like a trick or a model.

Importing this package registers the built-ins and imports nothing heavy (torch and torchvision load
only when a dataset does), so the CLI's help can read the registry.
"""

from __future__ import annotations

import importlib

from ...specs.datasets import DATASETS, DEFAULT_DATASET

BUILTIN_DATASETS = (
    "cifar10",        # torchvision's CIFAR-10 archive
    "cifar100",       # torchvision's CIFAR-100 archive (fine labels)
    "imagefolder",    # ROOT/train/<class>/* and ROOT/test/<class>/*
)

for _mod in BUILTIN_DATASETS:
    importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["BUILTIN_DATASETS", "DATASETS", "DEFAULT_DATASET"]

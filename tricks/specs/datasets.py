"""The dataset contract: a registered source of images and labels (``--dataset``, a workload's ``dataset``).

A dataset is a class with a ``name`` (the ``data_kind`` of every run on it, in its settings), a
one-line ``description``, three lines ``tricks list datasets`` prints (``classes``, ``sizes``,
``checksum_source``: what vouches for the files) and two methods. The data layer
(``training.data.load_dataset``) calls them on one fresh instance per load, in this order:

- ``fingerprint(root) -> str``: a cheap summary of the files under the data directory ``root``
  (names, sizes, modification times). With the name and the resolved root it keys the decoded cache
  (``<name>-<key>.pt``), so a changed source is decoded again. It also makes sure the files are there
  (downloading or checking them, say) and raises ``DataError`` with the fix when they are not.
- ``decode(root, progress) -> Splits``: the images and labels, called on a cache miss only:
  ``train_x``/``test_x`` uint8 N x 3 x 32 x 32, ``train_y``/``test_y`` int64 class indices,
  ``classes`` (names, in label order) and ``skipped`` (files left out, relative to ``root``).
- ``loaded(root, skipped)``: after every load, from the cache or not; by default nothing
  (``imagefolder`` warns about its skipped files here).

The data layer checks what ``decode`` returns, caches it, and keys every run on the sha256 of the
decoded tensors and class names (``data_sha256`` in its settings), whatever the dataset.

Register a dataset with ``@register_dataset`` in any module a spec lists under ``imports`` (like a
trick or a model); ``DATASETS.get(name)`` fails with the valid names. The built-ins (``cifar10``,
``cifar100``, ``imagefolder``) are one module each in ``tricks/training/datasets/``. This module
imports nothing heavy: the CLI's help reads the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from .registry import Registry

DEFAULT_DATASET = "cifar10"   # --dataset's default
DESCRIBED = ("classes", "sizes", "checksum_source")   # what `tricks list datasets` prints of each


class Splits(NamedTuple):
    """What ``decode`` returns (tensors: see the module docstring)."""
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    classes: list[str]
    skipped: Any = ()                # file names, relative to root


class DatasetKind:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    classes: ClassVar[str] = ""           # e.g. "10: airplane, automobile, ..."
    sizes: ClassVar[str] = ""             # e.g. "50,000 train / 10,000 test images, 32x32 RGB"
    checksum_source: ClassVar[str] = ""   # what checks the files, e.g. "md5 of the archive (torchvision)"

    def fingerprint(self, root: Path) -> str:
        raise NotImplementedError

    def decode(self, root: Path, progress: bool) -> Splits:
        raise NotImplementedError

    def loaded(self, root: Path, skipped: list[str]) -> None:
        """Called after every load (decoded now or read from the cache)."""


DATASETS: Registry = Registry("dataset")


def register_dataset(cls: type[DatasetKind]) -> type[DatasetKind]:
    """Class decorator: register ``cls`` under ``cls.name`` (refused without the lines it is listed with)."""
    missing = [a for a in DESCRIBED if not isinstance(getattr(cls, a, None), str) or not getattr(cls, a)]
    if missing:
        raise ValueError(f"dataset {getattr(cls, 'name', cls.__qualname__)!r} needs the class attribute(s) "
                         f"{', '.join(missing)} (one line each, shown by 'tricks list datasets')")
    return DATASETS.register(cls)

"""Datasets in torchvision's CIFAR archive format: downloaded into the data directory and md5-checked,
or, offline, read from the archive a user put there (one line says which file, where).

``TorchvisionArchive`` is the base of the ``cifar10`` and ``cifar100`` datasets (``training.datasets``):
a subclass names its torchvision class. Decoded once into uint8 tensors and cached like every dataset
(``training.data``); the cache key is the extracted files' names, sizes and modification times.
Imports torch and torchvision only when a dataset loads (the CLI's help reads the registry).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..errors import DataError
from ..specs.datasets import DatasetKind, Splits
from .data_imagefolder import DATA_DIR_HINT

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


class TorchvisionArchive(DatasetKind):
    title: ClassVar[str] = ""      # for messages: "CIFAR-10"
    tv_class: ClassVar[str] = ""   # the torchvision.datasets class: "CIFAR10"

    def _cls(self):
        import torchvision.datasets as tvd

        return getattr(tvd, self.tv_class)

    def missing_message(self, root: Path, exc: Exception) -> str:
        cls = self._cls()
        return (f"{self.title} is not in {root} and the download failed ({type(exc).__name__}: {exc}). "
                f"Download {cls.filename} from {CIFAR_URL} and put it into {root}, or into another folder "
                f"and {DATA_DIR_HINT}; then run again. For a folder of images instead (such as a JPEG copy of "
                "CIFAR-10, laid out as PATH/train/<class>/*.jpg and PATH/test/<class>/*.jpg) use --dataset "
                "imagefolder --data-dir PATH (with make: DATASET=imagefolder DATA_DIR=PATH)")

    def fingerprint(self, root: Path) -> str:
        """Check (or download) the archive and its files, then their names, sizes and modification times."""
        from torchvision.datasets.utils import check_integrity

        cls = self._cls()
        archive = root / cls.filename
        if archive.exists() and not check_integrity(str(archive), cls.tgz_md5):
            raise DataError(f"{archive} fails its md5 checksum (expected {cls.tgz_md5}); "
                            f"delete it and download {cls.filename} again from {CIFAR_URL}")
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._sets = [cls(str(root), train=t, download=not _present(cls, root)) for t in (True, False)]
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
            raise DataError(f"{self.title} in {root} is corrupted ({exc}); delete {root / cls.base_folder} "
                            f"and put a fresh {cls.filename} into {root}") from None
        except Exception as exc:  # no network, proxy, disk...
            raise DataError(self.missing_message(root, exc)) from None
        base = root / cls.base_folder
        return ",".join(f"{n}:{(base / n).stat().st_size}:{(base / n).stat().st_mtime_ns}"
                        for n, _ in cls.train_list + cls.test_list)

    def decode(self, root: Path, progress: bool) -> Splits:
        import torch

        (train_x, train_y), (test_x, test_y) = [
            (torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets, dtype=torch.int64))
            for s in self._sets]
        return Splits(train_x, train_y, test_x, test_y, list(self._sets[0].classes), [])


def _present(cls, root: Path) -> bool:
    from torchvision.datasets.utils import check_integrity

    base = root / cls.base_folder
    return all(check_integrity(str(base / name), md5) for name, md5 in cls.train_list + cls.test_list)

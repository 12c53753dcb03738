"""CIFAR-10 and CIFAR-100 from torchvision's archives: downloaded into the data directory and
md5-checked, or, offline, read from the archive a user put there (one line says which file, where).

Both are decoded once into uint8 tensors and cached like every dataset (``training.data``); the
cache key is the extracted files' names, sizes and modification times. CIFAR-100 uses its 100 fine
labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError
from .data import CACHE_VERSION, DataSource, Dataset, _fields, _from_cache, _write_cache
from .data_imagefolder import DATA_DIR_HINT

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class Archive:
    title: str       # for messages
    cls_name: str    # the torchvision.datasets class


ARCHIVES = {"cifar10": Archive("CIFAR-10", "CIFAR10"), "cifar100": Archive("CIFAR-100", "CIFAR100")}


def _cls(kind: str):
    import torchvision.datasets as tvd

    return getattr(tvd, ARCHIVES[kind].cls_name)


def missing_message(kind: str, root: Path, exc: Exception) -> str:
    cls, title = _cls(kind), ARCHIVES[kind].title
    return (f"{title} is not in {root} and the download failed ({type(exc).__name__}: {exc}). "
            f"Download {cls.filename} from {CIFAR_URL} and put it into {root}, or into another folder "
            f"and {DATA_DIR_HINT}; then run again. For a folder of images instead (such as a JPEG copy of "
            "CIFAR-10, laid out as PATH/train/<class>/*.jpg and PATH/test/<class>/*.jpg) use --dataset "
            "imagefolder --data-dir PATH (with make: DATASET=imagefolder DATA_DIR=PATH)")


def _present(cls, root: Path) -> bool:
    from torchvision.datasets.utils import check_integrity

    base = root / cls.base_folder
    return all(check_integrity(str(base / name), md5) for name, md5 in cls.train_list + cls.test_list)


def _fingerprint(cls, root: Path) -> str:
    base = root / cls.base_folder
    return ",".join(f"{n}:{(base / n).stat().st_size}:{(base / n).stat().st_mtime_ns}"
                    for n, _ in cls.train_list + cls.test_list)


def load_archive(source: DataSource, root: Path, cache_dir: Path) -> Dataset:
    """``source.kind`` (cifar10 or cifar100) from ``root``: downloaded when absent, md5-checked."""
    from torchvision.datasets.utils import check_integrity

    cls, title = _cls(source.kind), ARCHIVES[source.kind].title
    archive = root / cls.filename
    if archive.exists() and not check_integrity(str(archive), cls.tgz_md5):
        raise DataError(f"{archive} fails its md5 checksum (expected {cls.tgz_md5}); "
                        f"delete it and download {cls.filename} again from {CIFAR_URL}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        sets = [cls(str(root), train=t, download=not _present(cls, root)) for t in (True, False)]
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
        raise DataError(f"{title} in {root} is corrupted ({exc}); delete {root / cls.base_folder} "
                        f"and put a fresh {cls.filename} into {root}") from None
    except Exception as exc:  # no network, proxy, disk...
        raise DataError(missing_message(source.kind, root, exc)) from None
    key = hashlib.sha256(f"{CACHE_VERSION}:{root.resolve()}:{_fingerprint(cls, root)}".encode()).hexdigest()[:20]
    cache = cache_dir / f"{source.kind}-{key}.pt"
    cached = _from_cache(cache, source)   # mapped: pages load on first touch, shared by processes
    if cached is not None:
        return cached
    (train_x, train_y), (test_x, test_y) = [
        (torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets, dtype=torch.int64))
        for s in sets]
    fields = _fields(train_x, train_y, test_x, test_y, list(sets[0].classes), [])
    return Dataset(**fields, source=source, cache_file=_write_cache(cache, fields))

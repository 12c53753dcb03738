"""Datasets as whole uint8 tensors: decode once, cache, hold each split in memory.

Every dataset is a registered ``specs.datasets.DatasetKind`` (``DATASETS``); the built-ins are one
module each in ``training.datasets``: ``cifar10`` and ``cifar100`` (torchvision's archives, downloaded
and md5-checked into the data directory, or put there by hand) and ``imagefolder``
(``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` images of any size, converted to 32x32 RGB).
A spec's ``imports`` can register more; ``tricks list datasets`` lists them.

``load_dataset`` asks the dataset for a fingerprint of its files (names, sizes, modification times),
reads the decoded tensors from ``TRICKS_CACHE_DIR`` (default ``~/.cache/backprop-tricks``) under a
key made from it (``<name>-<key>.pt``), and decodes only on a miss, so a changed source is decoded
again. Each dataset carries a sha256 of its decoded contents for provenance, and the image files it
skipped as unreadable (the cache keeps them too, so a cached load still reports them).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field, fields as dataclass_fields
from pathlib import Path

import torch

from ..errors import DataError
from ..specs.datasets import DATASETS, Splits
from . import datasets as _builtin  # noqa: F401 - registers cifar10, cifar100, imagefolder

CACHE_VERSION = 2  # bump when the cached format or decoding changes (2: the cache keeps "skipped")
SKIPPED_EXAMPLES = 10  # skipped files named by Dataset.describe()


@dataclass(frozen=True)
class DataSource:
    kind: str   # a registered dataset's name (DATASETS): the runs' data_kind
    root: str   # the data directory

    def __post_init__(self):
        if self.kind not in DATASETS:
            raise DataError(f"unknown dataset {self.kind!r}; valid: {', '.join(DATASETS.names())}")


@dataclass
class Dataset:
    train_x: torch.Tensor  # uint8, N x 3 x 32 x 32
    train_y: torch.Tensor  # int64, N
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: DataSource
    checksum: str          # sha256 of the decoded tensors and class names
    cache_file: str | None = None   # the cache file it was read from or written to (None: not cached)
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, relative to the root

    def describe(self) -> dict:
        return {"kind": self.source.kind, "root": str(Path(self.source.root).expanduser().resolve()),
                "train_images": int(self.train_y.numel()), "test_images": int(self.test_y.numel()),
                "classes": self.classes, "sha256": self.checksum,
                "skipped_images": {"count": len(self.skipped), "examples": list(self.skipped[:SKIPPED_EXAMPLES])}}


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRICKS_CACHE_DIR") or Path.home() / ".cache" / "backprop-tricks")


def content_checksum(train_x, train_y, test_x, test_y, classes) -> str:
    h = hashlib.sha256()
    for t in (train_x, train_y, test_x, test_y):
        h.update(t.contiguous().numpy().tobytes())
    h.update(json.dumps(classes).encode())
    return h.hexdigest()


def _fields(train_x, train_y, test_x, test_y, classes, skipped) -> dict:
    """What the cache holds: the Dataset's fields but its source and cache file."""
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes,
                checksum=content_checksum(train_x, train_y, test_x, test_y, classes), skipped=skipped)


# ---------------------------------------------------------------------------------------------
# cache

_CACHED = {f.name for f in dataclass_fields(Dataset)} - {"source", "cache_file"}


def _read_cache(path: Path, mmap: bool = False) -> dict | None:
    """The cached fields, or None when the file is missing, torn, or not of this format (an older
    cache without "skipped", say): such a file is simply rebuilt."""
    if not path.exists():
        return None
    try:
        cached = torch.load(path, weights_only=True, mmap=mmap)
    except Exception:
        return None
    return cached if isinstance(cached, dict) and set(cached) == _CACHED else None


def _from_cache(path: Path, source: DataSource, checksum: str | None = None) -> Dataset | None:
    cached = _read_cache(path, mmap=True)
    if cached is None or (checksum is not None and cached["checksum"] != checksum):
        return None
    return Dataset(**cached, source=source, cache_file=str(path))


def _write_cache(path: Path, fields: dict) -> str | None:
    """Write the cache atomically; its path, or None when it could not be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(fields, tmp)
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache only costs speed
        warnings.warn(f"could not write the dataset cache {path}: {exc}", stacklevel=2)
        return None
    return str(path)


def load_cached(source: DataSource, cache_file: str, checksum: str) -> Dataset | None:
    """The dataset in ``cache_file`` (as written by ``load_dataset``) if it holds ``checksum``, else None.

    For worker processes, given the file the study process loaded: the file is memory-mapped (its
    pages are shared through the page cache, copy-on-write), and the data folder is neither listed
    nor fingerprinted again (about 1 s for 60,000 files). Skipped images are not warned about again
    here: the study process did."""
    return _from_cache(Path(cache_file), source, checksum)


def load_dataset(source: DataSource, cache_dir: Path | None = None, progress: bool = True) -> Dataset:
    """``source``'s dataset: read from the cache, else decoded by its registered dataset and cached."""
    root = Path(source.root).expanduser()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    kind = DATASETS.get(source.kind)()
    key = hashlib.sha256(f"{CACHE_VERSION}:{root.resolve()}:{kind.fingerprint(root)}".encode()).hexdigest()[:20]
    cache = cache_dir / f"{source.kind}-{key}.pt"
    ds = _from_cache(cache, source)   # mapped: pages load on first touch, shared by processes
    if ds is None:
        fields = _fields(*_checked(kind.decode(root, progress), source.kind))
        ds = Dataset(**fields, source=source, cache_file=_write_cache(cache, fields))
    kind.loaded(root, ds.skipped)     # decoded now or earlier: e.g. skipped files, said on every load
    return ds


def _checked(out, name: str) -> tuple:
    """``decode``'s result as ``_fields``' arguments, refused (naming the dataset) when malformed."""
    try:
        s = out if isinstance(out, Splits) else Splits(*out)
    except TypeError:
        raise DataError(f"dataset {name!r}: decode must return Splits(train_x, train_y, test_x, test_y, "
                        f"classes, skipped), got {type(out).__name__}") from None
    k = len(s.classes) if isinstance(s.classes, (list, tuple)) else 0
    if k < 2 or not all(isinstance(c, str) for c in s.classes):
        raise DataError(f"dataset {name!r}: classes must be a list of at least two names, got {s.classes!r}")
    for split, x, y in (("train", s.train_x, s.train_y), ("test", s.test_x, s.test_y)):
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1:] == (3, 32, 32)):
            raise DataError(f"dataset {name!r}: {split}_x must be a uint8 tensor N x 3 x 32 x 32, got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        if not (isinstance(y, torch.Tensor) and y.dtype == torch.int64 and y.shape == (x.shape[0],)):
            raise DataError(f"dataset {name!r}: {split}_y must be an int64 tensor of {x.shape[0]} labels, got "
                            f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
        if y.numel() == 0 or int(y.min()) < 0 or int(y.max()) >= k:
            raise DataError(f"dataset {name!r}: {split}_y must hold class indices 0..{k - 1}"
                            + (", got none" if y.numel() == 0 else f", got {int(y.min())}..{int(y.max())}"))
    return s.train_x, s.train_y, s.test_x, s.test_y, list(s.classes), list(s.skipped)


# Fixed seeds of the two training-split draws: the same images for every variant and every run seed.
SUBSET_SEED = 0          # the --train-subset draw
VALIDATION_SEED = 1      # the --validation draw (carved out first; the subset comes from the rest)


def class_balanced_subset(labels: torch.Tensor, n: int, seed: int = 0, what: str = "--train-subset") -> torch.Tensor:
    """Sorted indices of ``n`` examples, as equal a number per class as possible, seeded."""
    classes = torch.unique(labels)
    k = len(classes)
    if n < k:
        raise DataError(f"{what} {n} is smaller than the number of classes ({k})")
    if n > labels.numel():
        raise DataError(f"{what} {n} is larger than the training split available to it ({labels.numel()} images)")
    g = torch.Generator().manual_seed(seed)
    per_class = [n // k + (1 if i < n % k else 0) for i in range(k)]
    pools = [torch.nonzero(labels == c).flatten() for c in classes]
    short = [(int(c), len(p), want) for c, p, want in zip(classes, pools, per_class) if len(p) < want]
    if short:
        raise DataError(f"{what} {n} needs {short[0][2]} images of class {short[0][0]}, "
                        f"which has only {short[0][1]}; choose a smaller number")
    picked = [p[torch.randperm(len(p), generator=g)[:want]] for p, want in zip(pools, per_class)]
    return torch.sort(torch.cat(picked)).values


def split_training(labels: torch.Tensor, validation: int = 0,
                   train_subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices trained on, validation indices) into the training split; disjoint, sorted.

    The validation split is a class-balanced draw of ``validation`` images with a fixed seed, made
    first; ``train_subset`` (if any) is a class-balanced draw from the images left. Neither depends
    on the variant or the run's seed. With ``validation == 0`` the subset is the one earlier
    versions drew, so stored results stay comparable.
    """
    everything = torch.arange(labels.numel())
    if validation:
        val = class_balanced_subset(labels, validation, VALIDATION_SEED, "--validation")
        rest = everything[~torch.isin(everything, val)]
    else:
        val, rest = everything[:0], everything
    if train_subset:
        return rest[class_balanced_subset(labels[rest], train_subset, SUBSET_SEED)], val
    return rest, val

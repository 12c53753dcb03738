"""Datasets as whole uint8 tensors: decode once, cache, hold each split in memory.

Two sources:
- ``cifar10``: torchvision's CIFAR10 (download + md5 check into the data directory);
- ``imagefolder``: ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` images of any size,
  converted to 32x32 RGB. Classes are the sorted folder names of ``train/``.

Decoded tensors are cached in ``TRICKS_CACHE_DIR`` (default ``~/.cache/backprop-tricks``) under a
key made from the source's file listing (names, sizes, modification times), so a changed source
is decoded again. Each dataset carries a sha256 of its decoded contents for provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SIZE = 32  # pixels, height and width the network expects
CACHE_VERSION = 1  # bump when the cached format or decoding changes
DATASETS = ("cifar10", "imagefolder")


@dataclass(frozen=True)
class DataSource:
    kind: str   # one of DATASETS
    root: str   # the data directory

    def __post_init__(self):
        if self.kind not in DATASETS:
            raise DataError(f"unknown dataset {self.kind!r}; valid: {', '.join(DATASETS)}")


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

    def describe(self) -> dict:
        return {"kind": self.source.kind, "root": str(Path(self.source.root).resolve()),
                "train_images": int(self.train_y.numel()), "test_images": int(self.test_y.numel()),
                "classes": self.classes, "sha256": self.checksum}


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRICKS_CACHE_DIR") or Path.home() / ".cache" / "backprop-tricks")


def content_checksum(train_x, train_y, test_x, test_y, classes) -> str:
    h = hashlib.sha256()
    for t in (train_x, train_y, test_x, test_y):
        h.update(t.contiguous().numpy().tobytes())
    h.update(json.dumps(classes).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# imagefolder

def _list_split(root: Path, split: str) -> dict[str, list[Path]]:
    d = root / split
    if not d.is_dir():
        raise DataError(f"{root} has no '{split}/' folder; an imagefolder dataset needs "
                        f"{root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg")
    classes = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{d} has no class folders; put each class's images in {d}/<class>/")
    if len(classes) < 2:
        raise DataError(f"{d} has one class folder ({classes[0]}); a classifier needs at least two classes")
    files = {}
    for c in classes:
        imgs = sorted(p for p in (d / c).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not imgs:
            raise DataError(f"class folder {d / c} has no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        files[c] = imgs
    return files


def _imagefolder_listing(root: Path) -> tuple[dict, dict]:
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist; pass --data-dir with train/ and test/ folders")
    train, test = _list_split(root, "train"), _list_split(root, "test")
    only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
    if only_train or only_test:
        parts = []
        if only_train:
            parts.append(f"missing from test/: {', '.join(only_train)}")
        if only_test:
            parts.append(f"present only in test/: {', '.join(only_test)}")
        raise DataError(f"{root}: train/ and test/ must have the same class folders ({'; '.join(parts)})")
    return train, test


def _fingerprint(files: dict[str, list[Path]]) -> str:
    h = hashlib.sha256()
    for c, paths in files.items():
        for p in paths:
            st = p.stat()
            h.update(f"{c}/{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (SIZE, SIZE):
                im = im.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except Exception:  # any unreadable or truncated file: reported by the caller, with its name
        return None


def _decode_split(files: dict[str, list[Path]], split: str, progress: bool):
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    paths = [p for c in files for p in files[c]]
    labels = [i for i, c in enumerate(files) for _ in files[c]]
    workers = max(1, min(os.cpu_count() or 1, 8))
    with ProcessPoolExecutor(workers) as pool:
        arrays = list(tqdm(pool.map(_decode, paths, chunksize=512), total=len(paths),
                           desc=f"decoding {split}", unit="img", disable=not progress, leave=False))
    bad = [p for p, a in zip(paths, arrays) if a is None]
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) in {split}/, e.g. {bad[0]}"
                      + (f", {bad[1]}" if len(bad) > 1 else ""), stacklevel=2)
    keep = [i for i, a in enumerate(arrays) if a is not None]
    if not keep:
        raise DataError(f"no readable images in {split}/ (first file: {paths[0]})")
    readable = {labels[i] for i in keep}
    empty = [c for i, c in enumerate(files) if i not in readable]
    if empty:
        raise DataError(f"class folder {split}/{empty[0]} has no readable image (all {len(files[empty[0]])} failed "
                        f"to decode, e.g. {files[empty[0]][0]}); fix or remove it")
    x = torch.from_numpy(np.stack([arrays[i] for i in keep]))
    y = torch.tensor([labels[i] for i in keep], dtype=torch.int64)
    return x, y


def _load_imagefolder(root: Path, cache_dir: Path, progress: bool) -> Dataset:
    train_files, test_files = _imagefolder_listing(root)
    key = hashlib.sha256(f"{CACHE_VERSION}:{root.resolve()}:{_fingerprint(train_files)}:"
                         f"{_fingerprint(test_files)}".encode()).hexdigest()[:20]
    cache = cache_dir / f"imagefolder-{key}.pt"
    source = DataSource("imagefolder", str(root))
    cached = _read_cache(cache, mmap=True)   # mapped: pages load on first touch, shared by processes
    if cached is not None:
        return Dataset(**cached, source=source, cache_file=str(cache))
    train_x, train_y = _decode_split(train_files, "train", progress)
    test_x, test_y = _decode_split(test_files, "test", progress)
    classes = list(train_files)
    fields = dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes,
                  checksum=content_checksum(train_x, train_y, test_x, test_y, classes))
    return Dataset(**fields, source=source, cache_file=_write_cache(cache, fields))


# ---------------------------------------------------------------------------------------------
# cifar10 (torchvision)

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _load_cifar10(root: Path, cache_dir: Path, progress: bool) -> Dataset:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    source = DataSource("cifar10", str(root))
    archive = root / CIFAR10.filename
    if archive.exists() and not check_integrity(str(archive), CIFAR10.tgz_md5):
        raise DataError(f"{archive} fails its md5 checksum (expected {CIFAR10.tgz_md5}); "
                        "delete it and download cifar-10-python.tar.gz again")
    try:
        root.mkdir(parents=True, exist_ok=True)
        sets = [CIFAR10(str(root), train=t, download=not _cifar_present(root)) for t in (True, False)]
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
        raise DataError(f"CIFAR-10 in {root} is corrupted ({exc}); delete {root / CIFAR10.base_folder} "
                        f"and put a fresh {CIFAR10.filename} into {root}") from None
    except Exception as exc:  # no network, proxy, disk...
        raise DataError(f"CIFAR-10 is not in {root} and the download failed ({type(exc).__name__}: {exc}). "
                        f"Download {CIFAR10.filename} from https://www.cs.toronto.edu/~kriz/cifar.html, put it "
                        f"into {root} (or pass --data-dir), and run again") from None
    key = hashlib.sha256(f"{CACHE_VERSION}:{root.resolve()}:{_cifar_fingerprint(root)}".encode()).hexdigest()[:20]
    cache = cache_dir / f"cifar10-{key}.pt"
    cached = _read_cache(cache, mmap=True)   # mapped: pages load on first touch, shared by processes
    if cached is not None:
        return Dataset(**cached, source=source, cache_file=str(cache))
    (train_x, train_y), (test_x, test_y) = [
        (torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets, dtype=torch.int64))
        for s in sets]
    classes = list(sets[0].classes)
    fields = dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes,
                  checksum=content_checksum(train_x, train_y, test_x, test_y, classes))
    return Dataset(**fields, source=source, cache_file=_write_cache(cache, fields))


def _cifar_present(root: Path) -> bool:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    base = root / CIFAR10.base_folder
    return all(check_integrity(str(base / name), md5) for name, md5 in CIFAR10.train_list + CIFAR10.test_list)


def _cifar_fingerprint(root: Path) -> str:
    from torchvision.datasets import CIFAR10

    base = root / CIFAR10.base_folder
    return ",".join(f"{n}:{(base / n).stat().st_size}:{(base / n).stat().st_mtime_ns}"
                    for n, _ in CIFAR10.train_list + CIFAR10.test_list)


# ---------------------------------------------------------------------------------------------
# cache

def _read_cache(path: Path, mmap: bool = False) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True, mmap=mmap)
    except Exception:  # a torn or stale cache file is simply rebuilt
        return None


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
    nor fingerprinted again (about 1 s for 60,000 files)."""
    cached = _read_cache(Path(cache_file), mmap=True)
    if cached is None or cached.get("checksum") != checksum:
        return None
    return Dataset(**cached, source=source, cache_file=cache_file)


def load_dataset(source: DataSource, cache_dir: Path | None = None, progress: bool = True) -> Dataset:
    root = Path(source.root).expanduser()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if source.kind == "imagefolder":
        return _load_imagefolder(root, cache_dir, progress)
    return _load_cifar10(root, cache_dir, progress)


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

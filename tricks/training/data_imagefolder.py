"""Image folders: ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` listed, fingerprinted and decoded
to 32x32 RGB uint8 tensors, for the ``imagefolder`` dataset (``training.datasets.imagefolder``) and any
user dataset laid out the same way. Caching and the ``Dataset`` they end up in live in ``training.data``.
numpy and torch are imported only to decode (the CLI's help reads the dataset registry).

Unreadable files are skipped, not fatal: ``decode_split`` returns their paths relative to the data
root (``train/cat/0001.jpg``), which the dataset records (``Dataset.skipped``) and its cache keeps.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:
    import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SIZE = 32  # pixels, height and width the network expects

# How to name a data folder, said by every missing-data message (the CLI prints it on one line); the
# data layer does not know whether the study or one of its workloads asked, so it names both ways.
DATA_DIR_HINT = ("pass --data-dir PATH (with make: DATA_DIR=PATH, e.g. make ablation DATA_DIR=PATH), or, for a "
                 "workload with a dataset of its own, set data_dir = \"PATH\" in its [[workloads]] table")
LAYOUT = "PATH/train/<class>/*.jpg and PATH/test/<class>/*.jpg"


def _no_folder_message(what: str) -> str:
    return (f"{what}; an imagefolder dataset (--dataset imagefolder, with make: DATASET=imagefolder) is a "
            f"folder with {LAYOUT}: {DATA_DIR_HINT}. For the CIFAR-10 archive (cifar-10-python.tar.gz) use "
            "--dataset cifar10 (DATASET=cifar10) instead")


def list_split(root: Path, split: str) -> dict[str, list[Path]]:
    """{class: sorted image paths} of ``root/split``; classes are the sorted folder names."""
    d = root / split
    if not d.is_dir():
        raise DataError(_no_folder_message(f"{root} has no '{split}/' folder"))
    classes = sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{d} has no class folders; put each class's images in {d}/<class>/ "
                        f"(an imagefolder dataset is a folder with {LAYOUT})")
    if len(classes) < 2:
        raise DataError(f"{d} has one class folder ({classes[0]}); a classifier needs at least two classes")
    files = {}
    for c in classes:
        imgs = sorted(p for p in (d / c).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not imgs:
            raise DataError(f"class folder {d / c} has no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        files[c] = imgs
    return files


def imagefolder_listing(root: Path) -> tuple[dict, dict]:
    """The train and test listings, checked to have the same classes."""
    if not root.is_dir():
        raise DataError(_no_folder_message(f"data directory {root} does not exist"))
    train, test = list_split(root, "train"), list_split(root, "test")
    only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
    if only_train or only_test:
        parts = []
        if only_train:
            parts.append(f"missing from test/: {', '.join(only_train)}")
        if only_test:
            parts.append(f"present only in test/: {', '.join(only_test)}")
        raise DataError(f"{root}: train/ and test/ must have the same class folders ({'; '.join(parts)})")
    return train, test


def fingerprint(files: dict[str, list[Path]]) -> str:
    """sha256 of the listing's names, sizes and modification times (part of the cache key)."""
    h = hashlib.sha256()
    for c, paths in files.items():
        for p in paths:
            st = p.stat()
            h.update(f"{c}/{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def decode(path: Path) -> np.ndarray | None:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (SIZE, SIZE):
                im = im.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except Exception:  # any unreadable or truncated file: reported by the caller, with its name
        return None


def warn_skipped(root: Path | str, skipped: list[str], stacklevel: int = 3) -> None:
    """One warning line naming how many images were skipped and the first few (relative paths)."""
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {root}: {', '.join(skipped[:3])}{more}",
                      stacklevel=stacklevel)


def decode_split(root: Path, files: dict[str, list[Path]], split: str, progress: bool):
    """(images N x 3 x 32 x 32 uint8, labels N int64, skipped paths relative to ``root``) of one split."""
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    paths = [p for c in files for p in files[c]]
    labels = [i for i, c in enumerate(files) for _ in files[c]]
    names = [f"{split}/{c}/{p.name}" for c in files for p in files[c]]
    workers = max(1, min(os.cpu_count() or 1, 8))
    with ProcessPoolExecutor(workers) as pool:
        arrays = list(tqdm(pool.map(decode, paths, chunksize=512), total=len(paths),
                           desc=f"decoding {split}", unit="img", disable=not progress, leave=False))
    skipped = [n for n, a in zip(names, arrays) if a is None]
    keep = [i for i, a in enumerate(arrays) if a is not None]
    readable = {labels[i] for i in keep}
    empty = [c for i, c in enumerate(files) if i not in readable]
    if empty:
        warn_skipped(root, skipped)
        if not keep:
            raise DataError(f"no readable images in {split}/ (first file: {paths[0]})")
        raise DataError(f"class folder {split}/{empty[0]} has no readable image (all {len(files[empty[0]])} failed "
                        f"to decode, e.g. {files[empty[0]][0]}); fix or remove it")
    x = torch.from_numpy(np.stack([arrays[i] for i in keep]))
    y = torch.tensor([labels[i] for i in keep], dtype=torch.int64)
    return x, y, skipped

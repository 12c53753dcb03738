"""A folder of images: ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` of any size, converted to
32x32 RGB (bilinear); classes are the sorted folder names of ``train/`` (``test/`` must have the same).
Unreadable files are skipped, named in a warning on every load and in the dataset's description."""

from __future__ import annotations

from pathlib import Path

from ...specs.datasets import DatasetKind, Splits, register_dataset
from ..data_imagefolder import IMAGE_EXTENSIONS, decode_split, fingerprint, imagefolder_listing, warn_skipped


@register_dataset
class ImageFolder(DatasetKind):
    name = "imagefolder"
    description = ("a folder of images laid out as PATH/train/<class>/* and PATH/test/<class>/* (such as "
                   "a JPEG copy of CIFAR-10), any size, resized to 32x32 RGB")
    classes = "the sorted folder names of train/ (test/ must have the same)"
    sizes = f"every readable image ({', '.join(sorted(IMAGE_EXTENSIONS))}); unreadable ones are skipped, with a warning"
    checksum_source = ("none: no published checksum to check the files against (the cache is keyed by their "
                       "names, sizes and modification times)")

    def fingerprint(self, root: Path) -> str:
        self._listing = imagefolder_listing(root)
        return ":".join(fingerprint(files) for files in self._listing)

    def decode(self, root: Path, progress: bool) -> Splits:
        train_files, test_files = self._listing
        train_x, train_y, train_bad = decode_split(root, train_files, "train", progress)
        test_x, test_y, test_bad = decode_split(root, test_files, "test", progress)
        return Splits(train_x, train_y, test_x, test_y, list(train_files), train_bad + test_bad)

    def loaded(self, root: Path, skipped: list[str]) -> None:
        warn_skipped(root, skipped, stacklevel=4)

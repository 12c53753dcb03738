"""Image-folder loading, validation, caching and subsets (synthetic images; no training)."""

import os
import time

import pytest
import torch

from tricks.training.data import DataSource, class_balanced_subset, load_dataset
from tricks.errors import DataError

from .conftest import make_image_folder


def test_image_folder_is_decoded_resized_and_labelled(image_folder, tmp_path):
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)
    assert ds.classes == ["blue", "green", "red"]
    assert ds.train_x.shape == (60, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (30, 3, 32, 32)
    assert ds.train_y.bincount().tolist() == [20, 20, 20]
    # class i has channel i boosted: the dominant channel of the mean image is the label
    means = ds.train_x.float().mean(dim=(2, 3))
    assert torch.equal(means.argmax(dim=1), ds.train_y)
    assert len(ds.checksum) == 64


def test_cache_is_reused_and_invalidated_when_a_file_changes(image_folder, tmp_path):
    cache = tmp_path / "c"
    src = DataSource("imagefolder", str(image_folder))
    a = load_dataset(src, cache_dir=cache, progress=False)
    files = list(cache.glob("imagefolder-*.pt"))
    assert len(files) == 1
    b = load_dataset(src, cache_dir=cache, progress=False)
    assert b.checksum == a.checksum and len(list(cache.glob("*.pt"))) == 1
    victim = image_folder / "train" / "red" / "0000.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (0, 0, 0)).save(victim)
    os.utime(victim, (time.time() + 10, time.time() + 10))
    c = load_dataset(src, cache_dir=cache, progress=False)
    assert c.checksum != a.checksum and len(list(cache.glob("*.pt"))) == 2


def test_missing_directory_and_split(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataSource("imagefolder", str(tmp_path / "nope")), progress=False)
    make_image_folder(tmp_path / "x")
    import shutil

    shutil.rmtree(tmp_path / "x" / "test")
    with pytest.raises(DataError, match="has no 'test/' folder"):
        load_dataset(DataSource("imagefolder", str(tmp_path / "x")), progress=False)


def test_class_mismatch_between_splits_names_the_classes(tmp_path):
    root = make_image_folder(tmp_path / "x")
    import shutil

    shutil.rmtree(root / "test" / "green")
    shutil.copytree(root / "train" / "red", root / "test" / "purple")
    with pytest.raises(DataError) as e:
        load_dataset(DataSource("imagefolder", str(root)), progress=False)
    assert "missing from test/: green" in str(e.value) and "present only in test/: purple" in str(e.value)


def test_empty_class_folder(tmp_path):
    root = make_image_folder(tmp_path / "x")
    for f in (root / "train" / "blue").iterdir():
        f.unlink()
    (root / "train" / "blue" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"train/blue has no images"):
        load_dataset(DataSource("imagefolder", str(root)), progress=False)


def test_unreadable_image_is_skipped_with_a_warning(tmp_path):
    root = make_image_folder(tmp_path / "x")
    (root / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) in train/, e.g. .*broken.jpg"):
        ds = load_dataset(DataSource("imagefolder", str(root)), cache_dir=tmp_path / "c", progress=False)
    assert ds.train_x.shape[0] == 60


def test_unknown_dataset_kind():
    with pytest.raises(DataError, match="valid: cifar10, imagefolder"):
        DataSource("mnist", ".")


def test_cifar10_without_files_or_network_says_where_to_put_the_archive(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar, "download_and_extract_archive", no_network)
    with pytest.raises(DataError) as e:
        load_dataset(DataSource("cifar10", str(tmp_path)), progress=False)
    msg = str(e.value)
    assert "download failed" in msg and "cifar-10-python.tar.gz" in msg and str(tmp_path) in msg


def test_cifar10_archive_with_a_bad_checksum(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="fails its md5 checksum"):
        load_dataset(DataSource("cifar10", str(tmp_path)), progress=False)


def test_class_balanced_subset_is_balanced_seeded_and_validated():
    labels = torch.arange(10).repeat_interleave(100)
    idx = class_balanced_subset(labels, 55, seed=0)
    counts = labels[idx].bincount(minlength=10).tolist()
    assert sum(counts) == 55 and counts == [6] * 5 + [5] * 5
    assert torch.equal(idx, class_balanced_subset(labels, 55, seed=0))
    assert not torch.equal(idx, class_balanced_subset(labels, 55, seed=1))
    with pytest.raises(DataError, match="smaller than the number of classes"):
        class_balanced_subset(labels, 9)
    with pytest.raises(DataError, match="larger than the training split"):
        class_balanced_subset(labels, 1001)

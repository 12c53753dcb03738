"""Image-folder loading, validation, caching and subsets (synthetic images; no training)."""

import os
import time

import pytest
import torch

from tricks.training.data import DataSource, class_balanced_subset, load_cached, load_dataset
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
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) in .*x: train/red/broken.jpg$"):
        ds = load_dataset(DataSource("imagefolder", str(root)), cache_dir=tmp_path / "c", progress=False)
    assert ds.train_x.shape[0] == 60


def _load_warned(root, cache):
    """(dataset, the UserWarning messages its loading gave)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(DataSource("imagefolder", str(root)), cache_dir=cache, progress=False)
    return ds, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_skipped_images_are_recorded_in_the_cache_and_reported_on_every_load(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "x")
    (root / "train" / "green" / "0003.png").write_bytes(b"garbage, not a png at all")
    first, warned_first = _load_warned(root, tmp_path / "c")
    expected = {"count": 1, "examples": ["train/green/0003.png"]}
    assert first.describe()["skipped_images"] == expected
    assert warned_first == [f"skipped 1 unreadable image(s) in {root}: train/green/0003.png"]
    assert first.train_x.shape == (59, 3, 32, 32) and first.train_y.bincount().tolist() == [20, 19, 20]

    from tricks.specs.datasets import DATASETS

    def no_decoding(*a, **k):
        raise AssertionError("a cached load decoded the images again")

    monkeypatch.setattr(DATASETS.get("imagefolder"), "decode", no_decoding)
    second, warned_second = _load_warned(root, tmp_path / "c")
    assert second.cache_file == first.cache_file and len(list((tmp_path / "c").glob("*.pt"))) == 1
    assert second.describe()["skipped_images"] == expected and second.skipped == ["train/green/0003.png"]
    assert warned_second == warned_first          # warned again, one line
    assert second.checksum == first.checksum
    # a worker process's load, from the file the study loaded: same record, no second warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        worker = load_cached(second.source, second.cache_file, second.checksum)
    assert worker.describe()["skipped_images"] == expected


def test_describe_says_no_images_were_skipped(image_folder, tmp_path):
    ds, warned = _load_warned(image_folder, tmp_path / "c")
    assert warned == []
    assert ds.describe()["skipped_images"] == {"count": 0, "examples": []}
    assert _load_warned(image_folder, tmp_path / "c")[0].describe()["skipped_images"] == {"count": 0, "examples": []}


def test_many_skipped_images_name_ten_examples_and_warn_with_three(tmp_path):
    root = make_image_folder(tmp_path / "x")
    for i in range(12):
        (root / "test" / "blue" / f"bad{i:02d}.png").write_bytes(b"\x89PNG truncated")
    ds, warned = _load_warned(root, tmp_path / "c")
    skipped = ds.describe()["skipped_images"]
    assert skipped == {"count": 12, "examples": [f"test/blue/bad{i:02d}.png" for i in range(10)]}
    assert warned == [f"skipped 12 unreadable image(s) in {root}: test/blue/bad00.png, test/blue/bad01.png, "
                      "test/blue/bad02.png and 9 more"]


def test_a_cache_file_without_the_skipped_list_is_rebuilt(tmp_path):
    root = make_image_folder(tmp_path / "x")
    (root / "train" / "red" / "0007.png").write_bytes(b"garbage")
    first, _ = _load_warned(root, tmp_path / "c")
    cache = first.cache_file
    old = torch.load(cache, weights_only=True)
    del old["skipped"]                     # the format before the cache kept skipped files
    torch.save(old, cache)
    assert load_cached(first.source, cache, first.checksum) is None
    again, warned = _load_warned(root, tmp_path / "c")
    assert again.cache_file == cache and again.checksum == first.checksum
    assert again.describe()["skipped_images"] == {"count": 1, "examples": ["train/red/0007.png"]}
    assert warned == [f"skipped 1 unreadable image(s) in {root}: train/red/0007.png"]
    assert torch.load(cache, weights_only=True)["skipped"] == ["train/red/0007.png"]


def test_unknown_dataset_kind():
    with pytest.raises(DataError, match="valid: cifar10, cifar100, imagefolder"):
        DataSource("mnist", ".")


@pytest.mark.parametrize("kind, title, archive", [("cifar10", "CIFAR-10", "cifar-10-python.tar.gz"),
                                                  ("cifar100", "CIFAR-100", "cifar-100-python.tar.gz")])
def test_cifar_without_files_or_network_says_where_to_put_the_archive(tmp_path, monkeypatch, kind, title, archive):
    import torchvision.datasets.cifar as cifar

    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar, "download_and_extract_archive", no_network)
    with pytest.raises(DataError) as e:
        load_dataset(DataSource(kind, str(tmp_path)), cache_dir=tmp_path / "c", progress=False)
    msg = str(e.value)
    assert msg.startswith(f"{title} is not in {tmp_path} and the download failed (OSError: network is unreachable)")
    assert f"put it into {tmp_path}" in msg and archive in msg
    assert "--data-dir PATH" in msg and "DATA_DIR=PATH" in msg
    assert 'for a workload with a dataset of its own, set data_dir = "PATH" in its [[workloads]] table' in msg
    assert "--dataset imagefolder" in msg and "DATASET=imagefolder" in msg and "JPEG copy of CIFAR-10" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("missing", ["root", "train", "test"])
def test_missing_image_folder_messages_say_how_to_name_the_data(tmp_path, missing):
    import shutil

    root = tmp_path / "x"
    if missing != "root":
        make_image_folder(root)
        shutil.rmtree(root / missing)
    with pytest.raises(DataError) as e:
        load_dataset(DataSource("imagefolder", str(root)), cache_dir=tmp_path / "c", progress=False)
    msg = str(e.value)
    assert (f"data directory {root} does not exist" if missing == "root" else f"has no '{missing}/' folder") in msg
    assert "--data-dir PATH" in msg and "DATA_DIR=PATH" in msg and "DATASET=imagefolder" in msg
    assert "PATH/train/<class>/*.jpg" in msg and "cifar-10-python.tar.gz" in msg and "--dataset cifar10" in msg
    assert "\n" not in msg


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

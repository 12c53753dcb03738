"""CIFAR-100 from torchvision's archive format: a small archive this test writes (never a download),
with the md5 constants pointed at it (the offline message: tests/test_data.py)."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
from tricks.training.data import DataSource, load_dataset


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_cifar100(root, n_train=30, n_test=20, classes=100):
    """``cifar-100-python.tar.gz`` with train/test/meta pickles as the real one lays them out."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", n_train), ("test", n_test)):
        files[split] = pickle.dumps({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                     "fine_labels": [i % classes for i in range(n)],
                                     "coarse_labels": [i % 20 for i in range(n)]})
    files["meta"] = pickle.dumps({"fine_label_names": [f"class{i:03d}" for i in range(classes)],
                                  "coarse_label_names": [f"super{i}" for i in range(20)]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "cifar-100-python.tar.gz").write_bytes(buf.getvalue())
    return {k: _md5(v) for k, v in files.items()}, _md5(buf.getvalue())


def test_cifar100_loads_from_a_local_archive_with_its_fine_labels(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR100

    md5, tgz = write_cifar100(tmp_path)
    monkeypatch.setattr(CIFAR100, "tgz_md5", tgz)
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": md5["meta"]})
    monkeypatch.setattr(CIFAR100, "url", "http://127.0.0.1:9/never-fetched")   # the archive is there already
    ds = load_dataset(DataSource("cifar100", str(tmp_path)), cache_dir=tmp_path / "c", progress=False)
    assert tuple(ds.train_x.shape) == (30, 3, 32, 32) and tuple(ds.test_x.shape) == (20, 3, 32, 32)
    assert ds.train_y.tolist() == list(range(30)) and len(ds.classes) == 100 and ds.classes[7] == "class007"
    assert ds.describe()["kind"] == "cifar100" and ds.cache_file.endswith(".pt") and "cifar100-" in ds.cache_file
    again = load_dataset(DataSource("cifar100", str(tmp_path)), cache_dir=tmp_path / "c", progress=False)
    assert again.checksum == ds.checksum
    # numbers must not move: the decoded checksum (data_sha256) and the cache file's key are as before the
    # dataset registry (the key: cache version, resolved root, the extracted files' names, sizes, mtimes)
    assert ds.checksum == "432d391a3c7f91b3131066ffc15ad24276085d9e5f6060697160e4d3eff0e586"
    base = tmp_path / "cifar-100-python"
    listing = ",".join(f"{n}:{(base / n).stat().st_size}:{(base / n).stat().st_mtime_ns}" for n in ("train", "test"))
    key = hashlib.sha256(f"2:{tmp_path.resolve()}:{listing}".encode()).hexdigest()[:20]
    assert again.cache_file == ds.cache_file == str(tmp_path / "c" / f"cifar100-{key}.pt")


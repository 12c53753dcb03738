"""The dataset registry: `tricks list datasets`, a user's dataset from a spec's imports (loaded and
trained on), unknown names refused with the valid ones, and the settings keys of stored runs kept
(the same checksums and cache files as before datasets were a registry)."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap

import pytest
import torch

from tricks.cli import main
from tricks.errors import DataError, SpecError
from tricks.plugins import parse_spec
from tricks.specs.datasets import DATASETS, DatasetKind, register_dataset
from tricks.training.data import CACHE_VERSION, DataSource, load_dataset

from .conftest import REPO

BUILTIN = ["cifar10", "cifar100", "imagefolder"]

STRIPES = textwrap.dedent('''
    from pathlib import Path

    import torch

    from tricks.errors import DataError
    from tricks.specs.datasets import DatasetKind, Splits, register_dataset


    @register_dataset
    class Stripes(DatasetKind):
        name = "stripes"
        description = "synthetic stripes: class k has its stripes on channel k"
        classes = "3: red, green, blue"
        sizes = "24 train / 12 test images, 32x32 RGB"
        checksum_source = "none: generated from the seed in ROOT/seed.txt"

        def fingerprint(self, root):
            f = Path(root) / "seed.txt"
            if not f.is_file():
                raise DataError(f"{f} is missing: write a seed into it")
            return f.read_text().strip()

        def decode(self, root, progress):
            g = torch.Generator().manual_seed(int(self.fingerprint(root)))

            def split(n):
                y = torch.arange(n) % 3
                x = torch.randint(0, 64, (n, 3, 32, 32), generator=g).to(torch.uint8)
                for i in range(n):
                    x[i, int(y[i]), ::2] += 150
                return x, y

            (train_x, train_y), (test_x, test_y) = split(24), split(12)
            return Splits(train_x, train_y, test_x, test_y, ["red", "green", "blue"])
''')

SPEC = textwrap.dedent('''
    name = "own_data"
    imports = ["my_data"]
    [training]
    epochs = 1
    batch_size = 16
    seeds = [0]
    [[variants]]
    name = "baseline"
    tricks = []
''')


@pytest.fixture
def user_dataset(tmp_path, monkeypatch):
    """The module ``my_data`` (registers ``stripes``) on the path, a data folder for it, and a spec
    importing it; the dataset is unregistered afterwards."""
    (tmp_path / "my_data.py").write_text(STRIPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_data", None)
    root = tmp_path / "stripes"
    root.mkdir()
    (root / "seed.txt").write_text("7\n")
    spec = tmp_path / "own_data.toml"
    spec.write_text(SPEC)
    yield root, spec
    sys.modules.pop("my_data", None)
    DATASETS.unregister("stripes")


def test_list_datasets_prints_each_with_classes_sizes_and_checksum_source(capsys):
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    names = [line.split(":")[0] for line in out.splitlines() if line and not line.startswith((" ", "Every"))]
    assert names == BUILTIN
    assert "    classes: 10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck\n" in out
    assert out.count("    sizes: 50,000 train / 10,000 test images, 32x32 RGB\n") == 2
    assert out.count("    checksum source: md5 of the archive") == 2
    assert "imagefolder: a folder of images" in out and "checksum source: none: no published checksum" in out
    assert out.count("    classes: ") == out.count("    sizes: ") == out.count("    checksum source: ") == 3


def test_the_cli_help_reads_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["ablation", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a registered dataset: cifar10, cifar100, imagefolder, or one the spec's imports register" in help_text
    # the registry the help reads imports nothing heavy: torch loads only when a dataset does
    import subprocess

    code = ("import sys; from tricks.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'torch or numpy was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


def test_a_users_dataset_registers_from_a_spec_import_and_loads(user_dataset, tmp_path, capsys):
    root, spec = user_dataset
    parsed = parse_spec(f'imports = ["my_data"]\n[[workloads]]\nname = "s"\ndataset = "stripes"\n'
                        f'data_dir = "{root}"\n[[variants]]\nname = "b"\ntricks = []\n')
    assert parsed.workloads[0].dataset == "stripes"
    ds = load_dataset(DataSource("stripes", str(root)), cache_dir=tmp_path / "c", progress=False)
    assert ds.classes == ["red", "green", "blue"] and tuple(ds.train_x.shape) == (24, 3, 32, 32)
    assert ds.describe()["kind"] == "stripes" and ds.cache_file.endswith(".pt") and "stripes-" in ds.cache_file
    again = load_dataset(DataSource("stripes", str(root)), cache_dir=tmp_path / "c", progress=False)
    assert again.checksum == ds.checksum and again.cache_file == ds.cache_file
    with pytest.raises(DataError, match="seed.txt is missing"):
        load_dataset(DataSource("stripes", str(tmp_path)), cache_dir=tmp_path / "c", progress=False)
    assert main(["list", "datasets", "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "stripes (from my_data): synthetic stripes" in out and "    sizes: 24 train / 12 test images" in out


def test_a_tiny_study_trains_on_a_users_dataset(user_dataset, tmp_path):
    root, spec = user_dataset
    out = tmp_path / "res"
    assert main(["ablation", "--spec", str(spec), "--dataset", "stripes", "--data-dir", str(root), "--out", str(out),
                 "--no-progress", "--no-report", "--precision", "fp32", "--workers", "1", "--device", "cpu"]) == 0
    record = json.loads((out / "runs" / "baseline__seed0.json").read_text())
    assert record["status"] == "ok" and record["settings"]["data_kind"] == "stripes"
    assert record["classes"] == ["red", "green", "blue"] and record["dataset"]["train_images"] == 24
    assert sum(map(sum, record["metrics"]["confusion_matrix"])) == 12
    assert json.loads((out / "study.json").read_text())["dataset"]["kind"] == "stripes"


def test_without_its_import_a_users_dataset_is_unknown():
    with pytest.raises(SpecError, match=r"'dataset': unknown dataset 'stripes'; valid: cifar10, cifar100, imagefolder$"):
        parse_spec('[[workloads]]\nname = "s"\ndataset = "stripes"\n[[variants]]\nname = "b"\ntricks = []\n')


@pytest.mark.parametrize("where", ["flag", "workload"])
def test_an_unknown_dataset_is_refused_in_one_line_listing_the_valid_names(where, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    workload = '[[workloads]]\nname = "w"\ndataset = "mnist"\n' if where == "workload" else ""
    spec.write_text(f'name = "s"\n{workload}[[variants]]\nname = "b"\ntricks = []\n')
    argv = ["ablation", "--spec", str(spec), "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"]
    assert main(argv + (["--dataset", "mnist"] if where == "flag" else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tricks: error: ")
    assert "unknown dataset 'mnist'; valid: cifar10, cifar100, imagefolder" in err
    assert not (tmp_path / "out").exists()


def test_a_workloads_missing_cifar100_names_the_workload_and_its_data_dir(image_folder, tmp_path, monkeypatch,
                                                                        capsys):
    import torchvision.datasets.cifar as cifar

    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar, "download_and_extract_archive", no_network)
    spec, c100 = tmp_path / "s.toml", tmp_path / "c100"
    spec.write_text(f'name = "s"\n[training]\nepochs = 1\nbatch_size = 16\nseeds = [0]\n[[workloads]]\nname = "c100"\n'
                    f'dataset = "cifar100"\ndata_dir = "{c100}"\n[[variants]]\nname = "b"\ntricks = []\n')
    assert main(["ablation", "--spec", str(spec), "--dataset", "imagefolder", "--data-dir", str(image_folder),
                 "--out", str(tmp_path / "out"), "--no-progress", "--workers", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"workload c100 (dataset cifar100 in {c100}" in err
    assert "CIFAR-100 is not in" in err and "cifar-100-python.tar.gz" in err
    assert 'set data_dir = "PATH" in its [[workloads]] table' in err


def test_registration_is_refused_without_its_description_lines_or_twice():
    class NoSizes(DatasetKind):
        name = "no_sizes"
        description = "lacks its sizes"
        classes = "2"
        checksum_source = "none"

    with pytest.raises(ValueError, match="'no_sizes' needs the class attribute\\(s\\) sizes"):
        register_dataset(NoSizes)

    class Again(DatasetKind):
        name = "cifar10"
        description, classes, sizes, checksum_source = "a second cifar10", "10", "some", "none"

    with pytest.raises(ValueError, match="dataset 'cifar10' is already registered by"):
        register_dataset(Again)
    assert "no_sizes" not in DATASETS and DATASETS.get("cifar10").__module__ == "tricks.training.datasets.cifar10"


def test_a_malformed_decode_is_refused_naming_the_dataset(tmp_path):
    @register_dataset
    class Floats(DatasetKind):
        name = "floats"
        description, classes, sizes, checksum_source = "float images", "2", "4 / 2", "none"

        def fingerprint(self, root):
            return "x"

        def decode(self, root, progress):
            y = torch.tensor([0, 1, 0, 1])
            return (torch.zeros(4, 3, 32, 32), y, torch.zeros(2, 3, 32, 32, dtype=torch.uint8), y[:2], ["a", "b"])

    try:
        with pytest.raises(DataError, match=r"dataset 'floats': train_x must be a uint8 tensor N x 3 x 32 x 32, "
                                            r"got torch.float32 \(4, 3, 32, 32\)"):
            load_dataset(DataSource("floats", str(tmp_path)), cache_dir=tmp_path / "c", progress=False)
    finally:
        DATASETS.unregister("floats")


def test_imagefolder_cache_files_keep_their_names(image_folder, tmp_path):
    """The cache key is what it was before datasets were a registry: stored caches are found again."""
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)

    def fingerprint(split):
        h = hashlib.sha256()
        for c in sorted(p.name for p in (image_folder / split).iterdir()):
            for p in sorted((image_folder / split / c).iterdir()):
                h.update(f"{c}/{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}\n".encode())
        return h.hexdigest()

    key = hashlib.sha256(f"{CACHE_VERSION}:{image_folder.resolve()}:{fingerprint('train')}:"
                         f"{fingerprint('test')}".encode()).hexdigest()[:20]
    assert CACHE_VERSION == 2 and ds.cache_file == str(tmp_path / "c" / f"imagefolder-{key}.pt")


def test_the_committed_studys_dataset_checksum_is_unchanged(real_images):
    """The decoded CIFAR-10 JPEGs hash as they did for the committed study (its runs' data_sha256)."""
    study = json.loads((REPO / "results" / "backprop_tricks" / "study.json").read_text())
    ds = load_dataset(DataSource("imagefolder", str(real_images)), progress=False)
    assert ds.checksum == study["dataset"]["sha256"] and ds.classes == study["dataset"]["classes"]

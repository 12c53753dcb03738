"""Shared fixtures: a tiny synthetic image folder (always), the real CIFAR-10 JPEGs (when CI sets
CIFAR10_JPEG_DIR), and fake run records for the statistics/report tests (no training)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

REAL_DATA_ENV = "CIFAR10_JPEG_DIR"
# Tests train on the CPU unless they test devices: besides each test's own `--device cpu`, CUDA is
# hidden from the session and the processes it starts (so `--device auto` and the defaults mean the
# CPU on a GPU machine too), unless TRICKS_TEST_CUDA=1 (benchmarks/gpu_check.sh sets it for the tests
# marked `cuda`, which skip with a reason otherwise). Set before anything initializes CUDA.
CUDA_ENV = "TRICKS_TEST_CUDA"
if os.environ.get(CUDA_ENV) != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def cuda_or_skip():
    """The CUDA device for a test that needs one, or a skip that says why there is none."""
    import torch

    if os.environ.get(CUDA_ENV) != "1":
        pytest.skip(f"CUDA is hidden from the test session: set {CUDA_ENV}=1 on a GPU machine "
                    "(benchmarks/gpu_check.sh does)")
    if not torch.cuda.is_available():
        pytest.skip(f"{CUDA_ENV}=1 but torch sees no CUDA device")
    return torch.device("cuda")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Dataset caches go to a per-session temp dir unless the caller chose one."""
    if not os.environ.get("TRICKS_CACHE_DIR"):
        os.environ["TRICKS_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield


def make_image_folder(root: Path, classes=("blue", "green", "red"), n_train=20, n_test=10, size=40) -> Path:
    """Images whose class is their dominant colour channel (learnable in a few steps), size x size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for ci, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
                img[..., ci % 3] += 150
                Image.fromarray(img).save(d / f"{i:04d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "imgs")


@pytest.fixture(scope="session")
def real_images() -> Path:
    d = os.environ.get(REAL_DATA_ENV)
    if not d or not (Path(d) / "train").is_dir():
        pytest.skip(f"real CIFAR-10 JPEGs not available: set {REAL_DATA_ENV} to the unpacked "
                    "cifar10-jpeg folder (CI does this from ../shared/data)")
    return Path(d)


REPO = Path(__file__).resolve().parent.parent
STUDY_SPEC = REPO / "benchmarks" / "backprop_tricks.toml"


CLASSES3 = ["cat", "dog", "frog"]


def plugin_spec(tmp_path: Path, name: str, module: str, variants: str, epochs: int = 1,
                seeds: tuple[int, ...] = (0, 1)) -> Path:
    """A small spec file ``<name>.toml`` that imports the plugin ``module`` (batch 16), with the
    ``[[variants]]`` given as TOML text."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nimports = ["{module}"]\n[training]\nepochs = {epochs}\nbatch_size = 16\n'
                    f'seeds = {list(seeds)}\n' + textwrap.dedent(variants))
    return path


def fake_record(variant: str, seed: int, acc: float, key: str, status: str = "ok", epochs: int = 3,
                per_class_test: int = 100) -> dict:
    """A complete run record whose confusion matrix has accuracy ``acc`` (multiple of 1/per_class_test)."""
    from tricks.training.metrics import score

    right = round(acc * per_class_test)
    y_true, y_pred = [], []
    for c in range(3):
        y_true += [c] * per_class_test
        y_pred += [c] * right + [(c + 1) % 3] * (per_class_test - right)
    history = [{"epoch": e, "train_loss": 2.0 / e, "test_loss": 2.0 / e, "test_accuracy": acc * e / epochs,
                "lr": 1e-3 * 0.8 ** (e - 1), "train_seconds": 1.0, "eval_seconds": 0.1} for e in range(1, epochs + 1)]
    from tricks.running.records import SCHEMA

    return {"schema": SCHEMA, "variant": variant, "seed": seed, "settings": {}, "settings_key": key,
            "status": status, "stop_reason": "" if status == "ok" else "training loss became nan in epoch 2",
            "history": history, "epochs_run": epochs, "train_seconds": 3.0, "eval_seconds": 0.3,
            "metrics": score(y_true, y_pred, CLASSES3), "classes": CLASSES3, "wall_seconds": 3.5,
            "dataset": {}, "provenance": {"device": "cpu", "cpu": "test", "git": {"revision": "abc", "dirty": False},
                                          "packages": {"torch": "x"}},
            "finished_at": "2026-01-01T00:00:00+0000"}


def write_fake_study(out: Path, accs: dict, variants: list[tuple[str, str | None]], seeds: list[int],
                     diverged: tuple = ()) -> Path:
    """A results directory as 'tricks ablation' writes it; ``accs[(variant, seed)]`` absent = missing run."""
    from tricks.running.records import run_path, write_json

    runs = [{"variant": v, "seed": s, "settings_key": f"k-{v}-{s}"} for v, _ in variants for s in seeds]
    write_json(out / "study.json", {
        "spec": {"name": "fake", "description": "a fake study", "path": "fake.toml",
                 "variants": [{"name": v, "base": b, "description": "", "tricks": []} for v, b in variants]},
        "seeds": seeds, "epochs": 3, "batch_size": 64, "train_subset": None, "precision": "fp32",
        "dataset": {"kind": "imagefolder", "root": "/x", "train_images": 300, "test_images": 300,
                    "classes": CLASSES3, "sha256": "0" * 64},
        "device": "cpu", "workers": 2, "runs": runs})
    for (v, s), acc in accs.items():
        status = "diverged" if (v, s) in diverged else "ok"
        write_json(run_path(out, f"{v}__seed{s}"), fake_record(v, s, acc, f"k-{v}-{s}", status))
    return out


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """``plugin_module(name, source)`` writes a trick module that specs can list under ``imports``,
    importable here and in spawned workers; its tricks are unregistered afterwards, even on failure."""
    import sys

    from tricks.plugins import load_plugins
    from tricks.specs.registry import TRICKS

    load_plugins()   # the built-ins first, so that teardown unregisters only what the test added
    before = set(TRICKS.names())
    written = []

    def write(name: str, source: str) -> Path:
        sys.modules.pop(name, None)   # each test imports its own copy and registers it afresh
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        written.append(name)
        return path

    yield write
    for name in written:
        sys.modules.pop(name, None)
    for name in set(TRICKS.names()) - before:
        TRICKS.unregister(name)

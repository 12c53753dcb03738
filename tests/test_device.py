"""The CUDA path, checked on the CPU where it can be: the device kind in the settings key (CPU keys of
every stored run unchanged), checkpoints of another device kind ignored, IEEE fp32 and deterministic
cuDNN for CUDA runs (flags set and restored), a worker that hits a CUDA error exits and is replaced,
several runs per GPU by default, and Ray never overriding an explicit --device cpu. The tests marked
``cuda`` need a GPU and skip with the reason elsewhere (benchmarks/gpu_check.sh runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tricks.cli import main
from tricks.errors import TricksError
from tricks.plugins import load_plugins, load_spec
from tricks.running import worker
from tricks.running.device import RUNS_PER_GPU, default_workers
from tricks.running.runner import RunContext, run_one
from tricks.running.settings import RunSettings
from tricks.running.study import StudyOptions, on_device, run_study
from tricks.training import cuda
from tricks.training.checkpoint import Checkpoints
from tricks.training.data import DataSource, load_dataset
from tricks.training.engine import train_run
from tricks.training.recipe import build_recipe

from .conftest import REPO, STUDY_SPEC, cuda_or_skip, plugin_spec

load_plugins()
BASE = dict(spec="s", variant="v", tricks=(), imports=(), seed=0, epochs=1, batch_size=64, train_subset=None,
            precision="fp32", data_kind="imagefolder", data_sha256="0" * 64)
CUDA_ERROR = "CUDA error: an illegal memory access was encountered"


def test_every_stored_run_keeps_its_settings_key():
    """Adding the device to the settings changed no CPU key: each committed record's settings hash to
    the key it was stored under, and its settings read back exactly as stored (no device field)."""
    paths = sorted(REPO.glob("results/*/runs/*.json"))
    assert len(paths) > 300
    for path in paths:
        rec = json.loads(path.read_text())
        s = RunSettings.from_dict(rec["settings"])
        assert s.device == "cpu" and s.key() == rec["settings_key"], path
        assert "device" not in s.to_dict()


def test_the_device_kind_enters_the_key_only_when_it_is_not_the_cpu():
    cpu, gpu = RunSettings(**BASE), RunSettings(**BASE, device="cuda")
    assert cpu.key() == RunSettings(**BASE, device="cpu").key() != gpu.key()
    assert gpu.to_dict()["device"] == "cuda" and RunSettings.from_dict(gpu.to_dict()) == gpu
    runs = [cpu, RunSettings(**{**BASE, "seed": 1})]
    assert on_device(runs, torch.device("cpu")) is runs                       # CPU: the plan as it was
    assert [r.device for r in on_device(runs, torch.device("cuda"))] == ["cuda", "cuda"]


def test_a_checkpoint_of_another_device_kind_is_ignored_with_a_reason(tmp_path):
    s = RunSettings(**BASE)
    path = tmp_path / "v__seed0.pt"
    Checkpoints(path, s.key()).save({"epoch": 1})                       # written by a CPU run
    assert Checkpoints(path, s.key()).load()[0]["device"] == "cpu"
    assert Checkpoints(path, s.key(), "cuda").load() == (None, "was written by a run on cpu, this run trains on cuda")
    state = torch.load(path, weights_only=True)
    del state["device"]                                                  # written before the device was recorded
    torch.save(state, path)
    assert Checkpoints(path, s.key()).load()[0]["epoch"] == 1            # a CPU checkpoint, still resumed on CPU
    assert Checkpoints(path, s.key(), "cuda").load()[1] == "was written by a run on cpu, this run trains on cuda"


def test_strict_math_sets_ieee_fp32_and_deterministic_cudnn_then_restores():
    """The flags are process-wide: set for a CUDA run, restored afterwards; nothing for a CPU run.
    (They can be set without a GPU: this checks what a CUDA run would get.)"""
    before = cuda._read()
    with cuda.strict_math(torch.device("cpu")) as said:
        assert said is None and cuda._read() == before
    with cuda.strict_math(torch.device("cuda")) as said:
        assert said == {"fp32": "ieee (TF32 off)", "cudnn_deterministic": True, "cudnn_benchmark": False}
        now = cuda._read()
        assert now["cudnn_deterministic"] is True and now["cudnn_benchmark"] is False
        if "fp32_precision" in now:
            assert set(now["fp32_precision"].values()) == {"ieee"}
        else:
            assert now["allow_tf32"] == {"cudnn": False, "matmul": False}
    assert cuda._read() == before
    with pytest.raises(ValueError), cuda.strict_math(torch.device("cuda")):
        raise ValueError("a failed run")
    assert cuda._read() == before                                        # restored on the way out of a failure


@pytest.mark.parametrize("exc, broken", [
    (RuntimeError(CUDA_ERROR), True),
    (RuntimeError("CUDA error: device-side assert triggered\nCUDA kernel errors might be ..."), True),
    (RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x10 and 9x10)"), False),
    (ValueError("CUDA error in a message, but not a RuntimeError"), False),
])
def test_what_counts_as_a_cuda_error(exc, broken):
    assert cuda.is_cuda_error(exc) is broken


class FakeQueue:
    def __init__(self):
        self.items, self.flushed = [], False

    def put(self, item):
        self.items.append(item)

    def close(self):
        pass

    def join_thread(self):
        self.flushed = True


def test_a_worker_that_hits_a_cuda_error_reports_it_and_exits(monkeypatch):
    """Simulated: run_one raises what a CUDA failure raises; the worker sends the reason, flushes its
    queue and ends the process (status 70) instead of taking the next run; other errors propagate."""
    events = FakeQueue()
    monkeypatch.setattr(worker, "_worker_events", events)
    monkeypatch.setattr(worker, "_worker_study", None)

    def exit_(code):
        raise SystemExit(code)
    monkeypatch.setattr(worker.os, "_exit", exit_)
    job = RunSettings(**BASE)

    def fail(error):
        def run(*args):
            raise error
        return run
    monkeypatch.setattr(worker, "run_job", fail(RuntimeError(CUDA_ERROR)))
    with pytest.raises(SystemExit) as ended:
        worker.worker_run(job)
    assert ended.value.code == worker.EXIT_CUDA_ERROR == 70 and events.flushed
    (_, stem, kind, payload), = events.items
    assert stem == "v__seed0" and kind == "notice" and payload["cuda_error"] == CUDA_ERROR
    assert "its worker exits and is replaced" in payload["message"]
    monkeypatch.setattr(worker, "run_job", fail(RuntimeError("an ordinary bug")))
    with pytest.raises(RuntimeError, match="an ordinary bug"):
        worker.worker_run(job)


CUDA_FAIL = '''
from tricks.specs.base import Trick
from tricks.specs.registry import register_trick


@register_trick
class CudaFail(Trick):
    name = "cuda_fail"
    description = "Raises what a CUDA illegal memory access raises (a test plugin)."

    def modify_model(self, model):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
'''


def test_a_pool_replaces_a_worker_after_a_cuda_error_and_names_it(image_folder, tmp_path, plugin_module):
    plugin_module("cuda_fail_mod", CUDA_FAIL)
    spec = plugin_spec(tmp_path, "cudafail", "cuda_fail_mod", '''
        [[variants]]
        name = "baseline"
        [[variants]]
        name = "broken"
        tricks = [{ name = "cuda_fail" }]
    ''', seeds=(0,))
    opts = StudyOptions(spec=load_spec(spec), source=DataSource("imagefolder", str(image_folder)),
                        out_dir=tmp_path / "res", workers=2, progress=False, device="cpu")
    outcome = run_study(opts, on_notice=lambda m: None)
    assert outcome.finished == ["baseline__seed0"]
    reason = outcome.failed["broken__seed0"]
    assert reason.startswith("its worker process died") and "after a CUDA error: an illegal memory access" in reason
    assert (tmp_path / "res" / "runs" / "baseline__seed0.json").exists()


def test_cuda_runs_several_per_gpu_by_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    gpu = torch.device("cuda")
    assert RUNS_PER_GPU == 4
    assert default_workers(gpu, pending=100) == 8 and default_workers(gpu, pending=3) == 3
    assert default_workers(torch.device("cpu"), pending=100, threads=1) >= 1


def test_a_run_planned_for_cuda_never_trains_on_a_cpu_worker(image_folder):
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), progress=False)
    s = RunSettings(**{**BASE, "data_sha256": ds.checksum, "device": "cuda"})
    with pytest.raises(TricksError, match="planned for cuda but handed to a cpu worker"):
        run_one(s, RunContext(DataSource("imagefolder", str(image_folder)), "cpu", ds))


def test_ray_never_overrides_an_explicit_cpu(image_folder, tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'backprop-tricks[ray]'")
    rc = main(["ablation", "--executor", "ray", "--device", "cpu", "--ray-gpus-per-run", "1", "--spec",
               str(STUDY_SPEC), "--dataset", "imagefolder", "--data-dir", str(image_folder),
               "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "--ray-gpus-per-run 1 asks for GPUs, but --device cpu trains on the CPU" in err
    assert not (tmp_path / "o").exists()


def test_ray_resolves_the_device_where_runs_execute():
    """On this GPU-less machine a local Ray's probe task finds no GPU: auto is the CPU, cuda is refused."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'backprop-tricks[ray]'")
    from tricks.running.ray_executor import RayExecutor

    ex = RayExecutor(DataSource("imagefolder", "/nowhere"), "auto")
    try:
        kind, native = ex.resolve("auto")
        assert kind == "cpu" and isinstance(native, bool) and ex._gpus == 0.0
        with pytest.raises(TricksError, match="has no GPUs"):
            ex.resolve("cuda")
    finally:
        ex.close()


# -- on a GPU (skipped with the reason elsewhere) --------------------------------------------------

def _short(ds, tricks, device, epochs=2):
    s = RunSettings("t", "v", tuple(tricks), (), 0, epochs, 8, None, "fp32", "imagefolder", ds.checksum,
                    device=device.type)
    return s, train_run(build_recipe(s.variant, s.tricks), s, ds, device)


@pytest.mark.cuda
def test_cuda_fp32_is_ieee_not_tf32():
    device = cuda_or_skip()
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(64, 64, 16, 16, generator=g), torch.randn(64, 64, 3, 3, generator=g)
    exact = torch.nn.functional.conv2d(x.double(), w.double())
    with cuda.strict_math(device):
        got = torch.nn.functional.conv2d(x.to(device), w.to(device)).cpu().double()
    rel = float((got - exact).abs().max() / exact.abs().max())
    assert rel < 1e-5, f"fp32 conv on CUDA differs from float64 by {rel:.1e} relative: TF32 (~1e-3) is on"


@pytest.mark.cuda
def test_a_cuda_run_is_deterministic_and_says_how_it_computed(image_folder):
    device = cuda_or_skip()
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), progress=False)
    tricks = [{"name": "dropout", "p": 0.3, "after": ["conv", "dense"]}, {"name": "augment"}]
    _, a = _short(ds, tricks, device)
    _, b = _short(ds, tricks, device)
    assert a["predictions"] == b["predictions"]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert a["cuda_math"] == {"fp32": "ieee (TF32 off)", "cudnn_deterministic": True, "cudnn_benchmark": False}
    assert a["denormals"] == "kept"


@pytest.mark.cuda
def test_a_cpu_checkpoint_is_not_resumed_on_cuda(image_folder, tmp_path):
    device = cuda_or_skip()
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), progress=False)
    s_cpu, _ = _short(ds, [], torch.device("cpu"))
    path = Path(tmp_path) / "v__seed0.pt"
    Checkpoints(path, s_cpu.key()).save({"epoch": 1})
    s, _ = _short(ds, [], device)
    r = train_run(build_recipe(s.variant, s.tricks), s, ds, device, None, Checkpoints(path, s.key(), "cuda"))
    assert r["resumed_from_epoch"] == 0
    assert r["notices"] == [f"ignored checkpoint {path}: it was written by a run on cpu, this run trains on cuda; "
                            "this run trains from epoch 1"]

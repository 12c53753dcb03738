"""The device and precision policy: which device a study trains on, and in which precision."""

from __future__ import annotations

from ..errors import TricksError
from .settings import PRECISION_CHOICES, PRECISIONS

DEVICES = ("auto", "cpu", "cuda")
# Runs per GPU by default (the local pool: that many worker processes per GPU; Ray: 1/that of a GPU per
# task). One run of the 122k-parameter net at batch 64 is a few tiny kernels per step and leaves a GPU
# mostly idle, so several share one. 4 is a guess, NOT measured: no GPU has been lent to this project
# yet (benchmarks/gpu_check.sh times the study on one). --workers and --ray-gpus-per-run override it.
RUNS_PER_GPU = 4


def resolve_device(name: str):
    import torch

    if name not in DEVICES:
        raise TricksError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TricksError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def bf16_is_native(device) -> bool:
    """Whether bf16 autocast runs in hardware on ``device`` (not emulated, which is slower than fp32)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8        # Ampere and newer
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")   # private, so looked up defensively
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def choose_precision(requested: str, native_bf16: bool) -> str:
    """``auto`` means bf16 autocast where the hardware has bf16, else fp32; the others are taken as they are.

    bf16 is the default where native because it trains 1.4-1.6x faster on this project's CPU with
    accuracy within seed noise of fp32 (measured over the whole study; see results/bench/).
    """
    if requested == "auto":
        return "bf16" if native_bf16 else "fp32"
    if requested not in PRECISIONS:
        raise TricksError(f"unknown precision {requested!r}; valid: {', '.join(PRECISION_CHOICES)}")
    return requested


def default_workers(device, pending: int, threads: int = 1) -> int:
    """On CPU one worker per ``threads`` cores (each run trains on ``threads`` intra-op threads, 1 by
    default: more runs done than one multi-thread process on this project's 2-core machine),
    ``RUNS_PER_GPU`` per GPU on CUDA; never more than there are runs to do. The count of workers never
    changes a run's numbers: its thread count is its own setting, not what is left over."""
    import os

    import torch

    if device.type == "cuda":
        return min(RUNS_PER_GPU * max(1, torch.cuda.device_count()), max(1, pending))
    return min(max(1, (os.cpu_count() or 1) // threads), max(1, pending))

"""The CUDA arithmetic of a run, and what counts as a CUDA error.

On CUDA, torch's defaults would make a run's numbers differ from what its settings say:

- **fp32 is IEEE fp32, never TF32.** cuDNN convolutions default to TF32 on Ampere and newer GPUs (a
  10-bit mantissa), so a run recorded as "fp32" would not be fp32. ``strict_math`` sets every cuDNN and
  cuBLAS fp32 precision to "ieee" for the run (bf16 autocast is unaffected: its ops are bf16 anyway).
- **Deterministic cuDNN.** ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``: the same
  algorithm every time, so that a resumed run, a Ray run and a regression check reproduce a run bit for
  bit on one machine. What it costs in speed is not measured here (no GPU was lent to this project
  when this was written; ``benchmarks/gpu_check.sh`` measures the study on one).

The flags are process-wide: ``strict_math`` sets them for the run and restores the previous values
afterwards, so a notebook that trains a run keeps its own settings. Each CUDA record says what was
used (``provenance["cuda_math"]``). On CPU nothing is changed.

A CUDA error (a device-side assert, an illegal memory access, a failed cuBLAS/cuDNN call) leaves the
process's CUDA context unusable: ``is_cuda_error`` tells it from an ordinary failure, so that a worker
that hits one exits and is replaced instead of taking further runs (``running.executors``).
"""

from __future__ import annotations

import contextlib

import torch

# Words that name a CUDA failure in a RuntimeError's message (torch.AcceleratorError is a RuntimeError).
CUDA_ERROR_MARKS = ("cuda error", "device-side assert", "illegal memory access", "cublas_status",
                    "cudnn_status", "cudnn error", "cuda driver error", "an illegal instruction",
                    "misaligned address", "unspecified launch failure")
# The (backend, op) pairs of torch's fp32 precision API that CUDA kernels read.
_CUDA_OPS = ("all", "conv", "rnn", "matmul")


def is_cuda_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA failure that leaves the process's CUDA context broken."""
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(mark in text for mark in CUDA_ERROR_MARKS)


def _precision_api() -> bool:
    """Whether this torch has the fp32_precision API (2.9+); older ones have only ``allow_tf32``."""
    return hasattr(torch._C, "_get_fp32_precision_getter") and hasattr(torch.backends.cudnn, "conv")


def _read() -> dict:
    """The flags ``strict_math`` changes, as they are now (restorable by ``_write``)."""
    flags = {"cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
             "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    if _precision_api():
        flags["fp32_precision"] = {op: torch._C._get_fp32_precision_getter("cuda", op) for op in _CUDA_OPS}
    else:   # never read the legacy getters once the new API is in use: torch refuses the mix
        flags["allow_tf32"] = {"cudnn": bool(torch.backends.cudnn.allow_tf32),
                               "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
    return flags


def _write(flags: dict) -> None:
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    if "fp32_precision" in flags:
        for op in _CUDA_OPS:    # "all" first: setting it sets the others, which are then put back
            torch._C._set_fp32_precision_setter("cuda", op, flags["fp32_precision"][op])
    else:
        torch.backends.cudnn.allow_tf32 = flags["allow_tf32"]["cudnn"]
        torch.backends.cuda.matmul.allow_tf32 = flags["allow_tf32"]["matmul"]


STRICT = {"cudnn_deterministic": True, "cudnn_benchmark": False}


def strict_flags() -> dict:
    """The flags of a strict run in this torch's API: IEEE fp32 everywhere, deterministic cuDNN."""
    if _precision_api():
        return {**STRICT, "fp32_precision": {op: "ieee" for op in _CUDA_OPS}}
    return {**STRICT, "allow_tf32": {"cudnn": False, "matmul": False}}


def describe_strict() -> dict:
    """What a CUDA record says about its arithmetic (``provenance["cuda_math"]``)."""
    return {"fp32": "ieee (TF32 off)", "cudnn_deterministic": True, "cudnn_benchmark": False}


@contextlib.contextmanager
def strict_math(device: torch.device):
    """For a CUDA ``device``: IEEE fp32 (no TF32) and deterministic cuDNN inside the block, the
    previous flags restored after it; yields what the record says (``describe_strict``). On any other
    device nothing changes and it yields None."""
    if device.type != "cuda":
        yield None
        return
    before = _read()
    _write(strict_flags())
    try:
        yield describe_strict()
    finally:
        _write(before)

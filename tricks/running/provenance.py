"""Where a result came from: code revision, packages, machine, device."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib")


@lru_cache(maxsize=1)
def git_revision(paths: tuple[str, ...] = ()) -> dict:
    """{"revision", "dirty"}: HEAD, and whether tracked files (only under ``paths``, when given) changed."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev or None, "dirty": dirty if rev else None}


def file_at(revision: str, relpath: str) -> bytes | None:
    """A file of this checkout as ``revision`` stored it (``relpath`` from the repository root), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "show", f"{revision}:{relpath}"], cwd=root, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device) -> dict:
    import torch

    info = {"device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def provenance(device) -> dict:
    return {"git": git_revision(), "packages": package_versions(), "python": platform.python_version(),
            "platform": platform.platform(), "host": platform.node(), **device_info(device)}

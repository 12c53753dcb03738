"""Per-epoch checkpoints of one run, so that an interrupted run resumes at its last finished epoch.

A 10-epoch full-data run takes minutes per worker; without checkpoints, an interrupted study (Ctrl-C,
a killed worker, a session that ends) loses every run in flight. After each finished epoch the engine
writes everything the rest of the run depends on: weights, optimizer and LR-schedule state, the
callbacks' state, the three random streams (data order, dropout masks, augmentation), the history
and the LR trace. Resuming from it gives the same history and predictions, bit for bit, as a run
that was never interrupted (``tests/test_checkpoint.py``).

A checkpoint is used only by a run with the same settings key (``RunSettings.key``), the same file
format and the same torch version (other kernels could change the numbers); anything else is
ignored and overwritten. The study driver deletes a run's checkpoint once its record is written.
Files are written atomically (temporary file, then rename), so an interruption mid-write leaves the
previous epoch's checkpoint in place. torch is imported only where a checkpoint is read or
written, so the study driver can name and delete checkpoints without it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

FORMAT = 1          # bumped when the content of a checkpoint changes
SUFFIX = ".pt"
CHECKPOINTS_DIR = "checkpoints"   # under a study's results directory; not committed (.gitignore)


def checkpoint_path(directory: str | Path, stem: str) -> Path:
    """Where the run ``stem`` (``<variant>__seed<k>``) keeps its checkpoint."""
    return Path(directory) / f"{stem}{SUFFIX}"


@dataclass(frozen=True)
class Checkpoints:
    """One run's checkpoint file, tied to the run's settings key."""
    path: Path
    key: str          # RunSettings.key(): a checkpoint of other settings is never resumed

    def load(self) -> dict | None:
        """The saved state, or None when there is none or it belongs to other settings or software."""
        import torch

        try:
            # Our own file, written by ``save``: it holds callbacks' state (plain Python objects),
            # hence weights_only=False.
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            return None
        except Exception:   # torn or foreign file: train from the start and overwrite it
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("key") != self.key \
                or state.get("torch") != torch.__version__:
            return None
        return state

    def save(self, state: dict) -> None:
        import torch

        from ..running.records import write_atomic

        buf = io.BytesIO()
        torch.save({**state, "format": FORMAT, "key": self.key, "torch": torch.__version__}, buf)
        write_atomic(self.path, buf.getvalue())


def discard(directory: str | Path | None, stem: str) -> None:
    """Delete the run's checkpoint (its record is written), and the directory once it is empty."""
    if directory is None:
        return
    checkpoint_path(directory, stem).unlink(missing_ok=True)
    try:
        Path(directory).rmdir()
    except OSError:
        pass   # other runs' checkpoints are still there, or it never existed


def rng_state(generators: dict[str, torch.Generator | None], device: torch.device) -> dict:
    """The state of the run's random streams: its own generators and the global ones (dropout)."""
    import torch

    state = {name: g.get_state() for name, g in generators.items() if g is not None}
    state["global_cpu"] = torch.get_rng_state()
    if device.type == "cuda":
        state["global_cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, generators: dict[str, torch.Generator | None], device: torch.device) -> None:
    import torch

    for name, g in generators.items():
        if g is not None:
            g.set_state(state[name])
    torch.set_rng_state(state["global_cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["global_cuda"], device)

"""Per-epoch checkpoints of one run, so that an interrupted run resumes at its last finished epoch.

A 10-epoch full-data run takes minutes per worker; without checkpoints, an interrupted study (Ctrl-C,
a killed worker, a session that ends) loses every run in flight. After each finished epoch the engine
writes everything the rest of the run depends on: weights, optimizer and LR-schedule state, the
callbacks' state, the three random streams (data order, dropout masks, augmentation), the history
and the LR trace. Resuming from it gives the same history and predictions, bit for bit, as a run
that was never interrupted (``tests/test_checkpoint.py``).

A checkpoint is used only by a run with the same settings key (``RunSettings.key``), the same file
format, the same torch version (other kernels could change the numbers) and the same device kind (a
CPU checkpoint holds no CUDA random state, and its numbers came from other kernels); anything else is
ignored, with a one-line reason naming the file, and overwritten. A checkpoint written before the
device was recorded is a CPU one (every run before then trained on CPU).

A results folder may come from someone else, so a checkpoint is data, never code: it holds only
tensors and plain containers of numbers and strings (what ``torch.load(weights_only=True)``
accepts), and it is read with ``weights_only=True``, so a crafted pickle cannot run anything. The
state of callbacks and LR controllers must therefore be in that form; ``save`` refuses any other,
naming the part that is not. The study driver deletes a run's checkpoint once its record is written.
Files are written atomically (temporary file, then rename), so an interruption mid-write leaves the
previous epoch's checkpoint in place. torch is imported only where a checkpoint is read or
written, so the study driver can name and delete checkpoints without it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ..files import write_atomic

FORMAT = 3          # bumped when the content of a checkpoint changes (2: threads; 3: tricks' own state)
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
    device: str = "cpu"   # the device kind of the run ("cpu", "cuda"): another kind's checkpoint is ignored

    def load(self) -> tuple[dict | None, str | None]:
        """(the saved state, None), or (None, why it was ignored), or (None, None) when there is none.

        Read as data only (``weights_only=True``): a file holding anything else is ignored."""
        import torch

        if not self.path.exists():
            return None, None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:   # torn, truncated, foreign, or holding code: never executed, ignored
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            what = "holds objects other than tensors, numbers and strings (refused unread)" \
                if "weights_only" in str(exc) or "Unsupported global" in str(exc) \
                else "cannot be read (truncated or not a checkpoint)"
            return None, f"{what}: {type(exc).__name__}: {first}"
        if not isinstance(state, dict):
            return None, "is not a checkpoint of this suite"
        if state.get("format") != FORMAT:
            return None, f"has checkpoint format {state.get('format')!r}, this version writes {FORMAT}"
        if state.get("torch") != str(torch.__version__):
            return None, f"was written by torch {state.get('torch')}, this is torch {torch.__version__}"
        if state.get("device", "cpu") != self.device:
            return None, f"was written by a run on {state.get('device', 'cpu')}, this run trains on {self.device}"
        if state.get("key") != self.key:
            return None, "belongs to other settings of this run"
        return state, None

    def save(self, state: dict) -> None:
        """Write ``state`` atomically; refuse state that ``load`` could not read back as data."""
        import torch

        buf = io.BytesIO()
        torch.save({**state, "format": FORMAT, "key": self.key, "torch": str(torch.__version__),
                    "device": self.device}, buf)
        data = buf.getvalue()
        try:
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            said = [line.strip() for line in str(exc).splitlines() if "Unsupported global" in line]
            raise TypeError(f"checkpoint state {plain_problem(state) or ''} is not plain data: checkpoints hold "
                            "only tensors, numbers, strings and lists, tuples or dicts of them (give the "
                            "callback or controller a state_dict that converts it); torch: "
                            f"{(said or [type(exc).__name__])[0]}") from None
        write_atomic(self.path, data)


def plain_problem(obj, where: str = "") -> str | None:
    """Where in ``obj`` the first value is that is neither a tensor, a number, a string, None nor a
    container of those (for the error message), or None."""
    import torch

    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, (torch.Tensor, torch.Size)):
        return None     # exact types: a str or int subclass is another class to the unpickler
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return f"{where or 'state'} ({type(obj).__name__})"
    for k, v in items:
        found = plain_problem(v, f"{where}[{k!r}]")
        if found:
            return found
    return None


def discard(directory: str | Path | None, stem: str) -> None:
    """Delete the run's checkpoint (its record is written). The directory stays while the study runs:
    removing it once empty raced with a worker creating it for its next checkpoint (mkdir's
    FileExistsError, or a vanished folder under its temporary file); ``remove_if_empty`` at the end."""
    if directory is not None:
        checkpoint_path(directory, stem).unlink(missing_ok=True)
        own = Path(directory) / stem     # an entry-point run's directory of its own files (running.entry)
        if own.is_dir():
            import shutil

            shutil.rmtree(own, ignore_errors=True)


def remove_if_empty(directory: str | Path | None) -> None:
    """Remove the checkpoints directory if no run left a checkpoint in it (the study's end). Temporary
    files that a worker killed mid-write left behind (``write_atomic``'s ``.<name>.*.tmp``) go first:
    at the study's end, under its lock, nothing is writing them any more."""
    if directory is None:
        return
    for tmp in Path(directory).glob(".*.tmp") if Path(directory).is_dir() else ():
        tmp.unlink(missing_ok=True)
    try:
        Path(directory).rmdir()
    except OSError:
        pass   # unfinished runs' checkpoints are still there, or it never existed


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

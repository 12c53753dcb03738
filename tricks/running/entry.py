"""Runs of an entry-point workload (the contract: ``specs.entry``): the user's function trains; this
module calls it with the run's configuration, seed, budget and an ``EntryContext``, checks what it
returns (``entry_result``) and makes the record every run makes, with the test predictions the study
driver scores. Nothing above the engine can tell such a record from one the engine made.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import SpecError, TricksError
from ..specs.entry import entry_module, load_entry
from ..specs.user_code import module_sources, with_root
from ..training.checkpoint import Checkpoints, checkpoint_path
from ..training.data import Dataset, split_training
from .entry_result import check_result, plain_row
from .settings import RunSettings

KEY_FILE = ".settings_key"   # in an entry run's own checkpoint directory: the settings it belongs to


class EntryContext:
    """What an entry point gets besides its config, seed and budget (see ``specs.entry``).

    ``device`` (a ``torch.device``), ``precision`` ("fp32" or "bf16"; ``autocast()`` applies it),
    ``threads`` (torch's intra-op threads, set for the run), ``data_dir`` and ``dataset`` (the workload's
    data directory and dataset name), ``classes``, ``test_labels`` (the order the returned test
    predictions and labels must have), ``split()``, ``data()``, ``load_checkpoint()``,
    ``save_checkpoint(state)``, ``checkpoint_dir``, ``report_epoch(row)`` and ``notice(message)``."""

    def __init__(self, settings: RunSettings, dataset: Dataset, device: torch.device,
                 emit: Callable[[str, dict], None], checkpoints_dir: str | None = None):
        self.device = device
        self.precision = settings.precision
        self.threads = settings.threads
        self.dataset = settings.data_kind
        self.data_dir = Path(dataset.source.root).expanduser()
        self.classes = list(dataset.classes)
        self.test_labels = dataset.test_y.tolist()
        self.resumed_from_epoch = 0          # set by load_checkpoint (a result may say otherwise)
        self.notices: list[str] = []
        self._settings, self._data, self._emit = settings, dataset, emit
        self._checkpoints = Checkpoints(checkpoint_path(checkpoints_dir, settings.stem), settings.key(),
                                        settings.device) if checkpoints_dir else None
        self._own = Path(checkpoints_dir) / settings.stem if checkpoints_dir else None
        if self._own is not None and self._own.is_dir() and _read(self._own / KEY_FILE) != settings.key():
            shutil.rmtree(self._own, ignore_errors=True)
            self.notice(f"ignored checkpoint directory {self._own}: it belongs to other settings of this run; "
                        "this run trains from epoch 1")

    # -- data -------------------------------------------------------------------------------
    def split(self) -> tuple[list[int], list[int]]:
        """(indices into the training split to train on, validation indices): the class-balanced draws of
        the budget's ``train_subset`` and ``validation`` that the suite's own runs use (fixed seeds)."""
        train, val = split_training(self._data.train_y, self._settings.validation, self._settings.train_subset)
        return train.tolist(), val.tolist()

    def data(self) -> Dataset:
        """The workload's decoded dataset: ``train_x``/``test_x`` uint8 N x 3 x 32 x 32 tensors, ``train_y``/
        ``test_y`` int64 labels, ``classes`` (the suite's copy: use it, or read ``data_dir`` yourself)."""
        return self._data

    def autocast(self):
        """bf16 autocast on the run's device when its precision is bf16, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path | None:
        """A directory of this run's own for files of your code (Lightning's checkpoints, say), created
        on first use, tied to the run's settings (another setting's is wiped) and deleted once the
        run's record is written; None where runs do not resume (Ray)."""
        if self._own is None:
            return None
        if not (self._own / KEY_FILE).is_file():
            self._own.mkdir(parents=True, exist_ok=True)
            (self._own / KEY_FILE).write_text(self._settings.key())
        return self._own

    def load_checkpoint(self) -> dict | None:
        """The state the last ``save_checkpoint`` of an interrupted attempt of this run saved, or None (none,
        or one of other settings, another torch or device, or not plain data: then a notice says why)."""
        if self._checkpoints is None:
            return None
        state, ignored = self._checkpoints.load()
        if ignored is not None:
            self.notice(f"ignored checkpoint {self._checkpoints.path}: it {ignored}; this run trains from epoch 1")
        if state is None:
            return None
        self.resumed_from_epoch = int(state["epoch"])
        self._emit("resume", {"epoch": self.resumed_from_epoch, "epochs": self._settings.epochs})
        return {k: v for k, v in state.items() if k not in ("format", "key", "torch", "device")}

    def save_checkpoint(self, state: dict) -> None:
        """Save the run's state after an epoch: plain data only (tensors, numbers, strings, and lists and
        dicts of them: ``state_dict()``s, ``torch.get_rng_state()``), with the finished ``epoch``; written
        atomically. A no-op where runs do not resume."""
        epoch = state.get("epoch") if isinstance(state, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise TypeError("save_checkpoint(state) takes a dict with the finished 'epoch' (an integer from 1)")
        if self._checkpoints is not None:
            self._checkpoints.save(state)

    # -- progress ---------------------------------------------------------------------------
    def report_epoch(self, row: dict) -> None:
        """Progress after an epoch (``epoch``, ``train_loss``, ``test_accuracy``, ...: a history row)."""
        row = plain_row(row, self._settings.entry)
        self._emit("epoch", {"epoch": row.get("epoch", 0), "epochs": self._settings.epochs,
                             "loss": float(row.get("train_loss", float("nan"))),
                             "acc": float(row.get("test_accuracy", float("nan")))})

    def notice(self, message: str) -> None:
        """A one-line message for the user, shown now and kept in the run's record."""
        self.notices.append(str(message))
        self._emit("notice", {"message": self.notices[-1]})


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def entry_function(settings: RunSettings) -> Callable:
    """The run's entry function, its module looked up in the spec's folder first, and checked to be the
    code the study planned with (its source's sha256 is a setting of the run)."""
    with_root(settings.code_root)
    try:
        fn = load_entry(settings.entry)
        planned = dict(settings.sources)
        module = entry_module(settings.entry)
        now = dict(module_sources(planned))
    except SpecError as exc:
        raise TricksError(str(exc)) from None
    changed = [m for m in planned if now.get(m) != planned[m]]
    if changed:
        raise TricksError(f"module(s) {', '.join(changed)} changed since the study planned this run (its settings "
                          f"hold their source's sha256); run the study again to plan with the new code")
    if module not in planned and not module.startswith("tricks."):
        raise TricksError(f"{settings.stem}: the settings of entry {settings.entry!r} lack its module's source hash")
    return fn


def run_entry(settings: RunSettings, ctx, emit=None, executor: dict | None = None) -> dict:
    """Train one (variant, seed) of an entry-point workload and return its record, not yet scored nor
    written (``runner.run_one`` for the engine's runs). ``ctx``: the worker's ``runner.RunContext``."""
    from .provenance import provenance
    from .records import make_record

    emit = emit or (lambda kind, payload: None)
    device = torch.device(ctx.device)
    if device.type != settings.device:
        raise TricksError(f"{settings.stem} was planned for {settings.device} but handed to a {device.type} "
                          "worker; its settings key names the device kind")
    fn = entry_function(settings)
    dataset = ctx.data_for(settings)
    emit("start", {"epochs": settings.epochs})
    context = EntryContext(settings, dataset, device, emit, ctx.checkpoint_dir)
    budget = {"epochs": settings.epochs, "batch_size": settings.batch_size, "train_subset": settings.train_subset,
              "validation": settings.validation}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)    # the run's own thread count, as the engine's runs
    t0 = time.perf_counter()
    try:
        result = fn(copy.deepcopy(settings.config or {}), settings.seed, budget, context)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads_before)
    wall = time.perf_counter() - t0
    outcome = check_result(result, settings, context, wall)
    prov: dict[str, Any] = {**provenance(device), "torch_threads": threads, "executor": executor or {"kind": "local"},
                            "entry": settings.entry}
    return make_record(settings, outcome, None, dataset.describe(), dataset.classes, prov, wall_seconds=wall,
                       finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

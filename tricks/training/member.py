"""One run through training, and the epoch loop every run goes through: a solo run (``engine``) is one
``Member`` fitted alone, a population (``cohort``) several fitted together. Resume, the end of an
epoch (evaluation's bookkeeping, divergence, callbacks, the LR's epoch step, early stopping,
checkpoints) and the outcome are here and nowhere else; what differs is passed in: how an epoch trains
(one model, or one batched population), how the evaluated models are evaluated (one by one, or in one
grouped forward), and whose global RNG stream is in place while a member's own code runs (a solo run's
is torch's global RNG itself; a member's is swapped in, ``population.MemberRNG``).

The order of every step is a solo run's (``fit``): a solo run's numbers are what they were before a
population shared this code, bit for bit (``benchmarks/numbers_unchanged.py``).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..specs.callbacks import EpochState
from .build import Run, build_run
from .checkpoint import Checkpoints, rng_state, set_rng_state
from .data import Dataset
from .lr_trace import LRTrace
from .recipe import Recipe
from .steps import Lane

Event = Callable[[str, dict], None]
# (validation predictions or None, validation loss or None, test predictions, test loss), per member
Evaluation = tuple[torch.Tensor | None, float | None, torch.Tensor, float]


@dataclass
class Member:
    index: int
    recipe: Recipe
    settings: object
    run: Run
    emit: Event
    checkpoints: Checkpoints | None
    trace: LRTrace = field(default_factory=LRTrace)
    history: list = field(default_factory=list)
    status: str = "ok"
    stop_reason: str = ""
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    notices: list = field(default_factory=list)
    saved: dict | None = None
    first_epoch: int = 1
    done: bool = False
    preds: torch.Tensor | None = None
    order: torch.Tensor | None = None
    epoch_lr: float = 0.0

    @classmethod
    def build(cls, index: int, recipe: Recipe, settings, dataset: Dataset, device: torch.device, emit: Event,
              checkpoints: Checkpoints | None) -> "Member":
        """The run built as a solo run builds it (``build.build_run``: seeds, streams, model, optimizer)."""
        m = cls(index, recipe, settings, build_run(recipe, settings, dataset, device), emit, checkpoints)
        m.trace.record(0, m.run.lr.lr)
        return m

    def after_step(self) -> None:
        self.run.lr.after_step()
        self.trace.record(self.run.lr.steps, self.run.lr.lr)

    def lane(self) -> Lane:
        """What the step loop needs of this member this epoch (``steps.step_loop``)."""
        run = self.run
        return Lane(run.model, run.optimizer, run.hooks, run.transform, self.order, run.streams.augment,
                    run.streams.step, self.after_step)

    def say(self, message: str) -> None:
        self.notices.append(message)     # one-line messages for the user, also kept in the record
        self.emit("notice", {"message": message})

    def resume(self) -> None:
        """Continue from this run's checkpoint, if any (in the member's RNG stream: the global RNG it
        restores is the member's own); say why a checkpoint was ignored, and what a budget leaves undone."""
        saved, ignored = self.checkpoints.load() if self.checkpoints is not None else (None, None)
        if ignored is not None:
            self.say(f"ignored checkpoint {self.checkpoints.path}: it {ignored}; this run trains from epoch 1")
        for why in self.recipe.budget_problems(self.run.budget):   # a budget the spec's load did not see
            self.say(f"{self.settings.variant}: trained as asked (a budget the spec did not have), but {why}")
        if saved is None:
            return
        run = self.run
        run.model.load_state_dict(saved["model"])
        run.optimizer.load_state_dict(saved["optimizer"])
        run.lr.load_state_dict(saved["lr"])
        for cb, cb_state in zip(run.callbacks, saved["callbacks"], strict=True):
            cb.load_state_dict(cb_state)
        self.recipe.load_state_dict(saved["tricks"])
        self.trace.load_state_dict(saved["trace"])
        set_rng_state(saved["rng"], run.streams.generators(), run.device)
        self.history, self.train_seconds, self.eval_seconds = saved["history"], saved["train_seconds"], \
            saved["eval_seconds"]
        self.saved, self.first_epoch = saved, saved["epoch"] + 1
        self.emit("resume", {"epoch": saved["epoch"], "epochs": self.settings.epochs})

    def begin_epoch(self) -> None:
        self.epoch_lr = self.run.lr.lr
        self.order = self.recipe.data_order(self.run.train_y.numel(), self.run.streams.order).to(self.run.train_x.device)

    def evaluated_model(self, loss: float = 0.0) -> tuple[torch.nn.Module, str]:
        """The weights evaluation sees (EMA, SWA) and their name, or the trained ones (always after a
        non-finite training loss)."""
        hooks, model = self.run.hooks, self.run.model
        if not math.isfinite(loss) or hooks.evaluation_model is None:
            return model, "trained"
        chosen = hooks.evaluation_model(model, self.run.train_split(self.settings.batch_size))
        return chosen, ("trained" if chosen is model else self.recipe.evaluated)

    def end_epoch(self, epoch: int, loss: float, nll: float, evaluated: str, evaluation: Evaluation,
                  train_seconds: float, eval_seconds: float) -> None:
        """Everything after an epoch's training and evaluation: the history row, divergence, callbacks,
        the LR's epoch step, early stopping, the checkpoint (in the member's RNG stream)."""
        run, s = self.run, self.settings
        val_preds, val_loss, self.preds, test_loss = evaluation
        metrics = {"train_loss": loss}
        row = {"epoch": epoch, "train_loss": loss}
        if run.hooks.changes_loss:
            row["train_nll"] = nll
        row["evaluated"] = evaluated
        if val_preds is not None:
            metrics["val_loss"] = val_loss
            metrics["val_accuracy"] = float((val_preds == run.val_y.cpu()).double().mean())
            row.update(val_loss=val_loss, val_accuracy=metrics["val_accuracy"])
        self.train_seconds += train_seconds
        self.eval_seconds += eval_seconds
        acc = float((self.preds == run.test_y.cpu()).double().mean())
        row.update(test_loss=test_loss, test_accuracy=acc, lr=self.epoch_lr, train_seconds=train_seconds,
                   eval_seconds=eval_seconds)
        self.history.append(row)
        self.emit("epoch", {"epoch": epoch, "epochs": s.epochs, "loss": loss, "acc": acc})
        if not math.isfinite(loss):
            self.status, self.stop_reason, self.done = "diverged", f"training loss became {loss} in epoch {epoch}", True
            return
        state = EpochState(epoch, s.epochs, self.epoch_lr, dict(metrics), run.model, optimizer=run.optimizer,
                           train=run.train_split(s.batch_size))
        for cb in run.callbacks:
            cb.on_epoch_end(state)
        run.lr.after_epoch(metrics)
        self.trace.record(run.lr.steps, run.lr.lr)
        if state.should_stop:
            self.stop_reason, self.done = state.stop_reason or "a callback asked to stop", True
        elif epoch >= s.epochs:
            self.done = True
        elif self.checkpoints is not None:
            self.checkpoints.save({"epoch": epoch, "model": run.model.state_dict(),
                                   "optimizer": run.optimizer.state_dict(), "lr": run.lr.state_dict(),
                                   "callbacks": [cb.state_dict() for cb in run.callbacks],
                                   "tricks": self.recipe.state_dict(), "trace": self.trace.state_dict(),
                                   "rng": rng_state(run.streams.generators(), run.device),
                                   "threads": torch.get_num_threads(), "history": self.history,
                                   "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds})

    def outcome(self) -> dict:
        run = self.run
        return {"status": self.status, "stop_reason": self.stop_reason, "history": self.history,
                "epochs_run": len(self.history), "predictions": self.preds.tolist(),
                "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
                "optimizer": {k: list(v) if isinstance(v, tuple) else v
                              for k, v in self.recipe.optimizer_settings().items()},
                "optimizer_class": self.recipe.optimizer_class().__name__,
                "lr_trace": self.trace.to_dict(run.budget.steps_per_epoch),
                "parameters": sum(p.numel() for p in run.model.parameters()),
                "resumed_from_epoch": self.saved["epoch"] if self.saved is not None else 0, "notices": self.notices,
                "train_images": int(run.train_y.numel()), "validation_images": int(run.val_y.numel())}


TrainEpoch = Callable[[list[Member], int], list[tuple[float, float]]]
Evaluate = Callable[[list[Member], list[torch.nn.Module], bool], list[Evaluation]]   # bool: the validation split too


def fit(members: list[Member], train_epoch: TrainEpoch, evaluate: Evaluate,
        stream: Callable[[Member], contextlib.AbstractContextManager] = lambda m: contextlib.nullcontext()
        ) -> list[dict]:
    """Train ``members`` to their ends and return their outcomes: each epoch, the members still going
    (``train_epoch(active, epoch)``: (training objective, NLL) per member), then their evaluated models
    (``evaluate``: one ``Evaluation`` each) and their ends of epoch; at the end, callbacks' last word and
    a last evaluation of the weights they left. A member resumed at a later epoch joins then; a member
    that stopped or diverged is left out of later epochs. ``stream(m)``: m's global RNG in place."""
    for m in members:
        with stream(m):
            m.resume()
    device = members[0].run.device
    for epoch in range(min(m.first_epoch for m in members), max(m.settings.epochs for m in members) + 1):
        active = [m for m in members if not m.done and m.first_epoch <= epoch <= m.settings.epochs]
        if not active:
            continue
        t0 = time.perf_counter()
        for m in active:
            m.begin_epoch()
        losses = train_epoch(active, epoch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        chosen = []
        for m, (loss, _) in zip(active, losses):
            with stream(m):
                chosen.append(m.evaluated_model(loss))
        evaluations = evaluate(active, [net for net, _ in chosen], True)
        t2 = time.perf_counter()
        for m, (loss, nll), (_, name), ev in zip(active, losses, chosen, evaluations):
            with stream(m):
                m.end_epoch(epoch, loss, nll, name, ev, t1 - t0, t2 - t1)
    last = [m for m in members if m.status == "ok" and m.run.callbacks]
    nets = []
    for m in last:
        with stream(m):
            for cb in m.run.callbacks:
                cb.on_train_end(m.run.model)
            nets.append(m.evaluated_model()[0])   # the weights a callback left
    if last:
        t0 = time.perf_counter()
        for m, (_, _, preds, _) in zip(last, evaluate(last, nets, False)):
            m.preds = preds
            m.eval_seconds += time.perf_counter() - t0
    return [m.outcome() for m in members]

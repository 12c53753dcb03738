"""Train a cohort: several runs of one network shape as one population (``population``), each member
ending with the outcome its solo run (``engine.train_run``) would give, up to float rounding.

A member keeps everything a solo run has: its own build (``build.build_run``: init, data order,
augmentation and step generators from its seed), its own dropout stream (``population.MemberRNG``),
optimizer, LR schedule and per-step hooks (per-member gradient clipping included), callbacks,
evaluation (the solo ``engine.evaluate`` on its own weights), history, checkpoint and outcome. Only the
training forward and backward pass is shared. A member that stops (a callback, or a non-finite
training loss: diverged) is frozen and leaves the population; the others go on, and a NaN in one
member never reaches another's numbers (members share no arithmetic). A member resumed from a later
epoch than the others joins at that epoch. Each outcome says which cohort it trained in
(``population``). ``train_seconds`` of a member is the time of the epochs it shared.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..specs.callbacks import EpochState
from ..specs.types import Batch
from .allocator import keep_freed_memory
from .build import MEMORY_FORMAT, build_run
from .checkpoint import Checkpoints, rng_state
from .cuda import strict_math
from .data import Dataset
from .engine import FLUSH_DENORMALS, KEEP_FREED_MEMORY, PROGRESS_EVERY, autocast, evaluate
from .lr_trace import LRTrace
from .population import MemberRNG, PopulationNet
from .recipe import Recipe, one_pass

Event = Callable[[str, dict], None]


def can_join(recipe: Recipe) -> str | None:
    """Why a variant cannot train in a population (its runs then train solo), or None when it can."""
    hooks = recipe.step_hooks()
    if hooks.compute_gradients is not one_pass:
        return f"its gradients come from {recipe._owner('compute_gradients').name}'s own passes"
    return None


@dataclass
class Member:
    index: int
    recipe: Recipe
    settings: object
    run: object
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

    def after_step(self) -> None:
        self.run.lr.after_step()
        self.trace.record(self.run.lr.steps, self.run.lr.lr)

    def evaluated_model(self):
        hooks, model = self.run.hooks, self.run.model
        chosen = hooks.evaluation_model(model, self.run.train_split(self.settings.batch_size)) \
            if hooks.evaluation_model else model
        return chosen, ("trained" if chosen is model else self.recipe.evaluated)

    def test(self, net):
        return evaluate(net, self.run.test_x, self.run.test_y, self.run.transform, self.settings.precision,
                        predict=self.run.hooks.predict)

    def resume(self, rng: MemberRNG, device: torch.device) -> None:
        """Load this member's checkpoint, if any, as a solo run does (its dropout stream into ``rng``)."""
        saved, ignored = self.checkpoints.load() if self.checkpoints is not None else (None, None)
        if ignored is not None:
            self.notices.append(f"ignored checkpoint {self.checkpoints.path}: it {ignored}; "
                                "this run trains from epoch 1")
            self.emit("notice", {"message": self.notices[-1]})
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
        for name, g in run.streams.generators().items():
            if g is not None:
                g.set_state(saved["rng"][name])
        rng.states[self.index] = {k: v for k, v in saved["rng"].items() if k.startswith("global_")}
        self.history, self.train_seconds, self.eval_seconds = saved["history"], saved["train_seconds"], \
            saved["eval_seconds"]
        self.saved, self.first_epoch = saved, saved["epoch"] + 1
        self.emit("resume", {"epoch": saved["epoch"], "epochs": self.settings.epochs})

    def end_epoch(self, epoch: int, loss: float, nll: float, seconds: float, device: torch.device) -> None:
        """Everything a solo run does after an epoch's training, in the same order (``engine._train_run``);
        called with the member's own stream in torch's global RNG (``MemberRNG.stream``)."""
        run, s, hooks = self.run, self.settings, self.run.hooks
        metrics = {"train_loss": loss}
        row = {"epoch": epoch, "train_loss": loss}
        if hooks.changes_loss:
            row["train_nll"] = nll
        t1 = time.perf_counter()
        net, row["evaluated"] = self.evaluated_model() if math.isfinite(loss) else (run.model, "trained")
        if run.val_y.numel():
            val_preds, val_loss = evaluate(net, run.val_x, run.val_y, run.transform, s.precision, predict=hooks.predict)
            metrics["val_loss"] = val_loss
            metrics["val_accuracy"] = float((val_preds == run.val_y.cpu()).double().mean())
            row.update(val_loss=val_loss, val_accuracy=metrics["val_accuracy"])
        self.preds, test_loss = self.test(net)
        t2 = time.perf_counter()
        self.train_seconds += seconds
        self.eval_seconds += t2 - t1
        acc = float((self.preds == run.test_y.cpu()).double().mean())
        row.update(test_loss=test_loss, test_accuracy=acc, lr=self.epoch_lr, train_seconds=seconds,
                   eval_seconds=t2 - t1)
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
            return
        if epoch == s.epochs:
            self.done = True
        elif self.checkpoints is not None:   # called in the member's RNG stream: the global RNG is its own
            self.checkpoints.save({"epoch": epoch, "model": run.model.state_dict(),
                                   "optimizer": run.optimizer.state_dict(), "lr": run.lr.state_dict(),
                                   "callbacks": [cb.state_dict() for cb in run.callbacks],
                                   "tricks": self.recipe.state_dict(), "trace": self.trace.state_dict(),
                                   "rng": rng_state(run.streams.generators(), device),
                                   "threads": torch.get_num_threads(), "history": self.history,
                                   "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds})

    def outcome(self, cohort: dict) -> dict:
        run = self.run
        if self.status == "ok" and run.callbacks:
            for cb in run.callbacks:
                cb.on_train_end(run.model)
            t0 = time.perf_counter()
            self.preds, _ = self.test(self.evaluated_model()[0])
            self.eval_seconds += time.perf_counter() - t0
        return {"status": self.status, "stop_reason": self.stop_reason, "history": self.history,
                "epochs_run": len(self.history), "predictions": self.preds.tolist(),
                "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
                "optimizer": {k: list(v) if isinstance(v, tuple) else v
                              for k, v in self.recipe.optimizer_settings().items()},
                "optimizer_class": self.recipe.optimizer_class().__name__,
                "lr_trace": self.trace.to_dict(run.budget.steps_per_epoch),
                "parameters": sum(p.numel() for p in run.model.parameters()),
                "resumed_from_epoch": self.saved["epoch"] if self.saved is not None else 0, "notices": self.notices,
                "train_images": int(run.train_y.numel()), "validation_images": int(run.val_y.numel()),
                "population": {**cohort, "index": self.index}}


def train_epoch(net: PopulationNet, active: list[Member], precision: str, num_classes: int,
                on_step: Callable[[int, int], None] | None = None) -> list[tuple[float, float]]:
    """One pass of every active member over its training images in its own order: per step, each
    member's batch as its solo run prepares it, one batched forward, each member's own loss, one
    backward, then each member's own before-step hooks, optimizer step, after-step hooks and LR step."""
    ids = [m.index for m in active]
    for m in active:
        m.run.model.train()
    images, labels, bs = active[0].run.train_x, active[0].run.train_y, active[0].settings.batch_size
    n, device = images.shape[0], images.device
    steps = math.ceil(n / bs)
    totals = [torch.zeros((), dtype=torch.float64, device=device) for _ in active]
    nlls = [torch.zeros((), dtype=torch.float64, device=device) for _ in active]
    for step in range(steps):
        xs, targets, ys = [], [], []
        # every member's batch in one gather and one conversion (element-wise: the solo run's numbers)
        idx_all = torch.stack([m.order[step * bs:(step + 1) * bs] for m in active])
        x_all = images[idx_all.flatten()].float().div_(255.0).view(len(active), -1, *images.shape[1:])
        y_all = labels[idx_all]
        for j, m in enumerate(active):
            hooks = m.run.hooks
            x = x_all[j]
            for aug in hooks.augment:
                x = aug(x, m.run.streams.augment)
            y = y_all[j]
            t = y
            if hooks.augment_batch:
                batch = Batch(x, y, num_classes)
                for aug in hooks.augment_batch:
                    batch = aug(batch, m.run.streams.augment)
                x, t = batch.images, batch.targets
            xs.append(m.run.transform(x).contiguous(memory_format=MEMORY_FORMAT))
            targets.append(t)
            ys.append(y)
            m.run.optimizer.zero_grad(set_to_none=True)
        losses, outs = [], []
        with autocast(device, precision):
            for m, out, t in zip(active, net.forward(xs, ids), targets):
                out = out.float()
                loss = m.run.hooks.criterion(out, t)
                for term in m.run.hooks.loss_terms:
                    loss = loss + term(m.run.model)
                losses.append(loss)
                outs.append(out)
        torch.stack(losses).sum().backward()
        for j, m in enumerate(active):
            hooks = m.run.hooks
            for hook in hooks.before_optimizer_step:
                hook(m.run.model, m.run.streams.step)
            m.run.optimizer.step()
            for hook in hooks.after_optimizer_step:
                hook(m.run.model, m.run.optimizer)
            m.after_step()
            k = ys[j].numel()
            totals[j] += losses[j].detach() * k
            if hooks.changes_loss:
                nlls[j] += F.nll_loss(outs[j].detach(), ys[j]) * k
        if on_step is not None and ((step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps):
            on_step(step + 1, steps)
    return [(float(t) / n, float(nl if m.run.hooks.changes_loss else t) / n) for t, nl, m in zip(totals, nlls, active)]


def train_cohort(recipes: list[Recipe], settings: list, dataset: Dataset, device: torch.device,
                 emits: list[Event], checkpoints: list[Checkpoints | None], cohort: dict) -> list[dict]:
    """Train the members (all with one network shape, batch size, training split, precision and
    thread count) as one population; one outcome per member, with the keys of a solo outcome and
    ``population`` (``cohort`` plus the member's index). CPU: the members' thread count and flushed
    subnormals, as ``engine.train_run``; CUDA: IEEE fp32 and deterministic cuDNN."""
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(settings[0].threads)
    flushed = device.type == "cpu" and FLUSH_DENORMALS and torch.set_flush_denormal(True)
    try:
        with strict_math(device) as cuda_math:
            outs = _train(recipes, settings, dataset, device, emits, checkpoints, cohort)
        threads = torch.get_num_threads()
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.set_num_threads(threads_before)
    extra = {"denormals": "flushed" if flushed else "kept", "threads": threads,
             **({"cuda_math": cuda_math} if cuda_math is not None else {})}
    return [{**o, **extra} for o in outs]


def _train(recipes, settings, dataset, device, emits, checkpoints, cohort) -> list[dict]:
    if device.type == "cpu" and settings[0].precision in KEEP_FREED_MEMORY:
        keep_freed_memory()
    rng = MemberRNG(device)
    members = []
    for i, (recipe, s, emit, ck) in enumerate(zip(recipes, settings, emits, checkpoints, strict=True)):
        run = build_run(recipe, s, dataset, device)    # seeds the global RNG for this member, as solo
        rng.capture()                                  # ... whose dropout stream starts here
        m = Member(i, recipe, s, run, emit, ck)
        m.trace.record(0, run.lr.lr)
        members.append(m)
    for m in members:
        m.resume(rng, device)
    net = PopulationNet([m.run.model for m in members], rng)
    for epoch in range(min(m.first_epoch for m in members), max(s.epochs for s in settings) + 1):
        active = [m for m in members if not m.done and m.first_epoch <= epoch <= m.settings.epochs]
        if not active:
            continue
        t0 = time.perf_counter()
        for m in active:
            m.epoch_lr = m.run.lr.lr
            m.order = m.recipe.data_order(m.run.train_y.numel(), m.run.streams.order).to(m.run.train_x.device)
        lead = active[0].emit
        losses = train_epoch(net, active, settings[0].precision, len(dataset.classes),
                             on_step=lambda s, n, e=epoch: lead("step", {"epoch": e, "step": s, "steps": n}))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        for m, (loss, nll) in zip(active, losses):
            with rng.stream(m.index):    # evaluation and callbacks see the member's own global RNG
                m.end_epoch(epoch, loss, nll, seconds, device)
    outs = []
    for m in members:
        with rng.stream(m.index):
            outs.append(m.outcome(cohort))
    return outs

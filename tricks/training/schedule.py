"""Learning-rate schedules: what a trick returns (``Schedule``, ``Warmup``), and the controller that
steps them for the engine (``LRController``).

Composition rules (a warm-up and a main schedule can come from two different tricks):

- **warm-up + per-step schedule**: exactly ``SequentialLR([LinearLR(start_factor, 1, steps), main],
  milestones=[steps])``, stepped after every optimizer step, as torchvision's references chain them.
  The main schedule starts at its step 0 when the warm-up ends.
- **warm-up + per-epoch schedule** (including metric-driven ones such as ``ReduceLROnPlateau``): the
  warm-up's ``LinearLR`` is stepped after every optimizer step; the main schedule is held until the
  warm-up is over and then stepped at the end of every epoch (so "in front of" holds in epochs too).
- a schedule alone is stepped at its interval; a warm-up alone ends at a constant LR.

``Budget`` tells a schedule how long it has *after* the warm-up, so that e.g. a cosine reaches its
minimum at the end of training whatever warm-up sits in front of it.
"""

from __future__ import annotations

from ..specs.types import INTERVALS, MONITORS, Budget, Schedule, Warmup  # noqa: F401 - the contract's types


class LRController:
    """Steps a warm-up and a main schedule at their intervals (see the module docstring).

    The engine calls ``after_step()`` after every optimizer step and ``after_epoch(metrics)`` at the
    end of every epoch; ``lr`` is the learning rate of the first parameter group, for the record.
    """

    def __init__(self, optimizer, schedule_factory=None, warmup: Warmup | None = None, budget: Budget | None = None):
        from torch.optim.lr_scheduler import LinearLR, SequentialLR

        self.optimizer = optimizer
        self.warmup = warmup
        self.steps = 0
        budget = budget or Budget(1, 1)
        w = warmup.steps if warmup else 0
        # The main schedule is built first: it records each group's initial_lr from the optimizer.
        self.schedule: Schedule | None = schedule_factory(optimizer, Budget(budget.epochs, budget.steps_per_epoch, w)) \
            if schedule_factory else None
        self._per_step = None       # stepped after every optimizer step
        self._warm_only = None      # the warm-up's LinearLR when the main schedule is per epoch
        linear = LinearLR(optimizer, start_factor=warmup.start_factor, end_factor=1.0, total_iters=w) \
            if warmup else None
        main = self.schedule.scheduler if self.schedule else None
        if self.schedule is not None and self.schedule.interval == "step":
            self._per_step = SequentialLR(optimizer, [linear, main], milestones=[w]) if linear else main
        else:
            self._warm_only = linear

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def after_step(self) -> None:
        self.steps += 1
        if self._per_step is not None:
            self._per_step.step()
        elif self._warm_only is not None and self.steps <= self.warmup.steps:
            self._warm_only.step()

    def state_dict(self) -> dict:
        """Everything ``load_state_dict`` needs to continue where this controller is (checkpoints);
        the optimizer's own state (its current LR included) is saved with the optimizer."""
        main = self.schedule.scheduler if self.schedule else None
        return {"steps": self.steps,
                "main": main.state_dict() if main is not None else None,
                "per_step": self._per_step.state_dict() if self._per_step not in (None, main) else None,
                "warm_only": self._warm_only.state_dict() if self._warm_only is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        if state["main"] is not None:
            self.schedule.scheduler.load_state_dict(state["main"])
        if state["per_step"] is not None:
            self._per_step.load_state_dict(state["per_step"])
        if state["warm_only"] is not None:
            self._warm_only.load_state_dict(state["warm_only"])

    def after_epoch(self, metrics: dict[str, float]) -> None:
        s = self.schedule
        if s is None or s.interval != "epoch":
            return
        if self.warmup is not None and self.steps < self.warmup.steps:
            return                      # held until the warm-up in front of it is over
        if s.monitor is not None:
            if s.monitor not in metrics:
                raise ValueError(f"the LR schedule monitors {s.monitor!r}, which this run does not record "
                                 f"(recorded: {', '.join(sorted(metrics))})")
            s.scheduler.step(metrics[s.monitor])
        else:
            s.scheduler.step()

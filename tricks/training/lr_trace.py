"""The learning rate actually used, step by step, in a compact form for the run record.

A point (optimizer step, lr) is kept whenever the LR changes, so a per-epoch schedule costs one
point per epoch and a constant LR one point in all. Per-step schedules (warm-up, one-cycle,
cosine per step) change every step; they are thinned to at most ``MAX_POINTS`` evenly spaced
change points (plus the last), enough for the LR figure to show warm-ups and cycles.
"""

from __future__ import annotations

MAX_POINTS = 1000   # change points kept per run (about 25 kB of JSON)


class LRTrace:
    def __init__(self):
        self.steps: list[int] = []
        self.lrs: list[float] = []

    def record(self, step: int, lr: float) -> None:
        """The LR in force from optimizer step ``step`` (0 = before the first step) on."""
        if self.lrs and self.lrs[-1] == lr:
            return
        if self.steps and self.steps[-1] == step:      # changed twice at one step: keep the latest
            self.lrs[-1] = lr
            return
        self.steps.append(step)
        self.lrs.append(lr)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "lrs": list(self.lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.lrs = list(state["steps"]), list(state["lrs"])

    def to_dict(self, steps_per_epoch: int) -> dict:
        steps, lrs = self.steps, self.lrs
        if len(steps) > MAX_POINTS:
            k = -(-len(steps) // MAX_POINTS)
            keep = list(range(0, len(steps), k))
            if keep[-1] != len(steps) - 1:
                keep.append(len(steps) - 1)
            steps, lrs = [steps[i] for i in keep], [lrs[i] for i in keep]
        return {"steps_per_epoch": steps_per_epoch, "step": list(steps), "lr": list(lrs)}

"""ReduceLROnPlateau on the validation loss: cut the LR when it stops improving (torch's
``ReduceLROnPlateau``, relative threshold, stepped after each epoch's validation).

The first epoch always improves on the initial best, so the earliest cut is at the end of epoch
patience + 2 and acts from epoch patience + 3 on: a patience above epochs - 3 never cuts within the
budget, and is refused when the spec loads (``allow_noop`` runs it anyway)."""

from __future__ import annotations

import torch

from ..specs.base import ALLOW_NOOP, Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..training.schedule import Schedule


@register_trick
class ReduceOnPlateau(Trick):
    name = "reduce_on_plateau"
    description = "Multiply the LR by factor when the validation loss has not improved for patience epochs."
    needs_validation = True
    params = (
        Param("lr", float, None, "start LR (per optimizer step); unset: the optimizer's (Adam: 1e-3)",
              low=0.0, low_open=True, high=1e6, is_lr=True),
        # 0.5 and 1 epoch, not PyTorch's 0.1 and 10: a 10-epoch budget leaves room for a few gentle cuts only
        Param("factor", float, 0.5, "LR multiplier at each cut", low=0.0, low_open=True, high=1.0, high_open=True),
        Param("patience", int, 1, "epochs without improvement before a cut", low=0, high=10**6),
        Param("threshold", float, 1e-3, "relative improvement of the validation loss that counts", low=0.0, high=1.0),
        ALLOW_NOOP,
    )

    def check_budget(self, budget) -> None:
        if self.p["patience"] + 3 > budget.epochs:
            self.refuse_noop("patience", "leaves no epoch after the earliest cut (the end of epoch "
                             "patience + 2): the LR would never be cut", budget, "lower patience")

    def optimizer_settings(self) -> dict:
        return {"lr": self.p["lr"]}   # None: unset, left to another trick or the baseline

    def lr_schedule(self, optimizer, budget) -> Schedule:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.p["factor"], patience=self.p["patience"],
            threshold=self.p["threshold"], threshold_mode="rel")
        return Schedule(sched, interval="epoch", monitor="val_loss")

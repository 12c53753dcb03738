"""The LR-sensitivity figure of a tuned study, drawn from ``tuning.sensitivity`` and ``tuning.selection``
alone (no training, no torch), in the style of ``figures``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures as F
from .figures import plt

FIGURE = "lr_sensitivity.png"
CAPTION = ("Final validation accuracy and test micro-F1 at each grid LR (mean over ok seeds; band from the worst to "
           "the best seed); the large dot marks the LR selected on validation, the open circle the variant's "
           "default LR.")
PANELS = (("val_accuracy", "final-epoch validation accuracy", "Validation accuracy (selects the LR)"),
          ("micro_f1", "test micro-F1", "Test micro-F1 (the score compared)"))


def lr_sensitivity(table: pd.DataFrame, selection: pd.DataFrame, path: Path) -> Path:
    """Two panels (validation accuracy, the selection's evidence; test micro-F1, the score) against the
    grid LR on a log axis: one line per variant at the mean over its ok seeds, a band from the min to the
    max, the selected LR as a large dot and the default LR (when a grid value) as an open circle.
    ``table``: ``tuning.sensitivity``; ``selection``: ``tuning.selection``."""
    order = list(dict.fromkeys(table["variant"]))
    sel = selection.set_index("variant")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for color, v in zip(F._palette(len(order)), order):
        t = table[table["variant"] == v].sort_values("lr")
        for ax, (col, _, _) in zip(axes, PANELS):
            have = t[t[f"{col}_n"] > 0]
            if have.empty:
                continue
            x = have["lr"].to_numpy(dtype=float)
            ax.plot(x, have[f"{col}_mean"], marker="o", ms=3, color=color, label=v)
            ax.fill_between(x, have[f"{col}_min"], have[f"{col}_max"], color=color, alpha=0.15, lw=0)
            for key, style in (("selected_lr", {"s": 70, "color": color, "edgecolor": "black", "zorder": 4}),
                               ("default_lr", {"s": 70, "facecolors": "none", "edgecolors": color, "zorder": 4})):
                lr = float(sel[key].get(v, math.nan)) if v in sel.index else math.nan
                at = have[np.isclose(have["lr"].to_numpy(dtype=float), lr, rtol=1e-9, atol=0.0)]
                if math.isfinite(lr) and len(at):
                    ax.scatter(at["lr"], at[f"{col}_mean"], lw=1.4, **style)
    for ax, (_, label, title) in zip(axes, PANELS):
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(table["lr"])), [f"{x:g}" for x in sorted(set(table["lr"]))], fontsize=8)
        ax.minorticks_off()
        ax.set(xlabel="peak learning rate (grid value, log scale)", ylabel=label, title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    fig.suptitle("LR sensitivity: mean over seeds, shaded from the worst to the best seed; "
                 "large dot: selected on validation, open circle: default LR")
    fig.tight_layout()
    return F._save(fig, path)

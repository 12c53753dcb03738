"""The forest plot of a multi-workload study, drawn from ``transfer.transfer_table`` alone (no training,
no torch), in the style of ``figures``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures as F
from .figures import plt
from .transfer import POOLED, transfer_verdicts
from .transfer_pooled import MIN_SEEDS, withheld

FIGURE = "transfer_forest.png"
CAPTION = ("Each trick's paired delta in micro-F1 against the reference on every workload (square: its weight in "
           "the pooled estimate; line: its 95% t-interval; colour: its Holm verdict on that workload) and the "
           "pooled estimate, the unweighted mean over workloads, exploratory (diamond: its Hartung-Knapp 95% t interval; grey, and not a finding, where a workload has "
           f"fewer than {MIN_SEEDS} paired seeds).")
ROW_HEIGHT, PANEL_PAD = 0.34, 0.75   # inches per row, and per panel for its title and axis


def _diamond(ax, mid: float, low: float, high: float, y: float, color, alpha: float = 0.85) -> None:
    ax.fill([low, mid, high, mid], [y, y + 0.3, y, y - 0.3], color=color, alpha=alpha, lw=0)


def forest_plot(table: pd.DataFrame, path: Path) -> Path:
    """One panel per trick (spec order), titled with its transfer class: a row per workload (the delta and
    its 95% t-interval, in points) and the pooled row (a diamond over the unweighted mean's Hartung-Knapp 95% interval; the
    note 'no pooled estimate' where there is none; grey, labelled 'not a finding', where
    ``transfer_pooled.withheld`` says so), a line at zero, one x axis for every panel."""
    classes = transfer_verdicts(table).set_index("variant")["transfer"]
    held = withheld(table)   # pooled from too few seeds: drawn grey, labelled, not a finding
    tricks = list(dict.fromkeys(table["variant"]))
    sizes = [int((table["variant"] == v).sum()) for v in tricks]
    fig, axes = plt.subplots(len(tricks), 1, figsize=(8, sum(ROW_HEIGHT * n + PANEL_PAD for n in sizes)),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": sizes})
    for ax, v in zip(axes[:, 0], tricks):
        t = table[table["variant"] == v].reset_index(drop=True)
        y = np.arange(len(t))[::-1].astype(float)
        labels = []
        for yi, r in zip(y, t.itertuples()):
            if r.workload == POOLED:
                labels.append(f"pooled (unweighted mean, k = {int(r.k) if r.k == r.k else 0}; exploratory)"
                              + (f"\nnot a finding: < {MIN_SEEDS} seeds" if v in held else ""))
                if math.isfinite(r.delta):
                    _diamond(ax, 100 * r.delta, 100 * r.ci_low, 100 * r.ci_high, yi,
                             F.NOISE_COLOR if v in held else "black", 0.45 if v in held else 0.85)
                else:
                    ax.text(0, yi, "no pooled estimate", ha="center", va="center", fontsize=8, color="dimgray")
                continue
            labels.append(f"{r.workload} ({r.model})")
            if not math.isfinite(r.delta):
                continue
            color = F.VERDICT_COLORS.get(r.verdict, F.NOISE_COLOR)
            lo, hi = (100 * x if math.isfinite(x) else 100 * r.delta for x in (r.ci_low, r.ci_high))
            ax.hlines(yi, lo, hi, color=color, lw=1.6)
            weight = r.weight if math.isfinite(r.weight) else 0.3
            ax.plot(100 * r.delta, yi, "s", color=color, ms=4 + 8 * math.sqrt(weight), mec="black", mew=0.5)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, len(t) - 0.3)
        ax.set_title(f"{v} vs {t['against'].iloc[0]}: {classes.get(v, '')}", fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="x")
    axes[-1, 0].set_xlabel(f"paired delta in micro-F1 vs {table['against'].iloc[0]} (percentage points)")
    fig.suptitle("Transfer across workloads: deltas with 95% intervals, pooled as an unweighted mean (exploratory)\n"
                 "green: improvement, red: regression, grey: within noise (Holm, within each workload)")
    fig.tight_layout()
    return F._save(fig, path)

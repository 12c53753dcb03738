"""Effects over the training budget: each comparison's paired delta at every epoch, from the stored
per-epoch histories alone (no retraining, no torch).

``deltas_by_epoch`` makes the same comparisons as ``deltas.csv`` (``stats.comparisons``), paired on
the seeds where both variants finished with status ok, and for every epoch up to the last one that
every such run of both variants reached (an early-stopped run ends the table of its comparisons at
its last epoch) gives the mean over seeds of ``variant_seed - against_seed`` in test accuracy, its
95% Student-t interval (``stats.interval``, clipped to [-1, 1]) and n.

The numbers are the test accuracy measured after each epoch (the history's ``test_accuracy``). At
the last epoch they can differ from the final delta of ``deltas.csv``: that one scores the weights
the run ended with, which are other weights where a callback restored them (early stopping with
``restore_best``) or where the final evaluation used other weights (an EMA or SWA average).
``deltas_by_epoch_plot`` draws the table as a grid of small multiples, one panel per comparison.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import figures as F
from .figures import plt
from .stats import clip, interval

FIGURE = "deltas_by_epoch.png"
TABLE = "deltas_by_epoch.csv"
METRIC = "test_accuracy"
COLUMNS = ["variant", "against", "kind", "metric", "epoch", "seeds", "n", "variant_mean", "against_mean",
           "delta", "delta_std", "ci_low", "ci_high"]
# REPORT.md's caption of the figure and its note on the last epoch (report_text shows them after deltas.png)
CAPTION = ("Each comparison's paired delta at every epoch: a trick's effect at any budget up to the one trained, "
           "without retraining.")
NOTE = (f"Test accuracy measured after each epoch (table: `{TABLE}`); at the last epoch it can differ from the "
        "final delta above where a callback restored other weights (early stopping's best epoch) or the final "
        "evaluation used other weights (EMA, SWA).")
PANEL_COLUMNS = 4          # panels per row of the figure
PANEL_SIZE = (3.1, 2.2)    # inches per panel


def _curves(history: pd.DataFrame, runs: pd.DataFrame, variant: str, metric: str) -> pd.DataFrame:
    """epochs x seeds: ``metric`` after each epoch of the variant's runs that finished with status ok."""
    ok = set(runs.loc[(runs["variant"] == variant) & (runs["status"] == "ok"), "seed"])
    h = history[(history["variant"] == variant) & history["seed"].isin(ok)]
    return h.pivot_table(index="epoch", columns="seed", values=metric, aggfunc="first", dropna=False)


def deltas_by_epoch(history: pd.DataFrame, runs: pd.DataFrame, pairs: Iterable[tuple[str, str, str]],
                    metric: str = METRIC) -> pd.DataFrame:
    """One row per (comparison, epoch): the paired delta of ``metric`` after that epoch.

    ``history``: ``StudyData.history()``; ``runs``: ``StudyData.runs()`` (its status picks the runs);
    ``pairs``: (variant, against, kind) as from ``stats.comparisons``. A comparison without seeds in
    common has no rows. An epoch a seed has no value for (it is past that run's end) leaves the seed
    out there; epochs past the last one every paired run reached are not listed.
    """
    rows = []
    for variant, against, kind in pairs:
        a, b = _curves(history, runs, variant, metric), _curves(history, runs, against, metric)
        seeds = sorted(set(a.columns) & set(b.columns))
        if not seeds:
            continue
        last = min(int(t[s].last_valid_index() or 0) for t in (a, b) for s in seeds)
        for epoch in sorted(e for e in set(a.index) | set(b.index) if e <= last):
            pa = a.reindex(index=[epoch], columns=seeds).iloc[0]
            pb = b.reindex(index=[epoch], columns=seeds).iloc[0]
            have = [s for s in seeds if math.isfinite(pa[s]) and math.isfinite(pb[s])]
            va, vb = pa[have].to_numpy(dtype=float), pb[have].to_numpy(dtype=float)
            iv = interval(va - vb)
            lo, hi = clip(iv["ci_low"], iv["ci_high"], -1.0, 1.0)
            rows.append({"variant": variant, "against": against, "kind": kind, "metric": metric,
                         "epoch": int(epoch), "seeds": ",".join(map(str, have)), "n": iv["n"],
                         "variant_mean": float(va.mean()) if len(va) else math.nan,
                         "against_mean": float(vb.mean()) if len(vb) else math.nan,
                         "delta": iv["mean"], "delta_std": iv["std"], "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=COLUMNS)


def deltas_by_epoch_plot(table: pd.DataFrame, pairs: Iterable[tuple[str, str, str]], path: Path) -> Path:
    """One small panel per comparison (``pairs`` order, shared axes): the paired delta in points after
    each epoch with its 95% interval as a band, and a zero line. A point is green (red) where that
    epoch's interval lies above (below) zero; the intervals are per epoch, not adjusted."""
    pairs = [(v, a) for v, a, _ in pairs]
    cols = min(PANEL_COLUMNS, max(1, len(pairs)))
    rows = max(1, math.ceil(len(pairs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.9),
                             squeeze=False, sharex=True, sharey=True)
    for ax, (variant, against) in zip(axes.flat, pairs):
        t = table[(table["variant"] == variant) & (table["against"] == against)].sort_values("epoch")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{variant} vs {against}", fontsize=9)
        ax.grid(alpha=0.3)
        if t.empty:
            ax.text(0.5, 0.5, "no paired seeds", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        x, d = t["epoch"].to_numpy(), 100 * t["delta"].to_numpy()
        lo, hi = 100 * t["ci_low"].to_numpy(), 100 * t["ci_high"].to_numpy()
        ax.fill_between(x, lo, hi, color=F.VARIANT_COLOR, alpha=0.2, lw=0)
        ax.plot(x, d, color=F.VARIANT_COLOR, lw=1.3)
        colors = [F.VERDICT_COLORS["improvement"] if low > 0 else F.VERDICT_COLORS["regression"] if high < 0
                  else F.NOISE_COLOR for low, high in zip(np.nan_to_num(lo), np.nan_to_num(hi))]
        ax.scatter(x, d, s=10, c=colors, zorder=3)
        n = sorted(set(t["n"]))
        ax.text(0.98, 0.04, f"n={n[0]}" if len(n) == 1 else f"n={n[0]}-{n[-1]}", ha="right", va="bottom",
                transform=ax.transAxes, fontsize=7, color="#555555")
    for ax in list(axes.flat)[len(pairs):]:
        ax.set_visible(False)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(F.MaxNLocator(integer=True))
        ax.tick_params(labelsize=7, labelbottom=True)
    for c in range(cols):   # "epoch" under the lowest drawn panel of each column
        axes[max(r for r in range(rows) if r * cols + c < len(pairs)), c].set_xlabel("epoch", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("delta, test acc. pts", fontsize=8)
    fig.suptitle("Paired delta in test accuracy after each epoch (shared axes), 95% t-interval band (per epoch)\n"
                 "green / red: interval above / below zero; grey: it spans zero", fontsize=10)
    height = PANEL_SIZE[1] * rows + 0.9
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.45 / height, top=1 - 0.75 / height, wspace=0.12,
                        hspace=0.45)
    return F._save(fig, path)

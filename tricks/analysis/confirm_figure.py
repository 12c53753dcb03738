"""The confirmation's figure: each claim's exploratory and confirmatory estimates, with intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

VERDICT_COLOURS = {"confirmed": "#1b7837", "not confirmed": "#b2182b", "pending": "#777777"}


def estimates_plot(table: pd.DataFrame, path: Path) -> Path:
    """One row per claim: the exploratory estimate (95% t interval, hollow) above the confirmatory one
    (family interval, filled, coloured by verdict); zero marked."""
    n = len(table)
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * n + 1.4))
    y = np.arange(n)[::-1].astype(float)
    for yi, (_, r) in zip(y, table.iterrows()):
        ax.errorbar(r["explor_delta"], yi + 0.17, xerr=[[r["explor_delta"] - r["explor_low"]],
                                                         [r["explor_high"] - r["explor_delta"]]],
                    fmt="o", mfc="white", color="#555555", capsize=2, lw=1)
        colour = VERDICT_COLOURS.get(r["verdict"], "#777777")
        ax.errorbar(r["delta"], yi - 0.17, xerr=[[r["delta"] - r["family_low"]], [r["family_high"] - r["delta"]]],
                    fmt="o", color=colour, capsize=2, lw=1.6)
        if r["direction"] == "equivalent" and r["margin"] == r["margin"]:
            ax.fill_betweenx([yi - 0.4, yi + 0.4], -r["margin"], r["margin"], color="#dddddd", zorder=0)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xscale("symlog", linthresh=5)   # a 62-point claim beside 1-point ones: linear within +-5 points
    ax.set_yticks(y)
    ax.set_yticklabels(table["claim"])
    ax.set_xlabel("contrast, accuracy points, symlog (hollow: exploratory 95% t; filled: confirmatory, family interval)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

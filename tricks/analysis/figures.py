"""Comparison charts, drawn only from the tables of ``stats`` and ``studydata`` (no training, no torch).

Each function takes tables and a path, writes one PNG and returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # non-interactive: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .stats import IMPROVEMENT, REGRESSION  # noqa: E402

DPI = 130
BASE_COLOR, VARIANT_COLOR = "#7f7f7f", "#1f77b4"
VERDICT_COLORS = {IMPROVEMENT: "#2ca02c", REGRESSION: "#d62728"}
NOISE_COLOR = "#9e9e9e"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _palette(n: int):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def micro_f1_bars(summary: pd.DataFrame, runs: pd.DataFrame, reference: str, path: Path,
                  metric: str = "micro_f1") -> Path:
    """Bars at the mean, 95% t-interval error bars, one dot per seed; the reference bar in grey."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(summary) + 2), 4.2))
    x = np.arange(len(summary))
    means = summary[f"{metric}_mean"].to_numpy()
    lo = means - summary[f"{metric}_ci_low"].to_numpy()
    hi = summary[f"{metric}_ci_high"].to_numpy() - means
    colors = [BASE_COLOR if v == reference else VARIANT_COLOR for v in summary["variant"]]
    ax.bar(x, means, color=colors, alpha=0.75, width=0.65)
    ax.errorbar(x, means, yerr=np.nan_to_num(np.vstack([lo, hi])), fmt="none", ecolor="black", capsize=4, lw=1.2)
    ok = runs[runs["status"] == "ok"]
    for i, v in enumerate(summary["variant"]):
        vals = ok.loc[ok["variant"] == v, metric].to_numpy()
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(i + jitter, vals, s=14, color="black", zorder=3)
    finite = np.concatenate([means[np.isfinite(means)], ok[metric].to_numpy()])
    if finite.size:
        span = finite.max() - finite.min()
        ax.set_ylim(max(0.0, finite.min() - max(0.05, span)), min(1.0, finite.max() + max(0.02, span * 0.3)))
    ax.set_xticks(x, [f"{v}\n(reference)" if v == reference else v for v in summary["variant"]],
                  rotation=30, ha="right")
    ax.set_ylabel(f"test {metric.replace('_', '-')}")
    ax.set_title(f"{metric.replace('_', '-')} per variant: mean, 95% t-interval, each seed a dot")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def delta_bars(deltas: pd.DataFrame, reference: str, path: Path) -> Path:
    """Paired deltas against the reference with 95% intervals; coloured by verdict."""
    d = deltas[deltas["kind"] == "vs_baseline"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.5 * len(d) + 1.2)))
    y = np.arange(len(d))[::-1]
    pts = 100 * d["delta"].to_numpy()
    err = np.nan_to_num(100 * np.vstack([d["delta"] - d["ci_low"], d["ci_high"] - d["delta"]]))
    colors = [VERDICT_COLORS.get(v, NOISE_COLOR) for v in d["verdict"]]
    ax.barh(y, pts, color=colors, alpha=0.8, height=0.6)
    ax.errorbar(pts, y, xerr=err, fmt="none", ecolor="black", capsize=4, lw=1.2)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, [f"{v}  (n={n})" for v, n in zip(d["variant"], d["n"])])
    ax.set_xlabel(f"paired delta in micro-F1 vs {reference} (percentage points)")
    ax.set_title("Paired deltas vs reference, 95% t-interval\ngreen: improvement, red: regression, grey: within noise")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def confusion_grid(matrices: dict[str, np.ndarray | None], classes: Sequence[str], path: Path) -> Path:
    """One row-normalized confusion matrix per variant (seeds summed); class names on the outer axes only."""
    names = list(matrices)
    cols = min(4, max(1, len(names)))
    rows = int(np.ceil(len(names) / cols))
    height = 3.3 * rows + 0.8   # inches: 3.3 per row of matrices, 0.8 for the title and class names
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, height), squeeze=False, sharex=True, sharey=True)
    short = [c[:5] for c in classes]
    ticks = range(len(classes))
    for ax, name in zip(axes.flat, names):
        m = matrices[name]
        if m is None:
            ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(name, fontsize=10)
            continue
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        ax.set_title(f"{name} (acc {np.trace(m) / max(m.sum(), 1):.3f})", fontsize=10)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for c in range(cols):   # class names under the lowest drawn matrix of each column
        r = max(i for i in range(rows) if i * cols + c < len(names)) if c < len(names) else 0
        ax = axes[r, c]
        ax.set_xticks(ticks, short, rotation=90, fontsize=7)
        ax.tick_params(axis="x", labelbottom=True)
        ax.set_xlabel("predicted", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_yticks(ticks, short, fontsize=7)
        ax.set_ylabel("true", fontsize=8)
    fig.suptitle("Confusion matrices, row-normalized (recall on the diagonal), seeds summed")
    # Fixed margins instead of tight_layout, which draws the whole grid once more to measure it
    # (half of this figure's time).
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.5 / height, top=1 - 0.6 / height, wspace=0.08, hspace=0.3)
    return _save(fig, path)


def per_class_heatmap(table: pd.DataFrame, path: Path) -> Path:
    """variants x classes F1 (mean over seeds), values in the cells."""
    fig, ax = plt.subplots(figsize=(1.0 * table.shape[1] + 3, 0.55 * table.shape[0] + 1.8))
    vals = table.to_numpy(dtype=float)
    im = ax.imshow(vals, cmap="viridis", aspect="auto")
    lo, hi = np.nanmin(vals), np.nanmax(vals)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            v = vals[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if v < (lo + hi) / 2 else "black")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=35, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    fig.colorbar(im, ax=ax, label="F1 (mean over seeds)")
    ax.set_title("Per-class F1")
    return _save(fig, path)


def training_nll(history: pd.DataFrame) -> pd.Series:
    """Each epoch's mean training NLL: ``train_nll`` where a trick trained on another objective
    (squared error, label smoothing, an L1 term), else ``train_loss``, which is then the NLL."""
    if "train_nll" not in history:
        return history["train_loss"]
    return history["train_nll"].fillna(history["train_loss"])


def learning_curves(history: pd.DataFrame, order: Sequence[str], path: Path) -> Path:
    """Test accuracy and training NLL per epoch: mean over seeds, band = min..max over seeds."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.3))
    history = history.assign(nll=training_nll(history))   # comparable across objectives
    for color, v in zip(_palette(len(order)), order):
        h = history[history["variant"] == v]
        if h.empty:
            continue
        for ax, col in ((a1, "test_accuracy"), (a2, "nll")):
            g = h.groupby("epoch")[col]
            mean, lo, hi = g.mean(), g.min(), g.max()
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=color, label=v)
            ax.fill_between(mean.index, lo.values, hi.values, color=color, alpha=0.15)
        if "val_accuracy" in h and h["val_accuracy"].notna().any():
            val = h.groupby("epoch")["val_accuracy"].mean()
            a1.plot(val.index, val.values, ls="--", lw=1, color=color)
    validated = "val_accuracy" in history and history["val_accuracy"].notna().any()
    a1.set(xlabel="epoch", ylabel="accuracy" if validated else "test accuracy",
           title="Test accuracy after each epoch" + (" (dashed: validation)" if validated else ""))
    a2.set(xlabel="epoch", ylabel="mean training NLL", title="Training NLL per epoch (whatever the objective)")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a1.legend(fontsize=8, ncol=2)
    fig.suptitle("Learning curves: mean over seeds, shaded from the worst to the best seed")
    fig.tight_layout()
    return _save(fig, path)


def lr_schedule(history: pd.DataFrame, order: Sequence[str], path: Path) -> Path:
    """The learning rate used in each epoch, per variant (step plot, log scale)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    n = len(order)
    for i, (color, v) in enumerate(zip(_palette(n), order)):
        h = history[history["variant"] == v].groupby("epoch")["lr"].first()
        if h.empty:
            continue
        ax.step(h.index, h.values * (1 + 0.01 * (i - n / 2)), where="mid", color=color, label=v, lw=1.5)
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="learning rate (log scale)",
           title="Learning rate per epoch (lines nudged apart by 1% to stay visible)")
    ax.grid(alpha=0.3, which="both")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def lr_lines(steps: pd.DataFrame, order: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(variant, its first seed's points sorted by epoch: columns epoch, lr) for each variant in
    ``order`` with a trace: what ``lr_trace`` draws. A schedule only differs between seeds when it
    reads a metric (e.g. ReduceLROnPlateau), so one seed stands for the variant."""
    out = []
    for v in order:
        t = steps[steps["variant"] == v]
        if not t.empty:
            t = t[t["seed"] == t["seed"].min()].sort_values("epoch", kind="stable")
            out.append((v, t[["epoch", "lr"]].reset_index(drop=True)))
    return out


def lr_trace(steps: pd.DataFrame, order: Sequence[str], path: Path) -> Path:
    """The learning rate actually used, optimizer step by step (x in epochs), one line per variant
    (``lr_lines``); warm-ups and cycles show as ramps and waves, a constant LR as a flat line."""
    fig, ax = plt.subplots(figsize=(8, 4))
    n = len(order)
    place = {v: (i, color) for i, (v, color) in enumerate(zip(order, _palette(n)))}
    for v, t in lr_lines(steps, order):
        i, color = place[v]
        ax.step(t["epoch"], t["lr"] * (1 + 0.01 * (i - n / 2)), where="post", color=color, label=v, lw=1.3)
    ax.set_yscale("log")
    ax.set(xlabel="epoch (optimizer steps / steps per epoch)", ylabel="learning rate (log scale)",
           title="Learning rate per optimizer step (lines nudged apart by 1% to stay visible)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def effects_plot(effects: pd.DataFrame, path: Path) -> Path:
    """Each estimable effect with its 95% interval, sorted by size (points); aliases in the labels."""
    t = effects.assign(size=effects["effect"].abs()).sort_values("size")
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(t) + 1.2))
    y = np.arange(len(t))
    colors = [VERDICT_COLORS.get(v, NOISE_COLOR) for v in t["verdict"]]
    ax.barh(y, 100 * t["effect"], color=colors, alpha=0.8)
    robust = "robust_low" in t and t["robust_low"].notna().any()
    ax.errorbar(100 * t["effect"], y - 0.15 * robust, xerr=[100 * (t["effect"] - t["ci_low"]),
                100 * (t["ci_high"] - t["effect"])], fmt="none", ecolor="black", capsize=3, lw=1, label="pooled")
    if robust:   # the per-seed interval: the effect's own seed-to-seed spread (it decides when it is wider)
        ax.hlines(y + 0.15, 100 * t["robust_low"], 100 * t["robust_high"], color="darkorange", lw=1.4,
                  label="per seed")
        ax.plot(100 * t[["robust_low", "robust_high"]].to_numpy().ravel(), np.repeat(y + 0.15, 2), "|",
                color="darkorange", ms=6)
        ax.legend(fontsize=8, loc="lower right")
    labels = [f"{term}" + (f" (= {al})" if al else "") for term, al in zip(t["term"], t["aliases"])]
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="effect on micro-F1, points (off -> on, averaged over the design)",
           title="Effects with 95% intervals, pooled and per seed (colour: Holm-adjusted verdict)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def interaction_plot(tables: list[tuple[str, str, pd.DataFrame]], path: Path) -> Path:
    """For each pair (a, b): mean micro-F1 with a off/on, one line for b off and one for b on."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.6), squeeze=False)
    for ax, (a, b, t) in zip(axes[0], tables):
        for b_on, style in ((False, "o--"), (True, "s-")):
            sub = t[t[b] == b_on].sort_values(a)
            ax.plot(sub[a].astype(int), 100 * sub["micro_f1"], style, label=f"{b} {'on' if b_on else 'off'}")
        ax.set_xticks([0, 1], [f"{a} off", f"{a} on"])
        ax.set(ylabel="mean micro-F1 %", title=f"{a} x {b}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Interactions: parallel lines mean no interaction")
    fig.tight_layout()
    return _save(fig, path)


def effects_vs_steps_plot(table: pd.DataFrame, path: Path, labels: tuple[str, str] = ("factorial main effect",
                                                                                     "cumulative step")) -> Path:
    """Per trick, its factorial main effect and its cumulative-study step delta, 95% intervals (points)."""
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(table) + 1.4))
    y = np.arange(len(table))[::-1]
    for offset, prefix, label, color in ((0.15, "factorial", labels[0], VARIANT_COLOR),
                                         (-0.15, "step", labels[1], "#ff7f0e")):
        mid = table["factorial_effect" if prefix == "factorial" else "step_delta"].to_numpy()
        lo, hi = table[f"{prefix}_ci_low"].to_numpy(), table[f"{prefix}_ci_high"].to_numpy()
        ax.errorbar(100 * mid, y + offset, xerr=[100 * (mid - lo), 100 * (hi - mid)], fmt="o", color=color,
                    capsize=3, lw=1.2, label=label)
    ax.set_yticks(y, [f"{f}\n({v} vs {a})" for f, v, a in zip(table["factor"], table["variant"], table["against"])],
                  fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="effect on micro-F1, points", title="The same tricks in two designs, 95% intervals")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)

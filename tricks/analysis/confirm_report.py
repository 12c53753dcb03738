"""``CONFIRM.md``, ``confirm.csv`` and ``figures/confirm.png`` of a confirmation folder, from stored runs."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from ..files import write_atomic
from ..running.confirm_plan import SEED_MACHINES
from ..running.provenance import file_at, git_revision
from . import confirm_stats as cs
from .confirm_table import load_confirmation

REPORT = "CONFIRM.md"
MIN_FIGURE_SEEDS = 5   # complete seeds before the estimates figure is drawn


def _p(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:.4f}" if x >= 1e-4 else f"{x:.1e}")


def _pt(x: float, sign: bool = True) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:+.2f}" if sign else f"{x:.2f}")


def _iv(lo: float, hi: float) -> str:
    return "-" if math.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"


def build_confirm_report(out_dir: Path) -> Path:
    from .confirm_figure import estimates_plot

    out_dir = Path(out_dir)
    c = load_confirmation(out_dir)
    t = c.table
    write_atomic(out_dir / "confirm.csv", t.to_csv(index=False, float_format="%.6g"))
    # drawn from 5 complete seeds on: below that a family interval on 1-3 df spans hundreds of points
    fig = estimates_plot(t, out_dir / "figures" / "confirm.png") if t["seeds_complete"].min() >= MIN_FIGURE_SEEDS \
        else None
    reg, m, n = c.registration, len(t), len(c.seeds)
    try:
        machines = json.loads((out_dir / SEED_MACHINES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        machines = {}
    lines = [f"# Confirmation: {c.claims['name']}", "", c.claims.get("description", ""), ""]
    if reg.get("allow_dirty"):
        lines += ["> **Not a registered confirmation**: trained with `--allow-dirty`"
                  + (" from a tree with uncommitted changes" if reg.get("dirty") else "") + ". A trial only.", ""]
    status = (f"**All {n} registered seeds are in.**" if len(c.complete) == n else
              f"**Interim: {len(c.complete)} of {n} registered seeds complete** "
              f"({', '.join(map(str, c.complete)) or 'none'}; {c.runs[0]} of {c.runs[1]} runs); every verdict is *pending* and no Holm-adjusted p "
              "is given until all are in (no claim is judged on part of its seeds: that would be optional "
              "stopping; the unadjusted p-values below are interim and decide nothing).")
    lines += [
        "## Pre-registration", "",
        f"- Claims file `{_short(reg['claims_path'])}`, sha256 `{reg['claims_sha256'][:16]}…`, registered "
        f"{reg['registered_at']} before the first run; a changed claims file, spec, seed list, precision, "
        "thread count or revision is refused in this folder.",
        f"- Code revision `{(reg.get('revision') or 'unknown')[:12]}`"
        + (" (uncommitted changes)" if reg.get("dirty") else " (clean tree)")
        + f"; precision {reg['precision']}; {reg['threads']} intra-op thread(s) per run.",
        f"- Fresh seeds {_seeds(c.seeds)}: none used by the exploratory studies (refused otherwise).",
        "- Machines, per seed (every arm of a seed trains on one machine): "
        + ("; ".join(f"{s}: {machines[str(s)]}" for s in c.seeds if str(s) in machines) or "none yet") + ".",
        "- Specs: " + ", ".join(f"`{_short(v['path'])}` ({v['sha256'][:12]}…)" for v in reg["specs"].values()) + ".",
        _analysis_line(reg.get("revision")),
        "", status, "",
        "## Tests", "",
        f"**One family: the {m} claims below, nothing else.** Each claim's contrast is paired by seed (accuracy "
        "points). A claim is **confirmed** when both its one-sided paired t-test and its exact sign-flip "
        "permutation test (`scipy.stats.permutation_test`) in the claimed direction have Holm-adjusted p below "
        f"{cs.ALPHA} over the {m} claims (each test adjusted on its own); an equivalence claim uses two one-sided "
        "tests within its margin. The family interval is descriptive, not the test: the two-sided "
        f"{100 * (1 - cs.ALPHA / m):.2f}% t interval (Bonferroni over the {m}, each side at {cs.ALPHA}/(2x{m})), "
        "stricter than the one-sided Holm tests that decide, so a claim confirmed near the threshold can have "
        "one that touches zero. The bootstrap interval (95%, percentile, not adjusted, not part of the verdict) "
        "resamples the seeds and, once per draw for all runs (they share one test set), the test images, so it "
        f"also carries the test set's sampling noise; with {n} seeds a percentile bootstrap runs somewhat narrow.",
        "", _power_sentence(n, m), "",
        "| claim | contrast | claimed | exploratory (seeds) | confirmatory | family interval | bootstrap 95% | "
        "t p (Holm) | sign-flip p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        claimed = r["direction"] + (f" (±{r['margin']:g})" if r["direction"] == "equivalent" else "")
        lines.append(
            f"| {r['claim']} | {r['contrast']} | {claimed} | {_pt(r['explor_delta'])} "
            f"{_iv(r['explor_low'], r['explor_high'])} ({r['explor_seeds']}) | {_pt(r['delta'])} "
            f"({r['seeds_complete']} seeds) | {_iv(r['family_low'], r['family_high'])} | "
            f"{_iv(r['boot_low'], r['boot_high'])} | {_p(r['t_p'])} ({_p(r['t_p_holm'])}) | "
            f"{_p(r['sign_flip_p'])} ({_p(r['sign_flip_p_holm'])}) | **{r['verdict']}** |")
    lines += ["", _winners_curse(t), ""]
    if c.corrupted:
        lines += [f"**{len(c.corrupted)} run file(s) are unreadable and count as missing** (the seed stays "
                  "incomplete until they are retrained): "
                  + "; ".join(f"`{Path(p).relative_to(out_dir)}`: {why}" for p, why in sorted(c.corrupted.items())),
                  ""]
    missing = t[t["predictions"] == "missing"]["claim"].tolist()
    if missing:
        lines += [f"Per-image predictions are missing for {', '.join(missing)}: no bootstrap interval there.", ""]
    if fig is not None:
        lines += ["![exploratory vs confirmatory estimates](figures/confirm.png)", ""]
    else:
        lines += [f"The figure of exploratory against confirmatory estimates is drawn once every claim has "
                  f"{MIN_FIGURE_SEEDS} complete seeds.", ""]
    lines += ["Per-seed contrasts, the statements and every p-value: `confirm.csv`. The runs: "
              "`studies/<spec>/runs/` (ordinary study folders, one per source spec).", ""]
    path = out_dir / REPORT
    write_atomic(path, "\n".join(lines))
    return path


def _short(path: str) -> str:
    """A registered path as the repository names it (``benchmarks/claims.toml``), not where the worktree lay."""
    parts = Path(path).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2 \
        else ", ".join(map(str, seeds))


def _power_sentence(n: int, m: int) -> str:
    floor = cs.min_sign_flip_p(n, two_sided=False)
    step = cs.ALPHA / m
    k = math.floor(step * 2 ** n)   # sign patterns as extreme as the observed one that the strictest step allows
    if floor < step:
        return (f"With {n} seeds the smallest one-sided sign-flip p is 2^-{n} = {floor:.5f}, below Holm's "
                f"strictest step {cs.ALPHA}/{m} = {step:.5f}: every claim can be confirmed by the sign-flip test, "
                f"but at that step only with a p of at most {k}/2^{n}: "
                + ("every seed's contrast in the claimed direction." if k == 1 else
                   "every seed in the claimed direction, or all but one whose contrast is the smallest in size."
                   if k == 2 else "(nearly) every seed in the claimed direction.")
                + " Later Holm steps are less strict.")
    return (f"With {n} seeds the smallest one-sided sign-flip p is 2^-{n} = {floor:.5f}, above Holm's strictest "
            f"step {cs.ALPHA}/{m} = {step:.5f}: the sign-flip test cannot confirm the first claim of the family "
            "whatever the data; more seeds are needed.")


def _winners_curse(t) -> str:
    both = t.dropna(subset=["explor_delta", "delta"])
    both = both[both["seeds_complete"] >= 2]
    if both.empty:
        return "The winner's curse (exploratory minus confirmatory estimate) is measured once seeds are in."
    signed = [(r["explor_delta"] - r["delta"]) * (1 if r["explor_delta"] >= 0 else -1) for _, r in both.iterrows()]
    return (f"**The winner's curse, measured**: over the {len(both)} claims with confirmatory seeds, the exploratory "
            f"estimate is larger in magnitude than the confirmatory one by {sum(signed) / len(signed):+.2f} points "
            f"on average (median {statistics.median(signed):+.2f}; positive: the exploratory studies "
            "overstated).")


def _analysis_line(registered: str | None) -> str:
    """Which code drew this report, and whether its tests (``confirm_stats.py``) are the registered ones."""
    head = git_revision((":/tricks",))   # the code's state: results written meanwhile do not count
    rev = (head.get("revision") or "unknown")[:12] + (" with uncommitted code changes" if head.get("dirty") else "")
    path = Path(cs.__file__)
    then = file_at(registered, "tricks/analysis/confirm_stats.py") if registered else None
    same = ("unknown (no git history here)" if then is None else
            "identical to" if then == path.read_bytes() else "**different from**")
    return (f"- Analysis: this report was drawn by revision `{rev}`; its tests (`tricks/analysis/{path.name}`) "
            f"are {same} the registered revision's.")

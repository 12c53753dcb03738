"""Tuning-aware comparisons: every variant trained at every value of a grid of peak learning rates
(a spec's ``[tuning]``, see ``tricks.specs.tuning``), and each trick judged both at the LRs it was
written with and once every arm, the reference included, runs at the LR chosen for it.

- ``selection``: for each variant, the grid value with the best mean over seeds of the final epoch's
  validation metric (``select_on``: ``val_accuracy``, higher is better, or ``val_loss``, lower) is
  its selected (tuned) LR. Means within a relative 1e-9 of each other tie, and a tie goes to the
  smaller LR. A grid value is eligible only when every seed planned for it finished with status ok:
  one with a missing or a diverged run is left out and named in ``missing_points``. No test metric is
  read to select, so the tuned test score is not biased by choosing on the test set.
- ``view``: the study restricted to one grid value per variant, with an ordinary study's manifest (no
  ``tuning``), so summarize, delta_table, deltas_by_epoch, the figures and REPORT.md work on it as on
  any study. The default view holds each variant at its ``default_lr`` (the peak LR it trains at
  untuned; a variant whose default is not a grid value is not in it), the tuned view at its selected LR.
- ``tuned_table``: each variant against the reference in both views, paired by seed, with
  ``stats.delta_table`` (test micro-F1, paired t-test, Holm within each view: ``*_family``, ``*_family_size``).

LRs are per optimizer step; two LRs are the same when they agree to a relative 1e-9. Needs no torch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import TricksError
from ..running.records import record_arm
from ..specs.tuning import SELECT_ON
from .report_findings import fmt_p, pct
from .stats import IMPROVEMENT, NOISE, REGRESSION, delta_table
from .studydata import StudyData

REL_TOL = 1e-9   # LRs (and selection means) closer than this, relative, are the same
SELECTION_COLUMNS = ["variant", "default_lr", "selected_lr", "select_on", "select_mean", "seeds", "at_edge",
                     "edge", "grid_points", "missing_points", "default_in_grid"]
COMPARED = ["n", "seeds", "delta", "ci_low", "ci_high", "t_p", "p_holm", "mde_holm", "verdict", "family", "family_size"]
BEYOND = (IMPROVEMENT, REGRESSION)


def is_tuned(manifest: dict) -> bool:
    """Whether the study's manifest has a ``tuning`` grid."""
    return bool(manifest.get("tuning"))


def _num(x) -> float:
    """A float, NaN for None or anything that is not a number."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def same_lr(a, b) -> bool:
    """Whether two LRs are the same value (relative tolerance REL_TOL); never for None or NaN."""
    a, b = _num(a), _num(b)
    return math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


def on_grid(lr, grid) -> float | None:
    """The grid value ``lr`` is (see same_lr), else None."""
    return next((g for g in grid if same_lr(lr, g)), None)


def grid_of(manifest: dict) -> list[float]:
    return sorted(float(x) for x in manifest["tuning"]["lr"])


def tuning_runs(data: StudyData) -> pd.DataFrame:
    """runs.csv's rows with each run's grid value (``tuned_lr``, NaN when untuned) and its final epoch's
    ``val_accuracy`` and ``val_loss`` (NaN when not recorded), read from the records."""
    runs = data.runs()
    last = [r["history"][-1] if r["history"] else {} for r in data.records]
    runs["tuned_lr"] = [_num(r.get("tuned_lr")) for r in data.records]
    runs["val_accuracy"] = [_num(h.get("val_accuracy")) for h in last]
    runs["val_loss"] = [_num(h.get("val_loss")) for h in last]
    return runs


def _at(runs: pd.DataFrame, variant: str, lr: float) -> pd.DataFrame:
    """The runs of ``variant`` at grid value ``lr``."""
    sub = runs[runs["variant"] == variant]
    return sub[np.array([same_lr(x, lr) for x in sub["tuned_lr"]], dtype=bool)]   # a mask, even when empty


def _why_not(at: pd.DataFrame, seeds: list[int], metric: str) -> str:
    """Why a grid value is not eligible ('' when it is): every planned seed must have finished ok."""
    if not seeds:
        return "no runs planned"
    at = at[at["seed"].isin(seeds)]
    gone, bad = len(set(seeds) - set(at["seed"])), int((at["status"] != "ok").sum())
    why = ([f"{gone} of {len(seeds)} seeds missing"] * bool(gone) + [f"diverged in {bad} seed(s)"] * bool(bad))
    if not why and not np.isfinite(pd.to_numeric(at[metric], errors="coerce").to_numpy(dtype=float)).all():
        why = [f"no {metric} recorded"]
    return ", ".join(why)


def selection(runs: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """One row per variant (spec order): its selected LR on the final epoch's validation metric (see the
    module docstring), the metric's mean over seeds there (``select_mean``), the seeds, whether it is the
    grid's smallest or largest value (``at_edge``; ``edge`` says which), how many grid values were
    eligible, the ones left out and why. ``runs``: ``tuning_runs(data)`` (tuned_lr and the select_on column)."""
    grid, on = grid_of(manifest), manifest["tuning"]["select_on"]
    if on not in SELECT_ON:
        raise TricksError(f"study.json: tuning.select_on must be one of {', '.join(SELECT_ON)}, got {on!r}")
    if on not in runs or "tuned_lr" not in runs:
        raise TricksError(f"selecting an LR needs the runs' tuned_lr and {on} (tuning.tuning_runs gives them)")
    sign = 1.0 if SELECT_ON[on] == "higher" else -1.0
    planned: dict[tuple[str, float], list[int]] = {}
    for r in manifest["runs"]:
        if (g := on_grid(r.get("tuned_lr"), grid)) is not None:
            planned.setdefault((r["variant"], g), []).append(r["seed"])
    rows = []
    for v in manifest["spec"]["variants"]:
        name, default = v["name"], _num(v.get("default_lr"))
        means, left_out = {}, []
        for lr in grid:
            seeds = sorted(planned.get((name, lr), []))
            at = _at(runs, name, lr)
            if why := _why_not(at, seeds, on):
                left_out.append(f"lr={lr:g} ({why})")
            else:
                means[lr] = float(pd.to_numeric(at[at["seed"].isin(seeds)][on]).mean())
        best = max((sign * m for m in means.values()), default=math.nan)
        tied = [lr for lr, m in means.items() if math.isclose(sign * m, best, rel_tol=REL_TOL, abs_tol=1e-12)]
        chosen = min(tied) if tied else math.nan
        edge = next((side for side, g in (("smallest", grid[0]), ("largest", grid[-1])) if same_lr(chosen, g)), "")
        rows.append({"variant": name, "default_lr": default, "selected_lr": chosen, "select_on": on,
                     "select_mean": means.get(chosen, math.nan),
                     "seeds": ",".join(map(str, sorted(planned.get((name, chosen), [])))) if tied else "",
                     "at_edge": bool(edge), "edge": edge, "grid_points": len(means),
                     "missing_points": "; ".join(left_out),
                     "default_in_grid": on_grid(default, grid) is not None})
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def default_choice(sel: pd.DataFrame) -> dict[str, float]:
    """{variant: its default LR} for the variants whose default LR is a grid value."""
    return {r.variant: float(r.default_lr) for r in sel.itertuples() if r.default_in_grid}


def tuned_choice(sel: pd.DataFrame) -> dict[str, float]:
    """{variant: its selected LR} for the variants with one."""
    return {r.variant: float(r.selected_lr) for r in sel.itertuples() if math.isfinite(r.selected_lr)}


def view(data: StudyData, choice: dict[str, float]) -> StudyData:
    """The study with each variant at its one grid value ``choice[variant]``: its records, planned runs
    and missing (arm, seed) at that value only; variants absent from ``choice`` (or NaN there) are left
    out, from the spec's variants too, and a ``base`` left out becomes None. The manifest has no
    ``tuning`` (nor ``default_lr``, ``tuned_lr``), so every function of an ordinary study applies."""
    keep = {v: float(lr) for v, lr in choice.items() if math.isfinite(_num(lr))}

    def chosen(variant: str, lr) -> bool:
        return variant in keep and same_lr(lr, keep[variant])

    m = copy.deepcopy(data.manifest)
    m.pop("tuning", None)
    m["spec"]["variants"] = [v for v in m["spec"]["variants"] if v["name"] in keep]
    for v in m["spec"]["variants"]:
        v.pop("default_lr", None)
        if v.get("base") is not None and v["base"] not in keep:
            v["base"] = None
    runs = [r for r in m["runs"] if chosen(r["variant"], r.get("tuned_lr"))]
    arms = {(record_arm(r), r["seed"]) for r in runs}
    m["runs"] = [{k: x for k, x in r.items() if k != "tuned_lr"} for r in runs]
    return replace(data, manifest=m, records=[r for r in data.records if chosen(r["variant"], r.get("tuned_lr"))],
                   missing=[k for k in data.missing if k in arms], failures=dict(data.failures),
                   corrupted=dict(data.corrupted))


def main_choice(sel: pd.DataFrame, grid: list[float]) -> tuple[dict[str, float], str]:
    """The grid value each variant has in REPORT.md's main body, and how to say it: its default LR (as an
    untuned study); where no default LR is a grid value, its selected LR; else the grid's smallest."""
    if choice := default_choice(sel):
        return choice, "its default LR"
    if choice := tuned_choice(sel):
        return choice, "its selected LR (no variant's default LR is a grid value)"
    return ({v: grid[0] for v in sel["variant"]},
            f"the grid's smallest value, {grid[0]:g} (no default LR is a grid value, none is selected yet)")


def tuned_table(data: StudyData, sel: pd.DataFrame | None = None) -> pd.DataFrame:
    """tuned.csv: one row per non-reference variant against the reference, at the default LRs (columns
    ``default_*``: each variant at its default LR, the reference at its) and at the selected LRs
    (``tuned_*``: each at its own selected LR), paired by seed. Each view's comparisons are one Holm
    family (one ``delta_table`` call on the vs-reference pairs). ``sel``: ``selection`` (computed when None)."""
    sel = selection(tuning_runs(data), data.manifest) if sel is None else sel
    ref, s = data.reference, sel.set_index("variant")
    pairs = [(v, ref, "vs_baseline") for v in data.order if v != ref]
    names = [v for v, _, _ in pairs]
    out = pd.DataFrame({"variant": names, "against": ref,
                        **{c: s[c].reindex(names).to_numpy() for c in ("default_lr", "selected_lr", "at_edge")},
                        "against_default_lr": s["default_lr"].get(ref, math.nan),
                        "against_selected_lr": s["selected_lr"].get(ref, math.nan)})
    for prefix, choice in (("default", default_choice(sel)), ("tuned", tuned_choice(sel))):
        d = delta_table(view(data, choice).runs(), pairs).assign(family=f"{prefix}-LR comparisons")
        for c in COMPARED:
            out[f"{prefix}_{c}"] = d[c].to_numpy()
    return out


@dataclass
class Tuned:
    """A tuned study's comparison: the study, its selection, tuned.csv's table, the LR-sensitivity table,
    and the view REPORT.md's main body shows (``shown`` says which LR each variant has there)."""
    data: StudyData
    selection: pd.DataFrame
    table: pd.DataFrame
    sensitivity: pd.DataFrame
    main: StudyData
    shown: str


def tuned(data: StudyData) -> Tuned:
    """The tuned comparison of a study with a ``tuning`` grid; its main view lists every missing run."""
    runs = tuning_runs(data)
    sel = selection(runs, data.manifest)
    choice, shown = main_choice(sel, grid_of(data.manifest))
    return Tuned(data, sel, tuned_table(data, sel), sensitivity(runs, data.manifest),
                 replace(view(data, choice), missing=list(data.missing)), shown)


def _said(r, p: str, m: int) -> str:
    """'+1.23 pts, paired t-test over 3 seeds, Holm p = 0.012 over the 4 tuned-LR comparisons'."""
    return (f"{pct(getattr(r, f'{p}_delta'), True)} pts, paired t-test over {int(getattr(r, f'{p}_n'))} seeds, "
            f"Holm p = {fmt_p(getattr(r, f'{p}_p_holm'))} over the {m} {p}-LR comparisons")


def _mde(r, p: str) -> str:
    return f"; detectable at 80% power after Holm: {pct(getattr(r, f'{p}_mde_holm'))} pts"


def tuning_findings(table: pd.DataFrame, sel: pd.DataFrame) -> list[str]:
    """Sentences from ``tuned_table`` and ``selection``: which tricks still help (or hurt) once every arm
    is tuned, which only moved the LR (beyond noise at the default LR, within noise once tuned), which
    help only once tuned, and which variants' best LR is at the grid's edge. Each verdict names its test
    and Holm family; a "within noise" one states the effect detectable at 80% power after Holm."""
    out, calm = [], []
    m = {p: int(table[f"{p}_family_size"].max()) if len(table) else 0 for p in ("default", "tuned")}
    for r in table.itertuples():
        dv, tv, v = r.default_verdict, r.tuned_verdict, f"**{r.variant}**"
        d, t = _said(r, "default", m["default"]), _said(r, "tuned", m["tuned"])
        lr = f"{r.selected_lr:g}" if math.isfinite(r.selected_lr) else "n/a"
        if dv in BEYOND and tv == dv:
            verb = "helps" if dv == IMPROVEMENT else "hurts"
            out.append(f"{v} {verb} at its default LR ({d}) and still {verb} at its tuned LR, {lr} ({t}).")
        elif dv in BEYOND and tv == NOISE:
            out.append(f"{v} only moved the LR: {dv} at its default LR ({d}), within noise once each arm is tuned "
                       f"({t}{_mde(r, 'tuned')}): its default-LR effect does not survive tuning.")
        elif tv in BEYOND and dv not in BEYOND:
            verb = "helps" if tv == IMPROVEMENT else "hurts"
            at_default = (f"within noise at its default LR ({d}{_mde(r, 'default')})" if dv == NOISE
                          else f"no verdict at its default LR ({dv})")
            out.append(f"{v} {verb} only once tuned: {tv} at its tuned LR, {lr} ({t}); {at_default}.")
        elif dv in BEYOND and tv in BEYOND:
            out.append(f"{v} reverses once tuned: {dv} at its default LR ({d}), {tv} at its tuned LR, {lr} ({t}).")
        elif dv == NOISE and tv == NOISE:
            calm.append(f"{r.variant} (default LR {pct(r.default_delta, True)} pts, Holm p = "
                        f"{fmt_p(r.default_p_holm)}{_mde(r, 'default')}; tuned LR {pct(r.tuned_delta, True)} pts, "
                        f"Holm p = {fmt_p(r.tuned_p_holm)}{_mde(r, 'tuned')})")
        else:
            out.append(f"{v}: {dv} at its default LR" + (f" ({d})" if dv in BEYOND + (NOISE,) else "")
                       + f"; {tv} at its tuned LR" + (f" ({t}{_mde(r, 'tuned')})" if tv == NOISE else "") + ".")
    if calm:
        ref = table["against"].iloc[0]
        out.append(f"Within noise vs {ref} at both the default and the tuned LRs (paired t-test, Holm over the "
                   f"{m['default']} default-LR and, separately, the {m['tuned']} tuned-LR comparisons): "
                   + "; ".join(calm) + ".")
    for r in sel.itertuples():
        if r.at_edge:
            out.append(f"**{r.variant}**: best LR at the grid's edge ({r.selected_lr:g}, the grid's {r.edge} "
                       f"value): widen the grid; a {'smaller' if r.edge == 'smallest' else 'larger'} LR may be "
                       "better still.")
        if not math.isfinite(r.selected_lr):
            out.append(f"**{r.variant}**: no grid value eligible ({r.missing_points}), so no tuned LR and no "
                       "tuned comparison.")
        elif r.missing_points:
            out.append(f"**{r.variant}**: left out of its LR selection: {r.missing_points}.")
    return out


def sensitivity(runs: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """One row per (variant, grid value): mean, min, max and n over its ok seeds of the final epoch's
    validation accuracy and of test micro-F1 (``runs``: ``tuning_runs(data)``). NaN where none."""
    rows = []
    for v in manifest["spec"]["variants"]:
        for lr in grid_of(manifest):
            at = _at(runs[runs["status"] == "ok"], v["name"], lr)
            row = {"variant": v["name"], "lr": lr}
            for col in ("val_accuracy", "micro_f1"):
                x = pd.to_numeric(at[col], errors="coerce").dropna()
                row.update({f"{col}_{k}": float(getattr(x, k)()) if len(x) else math.nan
                            for k in ("mean", "min", "max")})
                row[f"{col}_n"] = len(x)
            rows.append(row)
    return pd.DataFrame(rows)

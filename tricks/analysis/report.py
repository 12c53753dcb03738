"""Regenerate tables, figures and REPORT.md from a results directory's stored runs alone.

Data flow: runs/*.json + study.json -> studydata tables -> stats tables (summary.csv, deltas.csv)
-> figures/*.png -> REPORT.md; the per-epoch histories -> deltas_by_epoch.csv (by_epoch). Nothing here
trains or imports torch.

A tuned study (``tuning``): runs.csv holds every run of the grid; everything else above is made from
the default view (each variant at its default LR, as an untuned study of it would be), and the tuned
comparison adds selection.csv, tuned.csv, figures/lr_sensitivity.png and REPORT.md's "Tuned
comparison" section (``_tuned_section``).

A study with ``[[workloads]]`` (``transfer``): runs.csv holds every run; each workload gets the report
above of its own runs in ``workloads/<name>/`` (``transfer.workload_view``), and the top level holds
transfer.csv, figures/transfer_forest.png and a REPORT.md that is the transfer report (``_transfer_report``).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from . import by_epoch as E
from . import figures as F
from .render import draw_all
from ..running.records import write_atomic, write_runs_csv
from . import transfer as X
# The text of REPORT.md lives in report_text and report_findings (this module would pass 300 lines);
# its names stay importable from here.
from .report_findings import effect_findings, findings  # noqa: F401
from .report_findings import fmt_p, pct
from .report_header import md_table
from .report_text import FIGURES as TEXT_FIGURES, render_markdown
from .stats import comparisons, delta_table, summarize
from .studydata import StudyData, load_study
from . import tuning as T
from .tuning_figure import CAPTION as TUNED_CAPTION, FIGURE as TUNED_FIGURE, lr_sensitivity
from .transfer_figure import FIGURE as FOREST, forest_plot
from .transfer_text import transfer_markdown

DESIGN_FIGURES = ("effects.png", "interactions.png")   # drawn for factorial and fractional designs only
FACTORIAL_DESIGNS = ("factorial", "fractional")   # the designs whose effects are estimated
INTERACTION_PAIRS = 3                              # strongest two-factor interactions drawn
# Every figure this module can draw, in the order REPORT.md shows them: the per-epoch deltas follow deltas.png.
FIGURES = tuple(f for name in TEXT_FIGURES for f in ((name, E.FIGURE) if name == "deltas.png" else (name,)))
TUNED_FIGURES = (TUNED_FIGURE,)   # drawn for tuned studies only, shown in the Tuned comparison section
WORKLOADS_DIR = "workloads"       # a multi-workload study's per-workload reports: workloads/<name>/


def build_report(directory: Path, data: StudyData | None = None) -> Path:
    """Every table, figure and REPORT.md of the study in ``directory`` (``data``: it, loaded; else read)."""
    data = data or load_study(directory)
    directory = Path(directory)
    write_runs_csv(directory, data.records, order=data.order)   # every run, at every grid value (and workload)
    if X.is_multi(data.manifest):
        return _transfer_report(directory, data)
    return _study_report(directory, data)


def _study_report(directory: Path, data: StudyData) -> Path:
    """The report of one study (or one workload's view of one) written into ``directory``, runs.csv aside."""
    tune = T.tuned(data) if T.is_tuned(data.manifest) else None
    if tune:
        write_atomic(directory / "selection.csv", tune.selection.to_csv(index=False, float_format="%.6g"))
        write_atomic(directory / "tuned.csv", tune.table.to_csv(index=False, float_format="%.6g"))
        data = tune.main
    runs = data.runs()
    order = data.order
    summary = summarize(runs, order)
    pairs = comparisons(data.manifest["spec"]["variants"], data.reference)
    deltas = delta_table(runs, pairs)
    history = data.history()
    by_epoch = E.deltas_by_epoch(history, runs, pairs)
    write_atomic(directory / "summary.csv", summary.to_csv(index=False, float_format="%.6g"))
    write_atomic(directory / "deltas.csv", deltas.to_csv(index=False, float_format="%.6g"))
    write_atomic(directory / E.TABLE, by_epoch.to_csv(index=False, float_format="%.6g"))
    design = data.manifest["spec"].get("design")
    effects = None
    if design and design["kind"] in FACTORIAL_DESIGNS:
        from .effects import effects as estimate

        effects = estimate(runs, design)
        write_atomic(directory / "effects.csv", effects.to_csv(index=False, float_format="%.6g"))
        if design["kind"] == "factorial":   # exploratory: each factor's effect at levels of the others
            from .conditional import TABLE, conditional_table

            write_atomic(directory / TABLE, conditional_table(runs, design).to_csv(index=False, float_format="%.6g"))

    figs = directory / "figures"
    jobs = []   # (figure function, its arguments), the slowest first: see render.draw_all
    if data.records:
        present = [v for v in order if v in set(runs["variant"])]
        jobs.append((F.confusion_grid, ({v: data.confusion(v) for v in present}, data.classes,
                                        figs / "confusion_matrices.png")))
        jobs.append((F.learning_curves, (history, present, figs / "learning_curves.png")))
        pcf = data.per_class_f1()
        if not pcf.empty:
            jobs.append((F.per_class_heatmap, (pcf, figs / "per_class_f1.png")))
        if any(r.get("lr_trace") for r in data.records):
            jobs.append((F.lr_trace, (data.lr_steps(), present, figs / "lr_schedule.png")))
        else:   # only runs recorded before the per-step trace existed: the LR of each epoch
            jobs.append((F.lr_schedule, (history, present, figs / "lr_schedule.png")))
        jobs.append((F.micro_f1_bars, (summary[summary["variant"].isin(present)], runs, data.reference,
                                       figs / "micro_f1.png")))
        if len(deltas):
            jobs.append((F.delta_bars, (deltas, data.reference, figs / "deltas.png")))
        if len(by_epoch):
            jobs.append((E.deltas_by_epoch_plot, (by_epoch, pairs, figs / E.FIGURE)))
        if effects is not None and effects["effect"].notna().any():
            from .effects import interaction_means

            jobs.append((F.effects_plot, (effects, figs / "effects.png")))
            inter = effects[effects["kind"] == "interaction"].assign(size=lambda t: t["effect"].abs())
            pairs = [tuple(term.split("*")) for term in inter.sort_values("size", ascending=False)["term"]]
            if pairs:
                jobs.append((F.interaction_plot, ([(a, b, interaction_means(runs, design, a, b))
                                                   for a, b in pairs[:INTERACTION_PAIRS]], figs / "interactions.png")))
    if tune and tune.data.records:
        jobs.append((lr_sensitivity, (tune.sensitivity, tune.selection, figs / TUNED_FIGURE)))
    drawn = {p.name for p in draw_all(jobs)}
    path = directory / "REPORT.md"
    write_atomic(path, render_markdown(data, summary, deltas, drawn, effects,
                                       _tuned_section(tune, TUNED_FIGURE in drawn) if tune else ()))
    return path


def _lr(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and math.isfinite(x) else "n/a"


def _tuned_section(t: T.Tuned, drawn: bool) -> list[str]:
    """REPORT.md's Tuned comparison: the procedure, the selection, default vs tuned deltas, findings, figure."""
    m, sel, d = t.data.manifest, t.selection, t.table
    grid, on, ref = T.grid_of(m), m["tuning"]["select_on"], t.data.reference
    better = "highest" if T.SELECT_ON[on] == "higher" else "lowest"
    mean = pct if on == "val_accuracy" else (lambda x: "n/a" if x != x else f"{x:.4g}")
    out = sel[~sel["default_in_grid"]]
    recs = t.data.records
    lines = ["## Tuned comparison", "",
             f"Every variant was trained at each of the {len(grid)} peak learning rates of the grid "
             f"({', '.join(f'{x:g}' for x in grid)}; per optimizer step, the variant's schedule scaled to peak "
             f"there) with every seed: {len(recs)} finished runs, "
             f"{sum(r.get('wall_seconds', 0.0) for r in recs) / 60:.1f} min of compute summed over them (the "
             "compute under 'What was run' counts the main view's runs only). A variant's selected LR is the grid "
             f"value with the {better} mean over seeds "
             f"of the final epoch's `{on}`, on the validation split only (no test metric is read); ties go to the "
             "smaller LR, and a grid value counts only if every planned seed of it finished without diverging. "
             f"The tuned comparison pits each variant at its own selected LR against {ref} at {ref}'s selected LR, "
             "paired by seed, with the same statistics as the deltas above (paired t-test on test micro-F1, 95% "
             f"t-interval, Holm-adjusted over the {int(d['tuned_t_p'].notna().sum())} tuned comparisons, MDE at "
             "Holm's strictest step); the default columns make the same comparisons at each variant's default LR, "
             f"Holm-adjusted over their own {int(d['default_t_p'].notna().sum())} (vs {ref} only). The LR is chosen "
             "on validation, so the tuned test result is read at a value picked without looking at the test set: "
             f"it is not biased by test-set selection. The sections above show each variant at {t.shown}."
             + (" Not in them (default LR not a grid value): " + ", ".join(
                 f"{r.variant} ({_lr(r.default_lr)})" for r in out.itertuples()) + "." if len(out) else ""), "",
             "### Selected learning rates", "", md_table(pd.DataFrame({
                 "variant": sel["variant"], "default LR": sel["default_lr"].map(_lr),
                 "default in grid": sel["default_in_grid"].map({True: "yes", False: "no"}),
                 "selected LR": sel["selected_lr"].map(_lr), f"mean {on}": sel["select_mean"].map(mean),
                 "seeds": sel["seeds"], "eligible grid values": [f"{n} of {len(grid)}" for n in sel["grid_points"]],
                 "at edge": [f"yes ({e})" if a else "no" for a, e in zip(sel["at_edge"], sel["edge"])],
                 "left out": sel["missing_points"].map(lambda x: x or "none")})), ""]
    if len(d):
        cols = {"variant": d["variant"], "against": d["against"]}
        for p, lr in (("default", "default_lr"), ("tuned", "selected_lr")):
            cols.update({
                f"{p} LR": [f"{_lr(a)} (vs {_lr(b)})" for a, b in zip(d[lr], d[f"against_{lr}"])],
                f"{p} n": d[f"{p}_n"], f"{p} delta pts": d[f"{p}_delta"].map(lambda x: pct(x, True)),
                f"{p} 95% CI": [f"[{pct(a, True)}, {pct(b, True)}]"
                                for a, b in zip(d[f"{p}_ci_low"], d[f"{p}_ci_high"])],
                f"{p} Holm p": d[f"{p}_p_holm"].map(fmt_p), f"{p} verdict": d[f"{p}_verdict"]})
        lines += [f"### Default vs tuned LRs: paired deltas in micro-F1 vs {ref}", "", md_table(pd.DataFrame(cols)), ""]
    lines += ["### Tuning findings", "", *[f"- {f}" for f in T.tuning_findings(d, sel)], ""]
    if drawn:
        lines += [f"### {TUNED_CAPTION}", "", f"![{TUNED_FIGURE}](figures/{TUNED_FIGURE})", ""]
    return lines + ["Files: `selection.csv` (one row per variant: its selected LR, the grid values left out and "
                    "why), `tuned.csv` (one row per comparison: `default_*` and `tuned_*` columns); `runs.csv` "
                    "holds every run of the grid (`tuned_lr`, `val_accuracy`).", ""]



def _transfer_report(directory: Path, data: StudyData) -> Path:
    """Each workload's report in workloads/<name>/ (its runs.csv too), then transfer.csv, the forest plot
    and the transfer REPORT.md at the top."""
    views = {}
    for w in X.workloads_of(data.manifest):
        view = views[w["name"]] = X.workload_view(data, w["name"])
        spec = view.manifest["spec"]
        about = (f"Workload `{w['name']}` (model `{w['model']}`) of the study `{spec['name']}`: every number below "
                 f"is from this workload's runs alone; [the transfer report](../../REPORT.md) sets the workloads "
                 "side by side.")
        shown = replace(view, manifest={**view.manifest, "spec": {
            **spec, "name": f"{spec['name']}, workload {w['name']}",
            "description": about + (f" {spec['description']}" if spec.get("description") else "")}})
        write_runs_csv(directory / WORKLOADS_DIR / w["name"], view.records, order=view.order)
        _study_report(directory / WORKLOADS_DIR / w["name"], shown)
    table = X.transfer_table(data)
    verdicts = X.transfer_verdicts(table)
    write_atomic(directory / X.TABLE, table.to_csv(index=False, float_format="%.6g"))
    drawn = bool(len(table)) and bool(forest_plot(table, directory / "figures" / FOREST))
    path = directory / "REPORT.md"
    write_atomic(path, transfer_markdown(data, views, table, verdicts, drawn, WORKLOADS_DIR))
    return path


if __name__ == "__main__":  # pragma: no cover
    import sys

    t = time.perf_counter()
    print(build_report(Path(sys.argv[1])), f"{time.perf_counter() - t:.1f}s")

"""Regenerate tables, figures and REPORT.md from a results directory's stored runs alone.

Data flow: runs/*.json + study.json -> studydata tables -> stats tables (summary.csv, deltas.csv)
-> figures/*.png -> REPORT.md; the per-epoch histories -> deltas_by_epoch.csv (by_epoch). Nothing here
trains or imports torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import by_epoch as E
from . import figures as F
from .render import draw_all
from ..running.records import write_atomic, write_runs_csv
# The text of REPORT.md lives in report_text and report_findings (this module would pass 300 lines);
# its names stay importable from here.
from .report_findings import effect_findings, findings  # noqa: F401
from .report_text import FIGURES as TEXT_FIGURES, render_markdown
from .stats import comparisons, delta_table, summarize
from .studydata import StudyData, load_study

DESIGN_FIGURES = ("effects.png", "interactions.png")   # drawn for factorial and fractional designs only
FACTORIAL_DESIGNS = ("factorial", "fractional")   # the designs whose effects are estimated
INTERACTION_PAIRS = 3                              # strongest two-factor interactions drawn
# Every figure this module can draw, in the order REPORT.md shows them: the per-epoch deltas follow deltas.png.
FIGURES = tuple(f for name in TEXT_FIGURES for f in ((name, E.FIGURE) if name == "deltas.png" else (name,)))


def build_report(directory: Path, data: StudyData | None = None) -> Path:
    data = data or load_study(directory)
    directory = Path(directory)
    runs = data.runs()
    order = data.order
    write_runs_csv(directory, data.records, order=order)
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
    drawn = draw_all(jobs)
    path = directory / "REPORT.md"
    write_atomic(path, render_markdown(data, summary, deltas, {p.name for p in drawn}, effects))
    return path



if __name__ == "__main__":  # pragma: no cover
    import sys

    t = time.perf_counter()
    print(build_report(Path(sys.argv[1])), f"{time.perf_counter() - t:.1f}s")

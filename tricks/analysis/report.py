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
from .report_text import FIGURES as TEXT_FIGURES, _cpus, _revisions, _table, render_markdown
from .stats import comparisons, delta_table, summarize
from .studydata import StudyData, load_study
from . import tuning as T
from .tuning_figure import CAPTION as TUNED_CAPTION, FIGURE as TUNED_FIGURE, lr_sensitivity
from .transfer_figure import CAPTION as FOREST_CAPTION, FIGURE as FOREST, forest_plot

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
    lines = ["## Tuned comparison", "",
             f"Every variant was trained at each of the {len(grid)} peak learning rates of the grid "
             f"({', '.join(f'{x:g}' for x in grid)}; per optimizer step, the variant's schedule scaled to peak "
             f"there) with every seed. A variant's selected LR is the grid value with the {better} mean over seeds "
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
             "### Selected learning rates", "", _table(pd.DataFrame({
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
        lines += [f"### Default vs tuned LRs: paired deltas in micro-F1 vs {ref}", "", _table(pd.DataFrame(cols)), ""]
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
    write_atomic(path, _transfer_markdown(data, views, table, verdicts, drawn))
    return path


def _counted(values: list, fallback: str = "n/a") -> str:
    """'122,570', '122,570 to 123,082' (values differ between runs), or ``fallback``."""
    v = sorted(set(values))
    return fallback if not v else f"{v[0]:,}" if len(v) == 1 else f"{v[0]:,} to {v[-1]:,}"


def _workload_rows(views: dict[str, StudyData], workloads: list[dict]) -> pd.DataFrame:
    """What ran on each workload: model, parameters (the reference's runs), epochs, training images, runs."""
    rows = []
    for w in workloads:
        v = views[w["name"]]
        m, recs = v.manifest, v.records
        ref = [r for r in recs if r["variant"] == v.reference] or recs
        images = m["train_subset"] or m["dataset"].get("train_images") or "n/a"
        rows.append({"workload": w["name"], "model": f"`{w['model']}`",
                     "parameters": _counted([r["parameters"] for r in ref if "parameters" in r]),
                     "epochs": m["epochs"],
                     "training images": _counted([r["train_images"] for r in recs if "train_images" in r],
                                                 f"{images:,}" if isinstance(images, int) else images),
                     "runs finished": f"{len(recs)} of {len(m['runs'])}",
                     "report": f"[{WORKLOADS_DIR}/{w['name']}/REPORT.md]({WORKLOADS_DIR}/{w['name']}/REPORT.md)"})
    return pd.DataFrame(rows)


def _cell(r) -> str:
    """'+1.20 [+0.50, +1.90] improvement'; what is not there is left out ('too few seeds')."""
    ci = f" [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}]" if math.isfinite(r.ci_low) else ""
    return (f"{pct(r.delta, True)}{ci} " if math.isfinite(r.delta) else "") + r.verdict


def _transfer_markdown(data: StudyData, views: dict[str, StudyData], table: pd.DataFrame, verdicts: pd.DataFrame,
                       drawn: bool) -> str:
    """The top-level REPORT.md of a multi-workload study: what ran, the transfer table, findings, figure, procedure."""
    m, recs, ws = data.manifest, data.records, X.workloads_of(data.manifest)
    ds, ref = m["dataset"], data.reference
    devices = sorted({(r.get("provenance") or {}).get("device", "?") for r in recs})
    lines = [f"# Transfer report: {m['spec']['name']}", "",
             "_Generated by `tricks figures` from the stored runs in this directory; every number below is "
             "computed from them, so regenerating it gives the same file._", "",
             m["spec"].get("description", ""), "", "## What was run", "",
             f"- spec: `{m['spec'].get('path', '')}`: {len(data.order)} variants on {len(ws)} workloads, every "
             f"variant on every workload with the same seeds ({', '.join(map(str, m['seeds']))}); batch: "
             f"{m['batch_size']}; precision: {m.get('precision', 'fp32')}",
             f"- dataset: {ds.get('kind')} at `{ds.get('root')}`, {ds.get('train_images')} train / "
             f"{ds.get('test_images')} test images, sha256 of the decoded tensors `{ds.get('sha256', '')[:16]}…`",
             f"- device: {', '.join(devices) or 'n/a'}; CPU: {', '.join(_cpus(recs)) or 'n/a'}; code: git "
             f"{', '.join(_revisions(recs)) or 'unknown'}; compute: "
             f"{sum(r.get('wall_seconds', 0.0) for r in recs) / 60:.1f} min summed over {len(recs)} finished runs",
             f"- missing runs: {len(data.missing)}; corrupted run files: {len(data.corrupted)} (each workload's "
             "report names its own)", "", _table(_workload_rows(views, ws)), ""]
    lines += ["## Transfer findings", "", *[f"- {f}" for f in X.transfer_findings(table, verdicts)], ""]
    if len(verdicts):
        cols = {"trick": [f"{v} vs {ref}" for v in verdicts["variant"]]}
        for w in ws:
            at = table[table["workload"] == w["name"]].set_index("variant")
            cols[w["name"]] = [_cell(r) for r in at.loc[verdicts["variant"]].itertuples()]
        pooled = table[table["workload"] == X.POOLED].set_index("variant").loc[verdicts["variant"]]
        cols["pooled [RE 95% CI]"] = [_cell(r).strip() or "none" for r in pooled.itertuples()]
        cols["Hartung-Knapp 95% CI"] = [f"[{pct(a, True)}, {pct(b, True)}]" if a == a else "n/a"
                                        for a, b in zip(pooled["hk_ci_low"], pooled["hk_ci_high"])]
        cols["I²"] = [f"{100 * x:.0f}%" if x == x else "n/a" for x in pooled["i2"]]
        cols["transfer"] = list(verdicts["transfer"])
        lines += [f"## Transfer table: paired deltas in micro-F1 vs {ref} (points, 95% CI, Holm verdict)", "",
                  _table(pd.DataFrame(cols)), ""]
    if drawn:
        lines += ["## Figure", "", f"### {FOREST_CAPTION}", "", f"![{FOREST}](figures/{FOREST})", ""]
    lines += ["## Procedure", "",
              "Each workload is analysed as a study of its own (its report, linked above): each trick against "
              f"{ref}, paired on the seeds where both finished, by a paired t-test on test micro-F1 with a 95% "
              "t-interval, Holm-adjusted over that workload's comparisons (its deltas.csv). A trick **transfers** "
              "when it is beyond noise (Holm p < 0.05) with the same sign on every workload, **reverses** when it "
              "is beyond noise in opposite directions on two workloads, **depends on the workload** when it is "
              "beyond noise on some and within noise on others, is **within noise everywhere** when within noise on "
              "each, and is **not decided** when a workload has no verdict (too few seeds, diverged) and the "
              "others agree; no adjustment is made across workloads, so 'transfers' asks for a "
              "separate Holm-significant result on each. The pooled estimate is a random-effects meta-analysis "
              f"of the workloads' deltas ({X.METHOD_NAME}: statsmodels' `combine_effects`, "
              f"`method_re=\"{X.METHOD_RE}\"`, which keeps tau² at or above zero; its DerSimonian-Laird option "
              "does not), each workload's variance delta_std²/n taken as known and weighted by 1/(variance + "
              "tau²); the interval is its normal 95% interval. tau² is the variance of the true effect between "
              "workloads, I² = max(0, (Q - (k - 1)) / Q) the share of the spread between workloads beyond what "
              "seed noise explains, and the Q-test p tests equal effects on every workload. With few seeds the "
              "variances are themselves noisy, and with few workloads tau² is imprecise and the normal interval "
              "optimistic: transfer.csv also gives the Hartung-Knapp interval (`hk_ci_low`, `hk_ci_high`, a t "
              "with k - 1 df) and the fixed-effect estimate (`fe_*`). The classes do not use the pooled row.", "",
              "## Files", "", "- `transfer.csv`: one row per (trick, workload) from that workload's deltas, and "
              "one `pooled` row per trick (`k`, `tau2`, `i2`, `q`, `q_p`, `fe_*`, `hk_ci_*`, `note`)",
              f"- `{WORKLOADS_DIR}/<name>/`: each workload's runs.csv, summary.csv, deltas.csv, deltas_by_epoch.csv "
              "(effects.csv for designs), figures and REPORT.md",
              "- `runs.csv`: every run (its `workload`, `model` and `dataset` columns); `runs/*.json`: each run",
              f"- regenerate everything here with `tricks figures --results {data.directory}` (no training)", ""]
    return "\n".join(lines)

if __name__ == "__main__":  # pragma: no cover
    import sys

    t = time.perf_counter()
    print(build_report(Path(sys.argv[1])), f"{time.perf_counter() - t:.1f}s")

"""Regenerate tables, figures and REPORT.md from a results directory's stored runs alone.

Data flow: runs/*.json + study.json -> studydata tables -> stats tables (summary.csv, deltas.csv)
-> figures/*.png -> REPORT.md. Nothing here trains or imports torch.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from . import figures as F
from .render import draw_all
from ..running.records import run_stem, write_atomic, write_runs_csv
from .stats import IMPROVEMENT, NOISE, REGRESSION, UNDECIDED, comparisons, delta_table, summarize
from .studydata import StudyData, load_study

FIGURES = ("micro_f1.png", "deltas.png", "effects.png", "interactions.png", "confusion_matrices.png",
           "per_class_f1.png", "learning_curves.png", "lr_schedule.png")
DESIGN_FIGURES = ("effects.png", "interactions.png")   # drawn for factorial and fractional designs only
FACTORIAL_DESIGNS = ("factorial", "fractional")   # the designs whose effects are estimated
INTERACTION_PAIRS = 3                              # strongest two-factor interactions drawn


def build_report(directory: Path, data: StudyData | None = None) -> Path:
    data = data or load_study(directory)
    directory = Path(directory)
    runs = data.runs()
    order = data.order
    write_runs_csv(directory, data.records, order=order)
    summary = summarize(runs, order)
    deltas = delta_table(runs, comparisons(data.manifest["spec"]["variants"], data.reference))
    write_atomic(directory / "summary.csv", summary.to_csv(index=False, float_format="%.6g"))
    write_atomic(directory / "deltas.csv", deltas.to_csv(index=False, float_format="%.6g"))
    design = data.manifest["spec"].get("design")
    effects = None
    if design and design["kind"] in FACTORIAL_DESIGNS:
        from .effects import effects as estimate

        effects = estimate(runs, design)
        write_atomic(directory / "effects.csv", effects.to_csv(index=False, float_format="%.6g"))

    figs = directory / "figures"
    jobs = []   # (figure function, its arguments), the slowest first: see render.draw_all
    if data.records:
        history = data.history()
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


# ---------------------------------------------------------------------------------------------

def _pct(x: float, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _p(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _revisions(records: list[dict]) -> list[str]:
    """The git revisions the runs were made at, each marked if the tree had uncommitted changes."""
    dirty: dict[str, bool] = {}
    for r in records:
        g = (r.get("provenance") or {}).get("git") or {}
        rev = (g.get("revision") or "unknown")[:12]
        dirty[rev] = dirty.get(rev, False) or bool(g.get("dirty"))
    return [f"`{rev}`" + (" (with uncommitted changes)" if d else "") for rev, d in sorted(dirty.items())]


def _elapsed_minutes(records: list[dict]) -> float:
    """Wall time of the study as the runs record it: first start (finish minus run time) to last finish."""
    times = [(datetime.strptime(r["finished_at"], "%Y-%m-%dT%H:%M:%S%z").timestamp(), r.get("wall_seconds", 0.0))
             for r in records if r.get("finished_at")]
    if not times:
        return math.nan
    return (max(t for t, _ in times) - min(t - w for t, w in times)) / 60


def _rel(path: str, directory: Path) -> str:
    p = Path(path)
    try:
        return str(p.relative_to(directory))
    except ValueError:
        return str(p)


def _cpus(recs: list[dict]) -> list[str]:
    """Each CPU model the runs trained on, with its run count where there is more than one."""
    counts: dict[str, int] = {}
    for r in recs:
        cpu = (r.get("provenance") or {}).get("cpu", "?")
        counts[cpu] = counts.get(cpu, 0) + 1
    return list(counts) if len(counts) < 2 else [f"{c} ({n} runs)" for c, n in counts.items()]


def _denormals(recs: list[dict]) -> str:
    """How the CPU runs treated subnormal floats (engine.FLUSH_DENORMALS), when any record says."""
    said = [p["denormals"] for p in ((r.get("provenance") or {}) for r in recs) if "denormals" in p]
    if not said:
        return ""
    flushed = said.count("flushed")
    return (f"; subnormal floats flushed to zero in {flushed} of {len(recs)} runs (the others kept them; "
            "see README, 'Subnormals flushed to zero')" if flushed < len(recs) else
            "; subnormal floats flushed to zero")


def effect_findings(effects: pd.DataFrame | None) -> list[str]:
    """Sentences generated from the effects table of a factorial or fractional design."""
    from .effects import NOT_ESTIMABLE

    if effects is None or not len(effects):
        return []
    if (effects["verdict"] == NOT_ESTIMABLE).all():
        return ["Effects: not estimable yet; the finished runs do not cover the design (see Missing runs)."]

    def items(rows: pd.DataFrame) -> str:
        return "; ".join(f"**{r.term}** {_pct(r.effect, True)} pts [{_pct(r.ci_low, True)}, {_pct(r.ci_high, True)}]"
                         + (f" (aliased with `{r.aliases}`)" if r.aliases else "") for r in rows.itertuples())

    out = []
    for kind, label in (("main", "Main effects"), ("interaction", "Two-factor interactions")):
        rows = effects[effects["kind"] == kind]
        beyond = rows[rows["verdict"].isin([IMPROVEMENT, REGRESSION])].sort_values("effect", ascending=False)
        noise = rows[rows["verdict"] == NOISE]
        if len(beyond):
            out.append(f"{label} beyond seed noise (Holm over the {len(effects)} effects): {items(beyond)}.")
        if len(noise):
            out.append(f"{label} within noise: " + ", ".join(f"{r.term} ({_pct(r.effect, True)} pts)"
                                                             for r in noise.itertuples()) + ".")
    return out


def findings(data: StudyData, summary: pd.DataFrame, deltas: pd.DataFrame) -> list[str]:
    """Sentences generated from the delta table; no claim here is written by hand."""
    out = []
    n_seeds = len(data.manifest["seeds"])
    vb = deltas[deltas["kind"] == "vs_baseline"]
    for label, verdict in (("Helped beyond seed noise", IMPROVEMENT), ("Hurt beyond seed noise", REGRESSION)):
        rows = vb[vb["verdict"] == verdict]
        if len(rows):
            items = "; ".join(f"**{r.variant}** {_pct(r.delta, True)} pts [{_pct(r.ci_low, True)}, "
                              f"{_pct(r.ci_high, True)}]" for r in rows.itertuples())
            out.append(f"{label} (micro-F1 vs {data.reference}, 95% CI): {items}.")
    noise = vb[vb["verdict"] == NOISE]
    if len(noise):
        out.append(f"Within noise vs {data.reference} (Holm-adjusted p >= 0.05): "
                   + ", ".join(f"{r.variant} ({_pct(r.delta, True)} pts)" for r in noise.itertuples()) + ".")
    mde = deltas["mde"].dropna() if "mde" in deltas else []
    if len(mde):
        need = deltas["seeds_for_target"].dropna()
        out.append(f"What these seeds could detect (80% power, two-sided 5%): effects of {_pct(mde.min())} to "
                   f"{_pct(mde.max())} points, depending on the comparison's spread; a 0.5-point effect would need "
                   f"{int(need.min())} to {int(need.max())} paired seeds. \"Within noise\" is not \"no effect\": "
                   "smaller effects than these are invisible here." if len(need) else
                   f"What these seeds could detect (80% power): {_pct(mde.min())} to {_pct(mde.max())} points.")
    undecided = vb[vb["verdict"] == UNDECIDED]
    if len(undecided):
        out.append("Not decidable with fewer than 2 paired seeds: " + ", ".join(undecided["variant"]) + ".")
    steps = deltas[deltas["kind"] == "vs_base"]
    if len(steps):
        parts = [f"{r.variant} over {r.against}: {_pct(r.delta, True)} pts ({r.verdict})" for r in steps.itertuples()]
        out.append("Each cumulative step against the variant it builds on: " + "; ".join(parts) + ".")
    ok = summary.dropna(subset=["micro_f1_mean"])
    if len(ok):
        best = ok.loc[ok["micro_f1_mean"].idxmax()]
        out.append(f"Highest mean micro-F1: **{best['variant']}** at {_pct(best['micro_f1_mean'])}% "
                   f"over {int(best['runs_ok'])} seed(s).")
    if n_seeds < 3:
        out.append(f"Only {n_seeds} seed(s) were run: intervals are wide or absent; run more seeds "
                   "(`--seeds 0,1,2,3,4`) before drawing conclusions.")
    return out


def _table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def render_markdown(data: StudyData, summary: pd.DataFrame, deltas: pd.DataFrame, drawn: set[str],
                    effects: pd.DataFrame | None = None) -> str:
    m = data.manifest
    ds = m["dataset"]
    recs = data.records
    prov = recs[0]["provenance"] if recs else {}
    compute = sum(r.get("wall_seconds", 0.0) for r in recs)
    finished = sorted(r.get("finished_at", "") for r in recs if r.get("finished_at"))
    elapsed = _elapsed_minutes(recs)
    engines = sorted({str((r.get("settings") or {}).get("engine", "?")) for r in recs})
    devices = sorted({r["provenance"].get("device", "?") + (" / " + r["provenance"]["gpu"]
                                                            if r["provenance"].get("gpu") else "")
                      for r in recs})
    lines = [f"# Report: {m['spec']['name']}", "",
             "_Generated by `tricks figures` from the stored runs in this directory; every number below is "
             "computed from them, so regenerating it gives the same file._", "",
             m["spec"].get("description", ""), "", "## What was run", "",
             f"- spec: `{m['spec'].get('path', '')}` ({len(data.order)} variants); seeds: "
             f"{', '.join(map(str, m['seeds']))}; epochs: {m['epochs']}; batch: {m['batch_size']}; "
             f"training images: {m['train_subset'] or ds.get('train_images')} "
             f"({'class-balanced subset' if m['train_subset'] else 'the whole training split'}); "
             f"precision: {m.get('precision', 'fp32')}"
             + (f"; validation: {m['validation']} class-balanced images held out of training (read by callbacks "
                "and metric-driven schedules; final metrics are on the test split)" if m.get("validation") else ""),
             f"- dataset: {ds.get('kind')} at `{ds.get('root')}`, {ds.get('train_images')} train / "
             f"{ds.get('test_images')} test images, sha256 of the decoded tensors `{ds.get('sha256', '')[:16]}…`",
             f"- device: {', '.join(devices) or 'n/a'}; CPU: {', '.join(_cpus(recs)) or 'n/a'}; "
             f"workers: {m.get('workers')}; torch {prov.get('packages', {}).get('torch', '?')}"
             + _denormals(recs),
             f"- code: git {', '.join(_revisions(recs)) or 'unknown'}; engine version {', '.join(engines) or '?'} "
             "(part of every run's settings: runs from another engine version are trained again, never mixed)",
             f"- compute: {compute / 60:.1f} min summed over {len(recs)} finished runs"
             + (f"; elapsed from the first run's start to the last run's end: {elapsed:.1f} min, any pauses "
                f"between invocations included (runs finished from {finished[0]} to {finished[-1]})"
                if finished else ""), ""]
    design = m["spec"].get("design")
    if design:
        lines += ["## Design", "",
                  f"- {design['kind']} design over {len(design['factors'])} factors, {len(design['matrix'])} variants"
                  + (f", resolution {design['resolution']}" if design.get("resolution") else ""),
                  *[f"- factor `{f['name']}`: " + ", ".join(t["name"] for t in f["tricks"]) for f in design["factors"]]]
        if design.get("generators"):
            lines += ["- generators: " + "; ".join(f"`{g}`" for g in design["generators"])]
        if design.get("aliases"):
            lines += ["- aliases (effects that this design cannot tell apart):", "",
                      *[f"  - `{a}`" for a in design["aliases"]]]
        lines += [""]
    if data.missing:
        lines += ["## Missing runs", "",
                  f"{len(data.missing)} planned run(s) have no finished result (not run yet, interrupted, or "
                  "failed); the statistics below use only the finished ones:",
                  ", ".join(f"{v} seed {s}" for v, s in data.missing), ""]
        failed = [(v, s, data.failures[run_stem(v, s)]["reason"]) for v, s in data.missing
                  if run_stem(v, s) in data.failures]
        if failed:
            lines += ["Failed in the latest invocation:", "",
                      *[f"- {v} seed {s}: {reason.splitlines()[0]}" for v, s, reason in failed], ""]
    if data.corrupted:
        lines += ["## Corrupted run files", "",
                  f"{len(data.corrupted)} run file(s) exist but cannot be used (torn, edited or from another tool); "
                  "they are left out of everything below. Delete them and run the same 'tricks ablation' command "
                  "to train those runs again:", "",
                  *[f"- `{_rel(p, data.directory)}`: {why}" for p, why in data.corrupted.items()], ""]
    diverged = [r for r in recs if r["status"] == "diverged"]
    if diverged:
        lines += ["## Diverged runs", "", *[f"- {r['variant']} seed {r['seed']}: {r.get('stop_reason', '')}"
                                            for r in diverged], ""]
    lines += ["## Findings", "", *[f"- {f}" for f in effect_findings(effects) + findings(data, summary, deltas)], "",
              f"Verdicts: the family is every comparison in the table below ({len(deltas)}); a delta is an "
              "improvement or a regression when its paired t-test p-value, Holm-adjusted over that family, is "
              "below 0.05; otherwise it is within noise. The 95% t-intervals are per comparison (not adjusted) "
              "and clipped to the metric's range, as are the summary's. MDE: the smallest delta this comparison "
              "detects with 80% power; P(better): the share of seeds where the variant beats the one it is "
              "compared with. The exact sign-flip permutation p-value is shown too; with n seeds it cannot go "
              f"below 2/2^n ({2 / 2 ** max(1, len(m['seeds'])):.3g} here).", ""]
    s = summary.copy()
    show = pd.DataFrame({
        "variant": s["variant"], "seeds ok": s["runs_ok"], "diverged": s["runs_diverged"],
        "micro-F1 %": s["micro_f1_mean"].map(_pct), "std": s["micro_f1_std"].map(_pct),
        "95% CI": [f"[{_pct(a)}, {_pct(b)}]" if math.isfinite(a) else n or "n/a"
                   for a, b, n in zip(s["micro_f1_ci_low"], s["micro_f1_ci_high"], s["note"])],
        "macro-F1 %": s["macro_f1_mean"].map(_pct)})
    lines += ["## Summary (micro-F1 = accuracy for single-label data)", "", _table(show), ""]
    if len(deltas):
        d = deltas
        show = pd.DataFrame({
            "variant": d["variant"], "against": d["against"], "n": d["n"],
            "delta pts": d["delta"].map(lambda x: _pct(x, True)),
            "95% CI": [f"[{_pct(a, True)}, {_pct(b, True)}]" for a, b in zip(d["ci_low"], d["ci_high"])],
            "t-test p": d["t_p"].map(_p), "Holm p": d["p_holm"].map(_p), "sign-flip p": d["sign_flip_p"].map(_p),
            "MDE pts": d["mde"].map(_pct), "P(better)": d["p_improve"].map(lambda x: "n/a" if x != x else f"{x:.2f}"),
            "verdict": d["verdict"]})
        lines += ["## Paired deltas (micro-F1)", "", _table(show), ""]
    if effects is not None and len(effects):
        e = effects
        show = pd.DataFrame({
            "term": e["term"], "kind": e["kind"], "effect pts": e["effect"].map(lambda x: _pct(x, True)),
            "95% CI": [f"[{_pct(a, True)}, {_pct(b, True)}]" for a, b in zip(e["ci_low"], e["ci_high"])],
            "p": e["p"].map(_p), "Holm p": e["p_holm"].map(_p), "verdict": e["verdict"],
            "aliased with": e["aliases"].map(lambda a: f"`{a}`" if a else "")})
        lines += ["## Effects (least squares, seed as a block)", "",
                  "Each effect is the change in micro-F1 from the factor's off to its on level, averaged over the "
                  "design; an interaction a*b is half the difference between a's effect with b on and with b off. "
                  "Verdicts: Holm-adjusted p over the effects below. Terms a fractional design cannot tell apart "
                  "are estimated once and their aliases named.", "", _table(show), ""]
    captions = {
        "micro_f1.png": "Micro-F1 per variant: bar at the mean, 95% t-interval, one dot per seed.",
        "deltas.png": f"Paired deltas against {data.reference} with 95% intervals.",
        "effects.png": "Main effects and two-factor interactions with 95% intervals.",
        "interactions.png": "The strongest two-factor interactions: mean micro-F1 at the four combinations.",
        "confusion_matrices.png": "Row-normalized confusion matrices, seeds summed.",
        "per_class_f1.png": "Per-class F1, mean over seeds.",
        "learning_curves.png": "Test accuracy and training loss per epoch (mean; band from worst to best seed).",
        "lr_schedule.png": "Learning rate in each epoch." if not any(r.get("lr_trace") for r in recs)
        else "Learning rate at every optimizer step (first seed of each variant)."}
    if drawn:
        lines += ["## Figures", ""]
        for name in FIGURES:
            if name in drawn:
                lines += [f"### {captions[name]}", "", f"![{name}](figures/{name})", ""]
    lines += ["## Files", "", "- `runs.csv`: one row per finished run; `runs/*.json`: each run's history, "
              "confusion matrix, per-class report and provenance", "- `summary.csv`: one row per variant; "
              "`deltas.csv`: one row per comparison", "- regenerate everything here with "
              f"`tricks figures --results {data.directory}` (no training)", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys

    t = time.perf_counter()
    print(build_report(Path(sys.argv[1])), f"{time.perf_counter() - t:.1f}s")

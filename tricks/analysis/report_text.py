"""REPORT.md as text, from a study's tables: what was run, missing/corrupted/diverged runs, findings,
tables and figure captions. Reads only the stored runs' tables (no torch, no drawing)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..running.records import run_stem
from .report_findings import effect_findings, effects_section, findings, fmt_p, pct
from .report_variants import config_said, per_seed_section, study_sign_flip_note, tricks_said, variants_section
from .sequential import until_line
from .stats import ALPHA, wilson_interval
from .report_header import (GENERATED, cpus, dataset_line, denormals, device_names, elapsed_minutes,
                            md_table, revisions, skipped_images, trained_images)
from .studydata import StudyData

FIGURES = ("micro_f1.png", "deltas.png", "effects.png", "interactions.png", "confusion_matrices.png",
           "per_class_f1.png", "learning_curves.png", "lr_schedule.png")   # in the order they appear


def _rel(path: str, directory: Path) -> str:
    p = Path(path)
    try:
        return str(p.relative_to(directory))
    except ValueError:
        return str(p)


def _diverged(recs: list[dict]) -> list[str]:
    """The Diverged runs section: how many of the finished runs diverged, which, and why."""
    diverged = [r for r in recs if r["status"] == "diverged"]
    if not diverged:
        return []
    names = ", ".join(run_stem(r["variant"], r["seed"]) for r in diverged)
    return ["## Diverged runs", "",
            f"Diverged runs: {len(diverged)} of {len(recs)} finished ({names}): training loss became non-finite, "
            "so they have no score; the statistics below leave them out (the summary's 'diverged' column "
            "counts them).", "",
            *[f"- {r['variant']} seed {r['seed']}: {r.get('stop_reason') or 'no reason recorded'}"
              for r in diverged], ""]


def _factor(f: dict) -> str:
    """A design factor as the Design section lists it: its tricks with parameters, and/or the config keys it sets."""
    said = [x for x in (tricks_said(f.get("tricks") or []), f.get("config") and "config " + config_said(f["config"]))
            if x]
    return "; ".join(said) or "nothing"


def _span(low: float, high: float, signed: str = "") -> str:
    """'X to Y' points, or 'X' where both ends print the same."""
    a, b = signed + pct(low), signed + pct(high)
    return a if a == b else f"{a} to {b}"


def _strictest(deltas: pd.DataFrame) -> str:
    """Holm's strictest step: 0.05/m over the m comparisons with a p-value (none with one seed)."""
    m = int(deltas["t_p"].notna().sum()) if len(deltas) and "t_p" in deltas else 0
    return f"{ALPHA:g}/{m}" if m else f"{ALPHA:g} divided by the number of comparisons (none has a p-value here)"


def _detectable(deltas: pd.DataFrame) -> str:
    """What the seeds could detect at 80% power: at Holm's strictest step (mde_holm) and per comparison (mde)."""
    ok = deltas.dropna(subset=["mde_holm"]) if "mde_holm" in deltas else deltas.iloc[:0]
    if not len(ok):
        return ""
    n, m, need = sorted(set(ok["n"].astype(int))), int(deltas["t_p"].notna().sum()), ok["seeds_for_target"].dropna()
    if not m:
        return ""
    return (f"What these seeds could detect: with {n[0] if len(n) == 1 else f'{n[0]} to {n[-1]}'} paired seeds the "
            f"smallest effect these comparisons detect at 80% power after Holm (two-sided, {ALPHA:g}/{m} at its "
            f"strictest step) is {_span(ok['mde_holm'].min(), ok['mde_holm'].max())} points "
            f"({_span(ok['mde'].min(), ok['mde'].max())} per comparison at {ALPHA:g}), depending on the comparison's "
            "spread" + (f"; a 0.5-point effect would need {int(need.min())} to {int(need.max())} paired seeds per "
                        f"comparison at {ALPHA:g}" if len(need) else "")
            + '. "Within noise" is not "no effect": smaller effects than these are invisible here.')


def _findings(data: StudyData, summary: pd.DataFrame, deltas: pd.DataFrame, effects: pd.DataFrame | None) -> list[str]:
    """The Findings, with _detectable's sentence after the verdicts."""
    said = effect_findings(effects) + findings(data, summary, deltas)
    ends = [i + 1 for i, f in enumerate(said) if f.startswith(("Helped beyond", "Hurt beyond", "Within noise vs"))]
    at = ends[-1] if ends else len(said)
    power = [x for x in (_detectable(deltas), study_sign_flip_note(deltas)) if x]
    return said[:at] + power + said[at:]


def _test_set(summary: pd.DataFrame, reference: str, images: int | None) -> tuple[list[str], str]:
    """Each variant's Wilson 95% interval on the test-set size around its mean accuracy, and the sentence
    giving its half-width, shown beside the seed intervals (none without a test-set size)."""
    if not images:
        return ["n/a"] * len(summary), ""
    spans = [wilson_interval(a, images) for a in summary["accuracy_mean"]]
    half = {v: (hi - lo) / 2 for v, (lo, hi) in zip(summary["variant"], spans) if hi == hi}
    column = [f"[{pct(lo)}, {pct(hi)}]" for lo, hi in spans]
    if not half:
        return column, ""
    ref = reference if reference in half else next(iter(half))
    acc = float(summary.set_index("variant").loc[ref, "accuracy_mean"])
    return column, (f"Test-set sampling: every run is scored on the same {images:,} test images, so the seed "
                    f"intervals above hold the test set fixed and measure training noise only. On {images:,} test "
                    f"images one accuracy carries a binomial sampling half-width (Wilson 95%) of about "
                    f"±{pct(half[ref])} points at {ref}'s mean accuracy of {pct(acc)}% "
                    f"({_span(min(half.values()), max(half.values()), '±')} across the variants: the 'test-set 95% "
                    "CI' column): how far an accuracy could move on another test set of that size from the same "
                    "distribution. Neither the seed intervals nor the paired tests include it.")


def render_markdown(data: StudyData, summary: pd.DataFrame, deltas: pd.DataFrame, drawn: set[str],
                    effects: pd.DataFrame | None = None, extra: Sequence[str] = ()) -> str:
    """REPORT.md; ``extra``: lines of further sections (a tuned study's), placed before the Figures."""
    m = data.manifest
    ds = m["dataset"]
    recs = data.records
    prov = recs[0]["provenance"] if recs else {}
    compute = sum(r.get("wall_seconds", 0.0) for r in recs)
    finished = sorted(r.get("finished_at", "") for r in recs if r.get("finished_at"))
    elapsed = elapsed_minutes(recs)
    engines = sorted({str((r.get("settings") or {}).get("engine", "?")) for r in recs})
    devices = device_names(recs)
    lines = [f"# Report: {m['spec']['name']}", "", GENERATED, "",
             m["spec"].get("description", ""), "", "## What was run", "",
             f"- spec: `{m['spec'].get('path', '')}` ({len(data.order)} variants); seeds: "
             f"{', '.join(map(str, m['seeds']))}; epochs: {m['epochs']}; batch: {m['batch_size']}; "
             f"training images: {trained_images(m, ds)}; "
             f"precision: {m.get('precision', 'fp32')}"
             + (f"; validation: {m['validation']} class-balanced images held out of training (read by callbacks "
                "and metric-driven schedules; final metrics are on the test split)" if m.get("validation") else ""),
             dataset_line(ds),
             *[line for line in [skipped_images(m, recs), until_line(m.get("until"))] if line],
             f"- device: {', '.join(devices) or 'n/a'}; CPU: {', '.join(cpus(recs)) or 'n/a'}; "
             f"workers: {m.get('workers')}; torch {prov.get('packages', {}).get('torch', '?')}"
             + denormals(recs),
             f"- code: git {', '.join(revisions(recs)) or 'unknown'}; engine version {', '.join(engines) or '?'} "
             "(part of every run's settings: runs from another engine version are never mixed in)",
             f"- compute: {compute / 60:.1f} min summed over {len(recs)} finished runs"
             + (f"; elapsed from the first run's start to the last run's end: {elapsed:.1f} min, any pauses "
                f"between invocations included (runs finished from {finished[0]} to {finished[-1]})"
                if finished else ""), ""]
    design = m["spec"].get("design")
    if design:
        lines += ["## Design", "",
                  f"- {design['kind']} design over {len(design['factors'])} factors, {len(design['matrix'])} variants"
                  + (f", resolution {design['resolution']}" if design.get("resolution") else ""),
                  *[f"- factor `{f['name']}`: " + _factor(f) for f in design["factors"]]]
        if design.get("generators"):
            lines += ["- generators: " + "; ".join(f"`{g}`" for g in design["generators"])]
        if design.get("aliases"):
            lines += ["- aliases (effects that this design cannot tell apart):", "",
                      *[f"  - `{a}`" for a in design["aliases"]]]
        lines += [""]
    runs = data.runs()
    lines += variants_section(m, runs, data.reference, len({(r.get("provenance") or {}).get("cpu") for r in recs}),
                              md_table)
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
    lines += _diverged(recs)
    lines += ["## Findings", "", *[f"- {f}" for f in _findings(data, summary, deltas, effects)], "",
              f"Verdicts: the family is every comparison in the table below ({len(deltas)}); a delta is an "
              "improvement or a regression when its paired t-test p-value, Holm-adjusted over that family, is "
              "below 0.05; otherwise it is within noise. The 95% t-intervals are per comparison (not adjusted) "
              "and clipped to the metric's range, as are the summary's. MDE: the smallest delta this comparison "
              "detects with 80% power by a two-sided paired t-test at 0.05, from its paired spread and n; MDE Holm: "
              f"the same at Holm's strictest step, {_strictest(deltas)}, "
              "so a delta that large is found beyond noise with at least 80% power whatever the other comparisons "
              "show. P(better): the share of the paired seeds in which the variant's micro-F1 is higher than that "
              "of the one it is compared with, a tie counting half (1.00: higher in every seed; 0.50: as often "
              "higher as lower, or tied throughout). The exact sign-flip permutation p-value is shown too; with "
              "n seeds it cannot go "
              f"below 2/2^n ({2 / 2 ** max(1, len(m['seeds'])):.3g} here).", ""]
    s = summary.copy()
    show = pd.DataFrame({
        "variant": s["variant"], "seeds ok": s["runs_ok"], "diverged": s["runs_diverged"],
        "micro-F1 %": s["micro_f1_mean"].map(pct), "std": s["micro_f1_std"].map(pct),
        "95% CI": [f"[{pct(a)}, {pct(b)}]" if math.isfinite(a) else n or "n/a"
                   for a, b, n in zip(s["micro_f1_ci_low"], s["micro_f1_ci_high"], s["note"])],
        "macro-F1 %": s["macro_f1_mean"].map(pct)})
    show["test-set 95% CI"], sampling = _test_set(s, data.reference, ds.get("test_images"))
    lines += ["## Summary (micro-F1 = accuracy for single-label data)", "", md_table(show), "",
              *([sampling, ""] if sampling else [])]
    if len(deltas):
        d = deltas
        show = pd.DataFrame({
            "variant": d["variant"], "against": d["against"], "n": d["n"],
            "delta pts": d["delta"].map(lambda x: pct(x, True)),
            "95% CI": [f"[{pct(a, True)}, {pct(b, True)}]" for a, b in zip(d["ci_low"], d["ci_high"])],
            "t-test p": d["t_p"].map(fmt_p), "Holm p": d["p_holm"].map(fmt_p),
            "sign-flip p": d["sign_flip_p"].map(fmt_p),
            "MDE pts": d["mde"].map(pct), "MDE Holm pts": d["mde_holm"].map(pct),
            "P(better)": d["p_improve"].map(lambda x: "n/a" if x != x else f"{x:.2f}"),
            "verdict": d["verdict"]})
        lines += ["## Paired deltas (micro-F1)", "", md_table(show), "", *per_seed_section(runs, deltas, md_table)]
    if effects is not None and len(effects):
        lines += effects_section(effects, md_table)
    lines += list(extra)
    captions = {
        "micro_f1.png": "Micro-F1 per variant: bar at the mean, 95% t-interval, one dot per seed.",
        "deltas.png": f"Paired deltas against {data.reference} with 95% intervals.",
        "effects.png": "Main effects and two-factor interactions with their pooled and per-seed 95% intervals.",
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
            if name == "deltas.png" and "deltas_by_epoch.png" in drawn:   # text and figure: analysis/by_epoch.py
                from .by_epoch import CAPTION, FIGURE, NOTE
                lines += [f"### {CAPTION}", "", f"![{FIGURE}](figures/{FIGURE})", "", NOTE, ""]
    lines += ["## Files", "", "- `runs.csv`: one row per finished run; `runs/*.json`: each run's history, "
              "confusion matrix, per-class report and provenance", "- `summary.csv`: one row per variant; "
              "`deltas.csv`: one row per comparison", "- regenerate everything here with "
              f"`tricks figures --results {data.directory}` (no training)", ""]
    return "\n".join(lines)

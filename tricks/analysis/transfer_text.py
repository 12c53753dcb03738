"""The top-level REPORT.md of a study with several workloads (``report._transfer_report`` writes it, beside
each workload's own report): what ran on each workload, the transfer findings and table, the procedure."""

from __future__ import annotations

import math

import pandas as pd

from . import transfer as X
from .report_findings import fmt_p, pct
from .report_header import GENERATED, cpus, dataset_line, device_names, md_table, revisions
from .report_variants import (base_note, is_entry, md_cell, mean_train_seconds, per_seed_table, sign_flip_note, time_ratio,
                              timing_note, variant_recipe)
from .studydata import StudyData
from .transfer_figure import CAPTION as FOREST_CAPTION, FIGURE as FOREST
from .transfer_pooled import MIN_SEEDS, as_findings, withheld, withheld_finding


def _counted(values: list, fallback: str = "n/a") -> str:
    """'122,570', '122,570 to 123,082' (values differ between runs), or ``fallback``."""
    v = sorted(set(values))
    return fallback if not v else f"{v[0]:,}" if len(v) == 1 else f"{v[0]:,} to {v[-1]:,}"


def _workload_rows(views: dict[str, StudyData], workloads: list[dict], workloads_dir: str) -> pd.DataFrame:
    """What ran on each workload: model, dataset, parameters (the reference's runs), epochs, training images, runs."""
    rows = []
    for w in workloads:
        v = views[w["name"]]
        m, recs = v.manifest, v.records
        ref = [r for r in recs if r["variant"] == v.reference] or recs
        images = m["train_subset"] or m["dataset"].get("train_images") or "n/a"
        rows.append({"workload": w["name"], "model": f"`{w['model']}`", "dataset": m["dataset"].get("kind", "n/a"),
                     "parameters": _counted([r["parameters"] for r in ref if "parameters" in r]),
                     "epochs": m["epochs"],
                     "training images": _counted([r["train_images"] for r in recs if "train_images" in r],
                                                 f"{images:,}" if isinstance(images, int) else images),
                     "runs finished": f"{len(recs)} of {len(m['runs'])}",
                     "report": f"[{workloads_dir}/{w['name']}/REPORT.md]({workloads_dir}/{w['name']}/REPORT.md)"})
    return pd.DataFrame(rows)


def _variants(m: dict, views: dict[str, StudyData], ref: str) -> list[str]:
    """The Variants section: each variant's tricks (or config keys), and its mean training time on each
    workload with that time over the reference's there."""
    named = {v["name"]: v for v in m["spec"]["variants"]}
    cols = {"variant": list(named), "base": [v.get("base") or "" for v in named.values()],
            "config keys" if is_entry(m) else "tricks (parameters)":
                [md_cell(variant_recipe(v, named.get(v.get("base")))) for v in named.values()]}
    for w, view in views.items():
        sec = mean_train_seconds(view.runs())
        cols[f"{w}: train s (vs {ref})"] = [f"{sec[v]:,.1f} ({time_ratio(sec, v, ref)})" if v in sec else "n/a"
                                            for v in named]
    kinds = len({(r.get("provenance") or {}).get("cpu") for view in views.values() for r in view.records})
    note = base_note(m)
    return ["## Variants", "", md_table(pd.DataFrame(cols)), "", *([note, ""] if note else []),
            timing_note(ref, kinds, m.get("workers"), is_entry(m), "the ratio in parentheses")
            + " Each workload's report has the same table for its runs alone.", ""]


def _per_seed(views: dict[str, StudyData], table: pd.DataFrame, order: list[str]) -> list[str]:
    """Every trick's delta against the reference on every seed, one row per (trick, workload)."""
    parts = []
    for w, view in views.items():
        rows = table[table["workload"] == w]
        parts.append(per_seed_table(view.runs(), rows).assign(workload=w) if len(rows) else None)
    parts = [x for x in parts if x is not None]
    if not parts:
        return []
    t = pd.concat(parts, ignore_index=True).fillna("n/a")
    t = t.sort_values("variant", key=lambda c: c.map(order.index), kind="stable")
    t = t[["variant", "workload", *[c for c in t.columns if c.startswith("seed ")], "mean"]]
    return ["## Per-seed deltas (micro-F1 vs the reference, points)", "",
            "Each trick's micro-F1 minus the reference's on every seed of every workload (n/a: one of the two did "
            "not finish, or diverged); the mean is the workload's paired delta in the table above.", "",
            md_table(t), ""]


def _families(views: dict[str, StudyData]) -> list[tuple[int, int]]:
    """(paired seeds, size of its workload's Holm family) for every comparison with a t-test p."""
    tested = [d[d["t_p"].notna()] for d in (X.workload_deltas(v) for v in views.values())]
    return [(n, len(d)) for d in tested for n in d["n"]]


def _cell(r) -> str:
    """'+1.20 [+0.50, +1.90] improvement'; what is not there is left out ('too few seeds')."""
    ci = f" [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}]" if math.isfinite(r.ci_low) else ""
    return (f"{pct(r.delta, True)}{ci} " if math.isfinite(r.delta) else "") + r.verdict


def transfer_markdown(data: StudyData, views: dict[str, StudyData], table: pd.DataFrame, verdicts: pd.DataFrame,
                      drawn: bool, workloads_dir: str) -> str:
    """The top-level REPORT.md of a multi-workload study: what ran, the transfer table, findings, figure,
    procedure. ``views``: each workload's view (``transfer.workload_view``); ``workloads_dir``: the folder
    of their reports."""
    m, recs, ws = data.manifest, data.records, X.workloads_of(data.manifest)
    ds, ref = m["dataset"], data.reference
    own = sorted(m.get("workload_datasets") or {})
    lines = [f"# Transfer report: {m['spec']['name']}", "", GENERATED, "",
             m["spec"].get("description", ""), "", "## What was run", "",
             f"- spec: `{m['spec'].get('path', '')}`: {len(data.order)} variants on {len(ws)} workloads, every "
             f"variant on every workload with the same seeds ({', '.join(map(str, m['seeds']))}); batch: "
             f"{m['batch_size']}; precision: {m.get('precision', 'fp32')}",
             dataset_line(ds) + (f" (workloads {', '.join(own)}: their own, in the table below)" if own else ""),
             f"- device: {', '.join(device_names(recs)) or 'n/a'}; CPU: {', '.join(cpus(recs)) or 'n/a'}; code: git "
             f"{', '.join(revisions(recs)) or 'unknown'}; compute: "
             f"{sum(r.get('wall_seconds', 0.0) for r in recs) / 60:.1f} min summed over {len(recs)} finished runs",
             f"- missing runs: {len(data.missing)}; corrupted run files: {len(data.corrupted)} (each workload's "
             "report names its own)", "", md_table(_workload_rows(views, ws, workloads_dir)), ""]
    lines += _variants(m, views, ref)
    held = withheld(table)   # pooled estimates from too few seeds: not findings (transfer_pooled)
    flips = sign_flip_note(_families(views), family="a workload's")
    said = X.transfer_findings(as_findings(table, held), verdicts) + [x for x in (withheld_finding(table, held),
                                                                                  flips) if x]
    lines += ["## Transfer findings", "", *[f"- {f}" for f in said], ""]
    if len(verdicts):
        cols = {"trick": [f"{v} vs {ref}" for v in verdicts["variant"]]}
        for w in ws:
            at = table[table["workload"] == w["name"]].set_index("variant")
            cols[w["name"]] = [_cell(r) for r in at.loc[verdicts["variant"]].itertuples()]
        pooled = table[table["workload"] == X.POOLED].set_index("variant").loc[verdicts["variant"]]
        cols["pooled: unweighted mean [HK 95% CI]"] = [
            f"_{_cell(r).strip()}, not a finding (< {MIN_SEEDS} seeds)_" if r.Index in held
            else _cell(r).strip() or "none" for r in pooled.itertuples()]
        cols["heterogeneity p (Holm)"] = [f"{fmt_p(a)} ({fmt_p(b)})" if a == a else "n/a"
                                          for a, b in zip(pooled["het_p"], pooled["het_p_holm"])]
        cols["random effects (secondary)"] = [f"{pct(d, True)} [{pct(a, True)}, {pct(b, True)}]" if d == d else "n/a"
                                              for d, a, b in zip(pooled["re_delta"], pooled["re_ci_low"],
                                                                 pooled["re_ci_high"])]
        cols["transfer"] = list(verdicts["transfer"])
        lines += [f"## Transfer table: paired deltas in micro-F1 vs {ref} (points, 95% CI, Holm verdict)", "",
                  md_table(pd.DataFrame(cols)), "", *_per_seed(views, table, data.order)]
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
              "separate Holm-significant result on each. **Heterogeneity** (does a trick's effect differ between "
              "workloads?): Welch's one-way ANOVA on the trick's per-seed paired deltas grouped by workload, each "
              "workload's seed spread its own, so no variance is taken as known (`het_p_equal`: the equal-variance "
              "F, the variant x workload interaction of the paired two-way model); one Holm family over the tricks "
              "(transfer.csv: `het_p`, `het_p_holm`, `het_family`, `het_family_size`). **Pooled rows are exploratory** (family "
              "`exploratory`: not adjusted, no verdict): the unweighted mean of the workloads' deltas, each "
              "workload weighing the same, with the Hartung-Knapp interval, which with equal weights is the t-"
              "interval over the k deltas on k - 1 df; with a few hand-picked workloads it describes them, not "
              "networks in general. Secondary columns only: the same mean's interval for these workloads from "
              "the seeds alone (`fixed_ci_*`, Welch-Satterthwaite df) and an inverse-variance random-effects "
              f"estimate ({X.METHOD_NAME}: statsmodels' `combine_effects`, `method_re=\"{X.METHOD_RE}\"`, "
              "Hartung-Knapp interval: `re_*`, `tau2`, `i2`, each workload's weight `weight_re`), which weighs "
              "a workload by its few-seed variance. The classes do not use the pooled row.", "",
              "## Files", "", "- `transfer.csv`: one row per (trick, workload) from that workload's deltas, and "
              "one `pooled` row per trick (`k`, `het_*`, `fixed_ci_*`, `re_*`, `tau2`, `i2`, `note`); `family` and "
              "`family_size` name the Holm family of each row's `p_holm`",
              f"- `{workloads_dir}/<name>/`: each workload's runs.csv, summary.csv, deltas.csv, deltas_by_epoch.csv "
              "(effects.csv for designs), figures and REPORT.md",
              "- `runs.csv`: every run (its `workload`, `model` and `dataset` columns); `runs/*.json`: each run",
              f"- regenerate everything here with `tricks figures --results {data.directory}` (no training)", ""]
    return "\n".join(lines)

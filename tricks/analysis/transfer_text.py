"""The top-level REPORT.md of a study with several workloads (``report._transfer_report`` writes it, beside
each workload's own report): what ran on each workload, the transfer findings and table, the procedure."""

from __future__ import annotations

import math

import pandas as pd

from . import transfer as X
from .report_findings import pct
from .report_header import GENERATED, cpus, dataset_line, device_names, md_table, revisions
from .studydata import StudyData
from .transfer_figure import CAPTION as FOREST_CAPTION, FIGURE as FOREST


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
                  md_table(pd.DataFrame(cols)), ""]
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
              f"- `{workloads_dir}/<name>/`: each workload's runs.csv, summary.csv, deltas.csv, deltas_by_epoch.csv "
              "(effects.csv for designs), figures and REPORT.md",
              "- `runs.csv`: every run (its `workload`, `model` and `dataset` columns); `runs/*.json`: each run",
              f"- regenerate everything here with `tricks figures --results {data.directory}` (no training)", ""]
    return "\n".join(lines)

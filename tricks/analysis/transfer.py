"""Does a trick's effect transfer across workloads? The analysis of a study whose spec lists several
``[[workloads]]`` (each a model and budget; every variant runs on every workload with the same seeds).

- ``workload_view``: the study restricted to one workload's records and planned runs, with an ordinary
  study's manifest (no ``workloads``), so summarize, delta_table, effects, deltas_by_epoch, the figures
  and REPORT.md work on it as on any study. Its arms stay ``<variant>@<workload>`` (unique within it).
- ``transfer_table`` (transfer.csv): per trick (each variant against the reference) one row per
  workload, copied from that workload's own ``stats.delta_table`` (test micro-F1, paired t-test over
  the seeds, Holm-adjusted within the workload's family: the comparisons of its deltas.csv, named in
  ``family`` with its size in ``family_size``), and one ``pooled`` row (``transfer_stats``):
  - the *heterogeneity test* (``het_*``): do the trick's effects differ between workloads? A one-way
    ANOVA on its per-seed paired deltas grouped by workload: Welch's, which lets each workload's seed
    spread be its own (``het_p``; ``het_p_equal``: the equal-variance F, which is the variant x workload
    interaction of the paired two-way model with a block per workload and seed). Its error is the seeds'
    own spread, so no variance is taken as known. Holm-adjusted over the tricks (``het_p_holm``, family
    ``het_family`` = "heterogeneity", size ``het_family_size``).
  - the *pooled estimate* (``delta``, ``ci_low``, ``ci_high``, ``t_p``), labelled exploratory (``family``
    and ``verdict`` "exploratory", no Holm adjustment): the unweighted mean of the workloads' deltas with
    the Hartung-Knapp t-interval on k - 1 degrees of freedom (with equal weights, the one-sample t-interval
    over the k deltas). Its population is the handful of workloads run, not networks in general.
  - secondary: an inverse-variance random-effects estimate (``re_delta``, ``re_ci_*``: statsmodels'
    ``combine_effects``, Paule-Mandel tau^2, Hartung-Knapp scale and a t on k - 1 df; ``tau2``, ``i2``;
    each workload's weight in it in ``weight_re``). It weighs each workload by its few-seed variance.
- ``transfer_verdicts``: per trick, from the per-workload Holm verdicts alone (not the pooled row):
  "transfers" (beyond noise with the same sign on every workload), "reverses" (beyond noise in opposite
  directions on two workloads), "depends on the workload" (beyond noise on some, within noise on
  others), "within noise everywhere", "not decided" (none of these: some workload has no verdict, too
  few seeds or diverged, and the others agree), "one workload only".

Deltas are fractions of micro-F1 (points in the text); variances and tau^2 in squared fractions. No torch.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd

from ..errors import TricksError
from ..running.records import record_arm, run_stem, stem_key
from . import transfer_stats as P
from .report_findings import fmt_p, pct
from .stats import IMPROVEMENT, NOISE, REGRESSION, comparisons, delta_table, holm
from .studydata import StudyData

TABLE = "transfer.csv"
POOLED = "pooled"
METHOD_RE = P.RE_METHOD                # the secondary random-effects column: statsmodels' Paule-Mandel tau^2
METHOD_NAME = "Paule-Mandel random effects"
EXPLORATORY, HETEROGENEITY = P.EXPLORATORY, P.HETEROGENEITY
TRANSFERS, REVERSES, DEPENDS = "transfers", "reverses", "depends on the workload"
QUIET, UNDECIDED, SINGLE = "within noise everywhere", "not decided", "one workload only"
CLASSES = (TRANSFERS, REVERSES, DEPENDS, QUIET, UNDECIDED, SINGLE)   # the order findings name them in
HEADS = {TRANSFERS: "{name} transfers: {verdict} on every workload", REVERSES: "{name} reverses across workloads",
         DEPENDS: "{name} depends on the workload", QUIET: "{name} is within noise on every workload"}
PER_WORKLOAD = ["n", "seeds", "delta", "delta_std", "ci_low", "ci_high", "t_p", "p_holm", "mde_holm", "verdict"]
POOLED_COLUMNS = P.POOLED_COLUMNS
COLUMNS = ["variant", "against", "workload", "model", *PER_WORKLOAD, "variance", "family", "family_size",
           *POOLED_COLUMNS]
VERDICT_COLUMNS = ["variant", "against", "transfer", "workloads", "improvement", "regression", "within_noise",
                   "no_verdict", "delta_min", "delta_max", "pooled_delta", "pooled_ci_low", "pooled_ci_high", "het_p",
                   "het_p_holm", "evidence"]


def workloads_of(manifest: dict) -> list[dict]:
    """The study's workloads ({"name", "model", "epochs", "train_subset"[, "dataset", "data_dir"]}), [] for a
    single-workload study."""
    return [dict(w) for w in manifest.get("workloads") or []]


def is_multi(manifest: dict) -> bool:
    """Whether the study's runs are split by workload (its spec lists ``[[workloads]]``, even just one)."""
    return bool(workloads_of(manifest))


def _settled(records: list[dict], key: str, fallback):
    """The value of settings ``key`` most runs recorded, else ``fallback``."""
    said = Counter(r["settings"][key] for r in records if key in (r.get("settings") or {}))
    return said.most_common(1)[0][0] if said else fallback


def workload_view(data: StudyData, name: str) -> StudyData:
    """The study on workload ``name`` only: its records, planned runs, missing runs, failures and corrupted
    run files. The manifest has no ``workloads``; its epochs and train_subset are the ones the workload's
    runs recorded (else its overrides, else the study's), its dataset the workload's own if it has one."""
    names = [w["name"] for w in workloads_of(data.manifest)]
    if name not in names:
        raise TricksError(f"study '{data.manifest['spec']['name']}' has no workload {name!r}; its workloads: "
                          f"{', '.join(names) or 'none (a single-workload study)'}")
    m = copy.deepcopy(data.manifest)
    w = m.pop("workloads")[names.index(name)]
    m["dataset"] = m.pop("workload_datasets", {}).get(name, m["dataset"])   # its own dataset, if it has one
    m["runs"] = [r for r in m["runs"] if r.get("workload") == name]
    records = [r for r in data.records if r.get("workload") == name]
    m["epochs"] = _settled(records, "epochs", w.get("epochs") or m["epochs"])
    m["train_subset"] = _settled(records, "train_subset", w.get("train_subset") or m["train_subset"])
    arms = {(record_arm(r), r["seed"]) for r in m["runs"]}
    stems = {run_stem(*k) for k in arms}
    return replace(data, manifest=m, records=records, missing=[k for k in data.missing if k in arms],
                   failures={s: f for s, f in data.failures.items() if s in stems},
                   corrupted={p: why for p, why in data.corrupted.items() if stem_key(p) in arms})


def workload_deltas(view: StudyData) -> pd.DataFrame:
    """A workload view's delta table, the family its deltas.csv adjusts over (``stats.comparisons``)."""
    return delta_table(view.runs(), comparisons(view.manifest["spec"]["variants"], view.reference))


def family_of(workload: str) -> str:
    """The Holm family of a workload's rows: the comparisons of that workload's deltas.csv."""
    return f"deltas of workload {workload}"


def paired_deltas(runs: pd.DataFrame, variant: str, against: str, metric: str = "micro_f1") -> np.ndarray:
    """``variant`` minus ``against`` on every seed where both finished with status ok (seed order)."""
    ok = runs[runs["status"] == "ok"]
    a = ok[ok["variant"] == variant].set_index("seed")[metric]
    b = ok[ok["variant"] == against].set_index("seed")[metric]
    seeds = sorted(set(a.index) & set(b.index))
    return a.loc[seeds].to_numpy(dtype=float) - b.loc[seeds].to_numpy(dtype=float)


def transfer_table(data: StudyData) -> pd.DataFrame:
    """transfer.csv: per trick (spec order) one row per workload (manifest order), then its pooled row."""
    ref, per = data.reference, []
    for w in workloads_of(data.manifest):
        view = workload_view(data, w["name"])
        d = workload_deltas(view)
        size = int(np.isfinite(d["t_p"].to_numpy(dtype=float)).sum()) if len(d) else 0
        per.append((w, d.set_index(["variant", "against", "kind"]), size, view.runs()))
    rows, pooled_rows = [], []
    for v in data.order:
        if v == ref:
            continue
        mine, seeds = [], []
        for w, d, size, runs in per:
            r = d.loc[(v, ref, "vs_baseline")] if (v, ref, "vs_baseline") in d.index else None
            row = {"variant": v, "against": ref, "workload": w["name"], "model": w["model"],
                   **{c: (r[c] if r is not None else math.nan) for c in PER_WORKLOAD},
                   "family": family_of(w["name"]), "family_size": size}
            row["variance"] = row["delta_std"] ** 2 / row["n"] if row["n"] == row["n"] and row["n"] > 0 else math.nan
            mine.append(row)
            seeds.append(paired_deltas(runs, v, ref) if len(runs) else np.array([]))
        frame = pd.DataFrame(mine, columns=COLUMNS[:len(COLUMNS) - len(POOLED_COLUMNS)])
        pooled = P.pool(frame, seeds) if len(frame) else {}
        weights = pooled.pop("weights", {})
        k = pooled.get("k", 0)
        for row in mine:
            row.update({c: math.nan for c in POOLED_COLUMNS}, weight_re=weights.get(row["workload"], math.nan),
                       weight=1 / k if k >= 2 and math.isfinite(row["delta"]) else math.nan, method="", note="",
                       het_family="", het_family_size=math.nan)
        if pooled:
            pooled_rows.append(len(rows) + len(mine))
            mine.append({"variant": v, "against": ref, "workload": POOLED, "model": "", "seeds": "",
                         "delta_std": math.nan, "p_holm": math.nan, "mde_holm": math.nan, "verdict": EXPLORATORY,
                         "variance": math.nan, "n": math.nan, "family": EXPLORATORY, "family_size": math.nan,
                         **pooled})
        rows += mine
    table = pd.DataFrame(rows, columns=COLUMNS)
    if pooled_rows:   # the heterogeneity tests: one Holm family over the tricks
        het = table.loc[pooled_rows, "het_p"].to_numpy(dtype=float)
        table.loc[pooled_rows, "het_p_holm"] = holm(het)
        table.loc[pooled_rows, "het_family"] = HETEROGENEITY
        table.loc[pooled_rows, "het_family_size"] = int(np.isfinite(het).sum())
    return table


def _said(r) -> str:
    """'small +1.20 pts [+0.50, +1.90], Holm p = 0.003'."""
    return (f"{r.workload} {pct(r.delta, True)} pts [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}], "
            f"Holm p = {fmt_p(r.p_holm)}")


def _classify(verdicts: list[str]) -> str:
    up, down = verdicts.count(IMPROVEMENT), verdicts.count(REGRESSION)
    if len(verdicts) < 2:
        return SINGLE
    if up and down:
        return REVERSES
    if len(verdicts) in (up, down):
        return TRANSFERS
    if (up or down) and NOISE in verdicts:
        return DEPENDS
    return QUIET if verdicts.count(NOISE) == len(verdicts) else UNDECIDED


def transfer_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trick: its class (the module docstring's rules, on each workload's Holm verdict), the
    workloads in each verdict, the range of its deltas, its pooled estimate and the per-workload evidence."""
    rows = []
    for v in dict.fromkeys(table["variant"]):
        t = table[table["variant"] == v]
        w, p = t[t["workload"] != POOLED], t[t["workload"] == POOLED]
        p = p.iloc[0] if len(p) else pd.Series(dtype=object)
        names = {x: ";".join(w.loc[w["verdict"] == x, "workload"]) for x in (IMPROVEMENT, REGRESSION, NOISE)}
        rows.append({"variant": v, "against": t["against"].iloc[0], "transfer": _classify(list(w["verdict"])),
                     "workloads": len(w), "improvement": names[IMPROVEMENT], "regression": names[REGRESSION],
                     "within_noise": names[NOISE],
                     "no_verdict": ";".join(w.loc[~w["verdict"].isin([IMPROVEMENT, REGRESSION, NOISE]), "workload"]),
                     "delta_min": w["delta"].min(), "delta_max": w["delta"].max(),
                     "pooled_delta": p.get("delta", math.nan), "pooled_ci_low": p.get("ci_low", math.nan),
                     "pooled_ci_high": p.get("ci_high", math.nan), "het_p": p.get("het_p", math.nan),
                     "het_p_holm": p.get("het_p_holm", math.nan),
                     "evidence": "; ".join(f"{_said(r)} ({r.verdict})" for r in w.itertuples())})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def heterogeneity_said(p) -> str:
    """'effects differ between workloads? Welch ANOVA F = 6.90 on (2, 3.1) df, p = 0.028, Holm p = 0.17 over 6
    tricks'."""
    if p is None or not math.isfinite(p.het_p):
        return "no heterogeneity test (fewer than 2 workloads with paired seeds, or no spread to test against)"
    return (f"effects differ between workloads? {p.het_method} F = {p.het_f:.2f} on ({int(p.het_df1)}, "
            f"{p.het_df2:.3g}) df, p = {fmt_p(p.het_p)}, Holm p = {fmt_p(p.het_p_holm)} over {int(p.het_family_size)} "
            "tricks")


def pooled_said(p) -> str:
    """'exploratory pooled estimate (unweighted mean of k = 3 workloads) +1.10 pts, Hartung-Knapp 95% CI
    [+0.20, +2.00] (t on 2 df, not adjusted); inverse-variance random effects (secondary) +1.00 pts [...]'."""
    if p is None or not math.isfinite(p.delta):
        return "no pooled estimate" + (f" ({p.note})" if p is not None and p.note else "")
    re = (f"; inverse-variance random effects (secondary) {pct(p.re_delta, True)} pts [{pct(p.re_ci_low, True)}, "
          f"{pct(p.re_ci_high, True)}]" if math.isfinite(p.re_delta) else "")
    return (f"exploratory pooled estimate (unweighted mean of k = {int(p.k)} workloads) {pct(p.delta, True)} pts, "
            f"Hartung-Knapp 95% CI [{pct(p.ci_low, True)}, {pct(p.ci_high, True)}] (t on {int(p.k) - 1} df, not "
            f"adjusted){re}")


def _noise_said(r) -> str:
    return (f"{r.workload} {pct(r.delta, True)} pts [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}], Holm p = "
            f"{fmt_p(r.p_holm)}, detectable at 80% power after Holm: {pct(r.mde_holm)} pts")


def transfer_findings(table: pd.DataFrame, verdicts: pd.DataFrame) -> list[str]:
    """Sentences from ``transfer_table`` and ``transfer_verdicts``: the tests and their families, then per trick
    (grouped by class) its per-workload deltas with intervals and Holm p, its heterogeneity test and its
    exploratory pooled estimate; a workload within noise also states the effect detectable there at 80% power
    after Holm."""
    if not len(verdicts):
        return ["No trick to compare: the spec has only the reference variant."]
    work = table[table["workload"] != POOLED]
    m = int(work["workload"].nunique())
    sizes = work.drop_duplicates("workload")["family_size"]
    size = f"{int(sizes.iloc[0])} comparisons" if sizes.nunique() == 1 and sizes.notna().all() else "its comparisons"
    out = [f"Tests: on each of the {m} workloads, each trick against {verdicts['against'].iloc[0]} by a paired "
           "t-test on test micro-F1 over the seeds (95% t-intervals), Holm-adjusted within that workload's family "
           f"({size}: its deltas.csv). Heterogeneity: whether a trick's effect differs between the workloads, by a "
           "one-way ANOVA on its per-seed paired deltas grouped by workload (Welch's, each workload's seed spread "
           "its own; its error is the seeds' spread, no variance taken as known), Holm-adjusted over the "
           f"{len(verdicts)} tricks. Pooled rows are exploratory (not adjusted, no verdict): the unweighted mean of "
           "the workloads' deltas with a Hartung-Knapp t-interval on k - 1 df; an inverse-variance "
           f"{METHOD_NAME} estimate is given as a secondary column only. The classes use the per-workload Holm "
           "verdicts only."]
    for cls in CLASSES:
        for v in verdicts[verdicts["transfer"] == cls].itertuples():
            rows = work[work["variant"] == v.variant]
            p = next(table[(table["variant"] == v.variant) & (table["workload"] == POOLED)].itertuples(), None)
            decided = rows["verdict"].isin([IMPROVEMENT, REGRESSION, NOISE])
            parts = ([(_said(r) if cls == TRANSFERS else f"{r.verdict} on {_said(r)}")
                      for r in rows[rows["verdict"].isin([IMPROVEMENT, REGRESSION])].itertuples()]
                     + [(_noise_said(r) if cls == QUIET else f"within noise on {_noise_said(r)}")
                        for r in rows[rows["verdict"] == NOISE].itertuples()]
                     + [f"no verdict on {r.workload} ({r.verdict})" for r in rows[~decided].itertuples()])
            head = HEADS.get(cls, "{name}: " + cls).format(name=f"**{v.variant}**", verdict=rows["verdict"].iloc[0])
            tail = ("; the pooled estimate averages effects of opposite sign and describes none of the workloads"
                    if cls == REVERSES else "")
            out.append(f"{head} (" + "; ".join(parts) + f"); {heterogeneity_said(p)}; {pooled_said(p)}{tail}.")
    return out

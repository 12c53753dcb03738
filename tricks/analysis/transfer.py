"""Does a trick's effect transfer across workloads? The analysis of a study whose spec lists several
``[[workloads]]`` (each a model and budget; every variant runs on every workload with the same seeds).

- ``workload_view``: the study restricted to one workload's records and planned runs, with an ordinary
  study's manifest (no ``workloads``), so summarize, delta_table, effects, deltas_by_epoch, the figures
  and REPORT.md work on it as on any study. Its arms stay ``<variant>@<workload>`` (unique within it).
- ``transfer_table`` (transfer.csv): per trick (each variant against the reference) one row per
  workload, copied from that workload's own ``stats.delta_table`` (test micro-F1, paired t-test over
  the seeds, Holm-adjusted within the workload's family: the comparisons of its deltas.csv), and one
  ``pooled`` row: a random-effects meta-analysis over the workloads by statsmodels' ``combine_effects``
  with ``method_re="pm"`` (Paule-Mandel tau^2), each workload's delta with variance delta_std^2 / n.
  Paule-Mandel, not DerSimonian-Laird: statsmodels' "dl" does not truncate tau^2 at zero (with
  Q < k - 1 it returns a negative tau^2, an interval narrower than the fixed-effect one); "pm" does.
  The pooled row holds the random-effects effect and its 95% normal interval (``delta``, ``ci_*``),
  the fixed-effect (inverse-variance) effect and interval (``fe_*``), the random-effects interval with
  the Hartung-Knapp scale and a t with k - 1 df (``hk_ci_*``, wider and honest with few workloads),
  tau^2, I^2 = max(0, (Q - (k-1)) / Q), Q and its chi^2 p-value, and k. A workload enters the pooling
  when its delta is finite and its variance finite and positive; with fewer than 2 such workloads the
  pooled row is NaN and ``note`` says why.
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
from .report_findings import fmt_p, pct
from .stats import IMPROVEMENT, NOISE, REGRESSION, comparisons, delta_table
from .studydata import StudyData

TABLE = "transfer.csv"
POOLED = "pooled"
METHOD_RE = "pm"                       # statsmodels' Paule-Mandel tau^2 (see the module docstring)
METHOD_NAME = "Paule-Mandel random effects"
TRANSFERS, REVERSES, DEPENDS = "transfers", "reverses", "depends on the workload"
QUIET, UNDECIDED, SINGLE = "within noise everywhere", "not decided", "one workload only"
CLASSES = (TRANSFERS, REVERSES, DEPENDS, QUIET, UNDECIDED, SINGLE)   # the order findings name them in
HEADS = {TRANSFERS: "{name} transfers: {verdict} on every workload", REVERSES: "{name} reverses across workloads",
         DEPENDS: "{name} depends on the workload", QUIET: "{name} is within noise on every workload"}
PER_WORKLOAD = ["n", "seeds", "delta", "delta_std", "ci_low", "ci_high", "t_p", "p_holm", "mde_holm", "verdict"]
POOLED_COLUMNS = ["weight_re", "k", "fe_delta", "fe_ci_low", "fe_ci_high", "hk_ci_low", "hk_ci_high", "tau2", "i2",
                  "q", "q_p", "method", "note"]
COLUMNS = ["variant", "against", "workload", "model", *PER_WORKLOAD, "variance", *POOLED_COLUMNS]
VERDICT_COLUMNS = ["variant", "against", "transfer", "workloads", "improvement", "regression", "within_noise",
                   "no_verdict", "delta_min", "delta_max", "pooled_delta", "pooled_ci_low", "pooled_ci_high", "i2",
                   "tau2", "q_p", "evidence"]


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


def pool(rows: pd.DataFrame) -> dict:
    """The pooled columns of one trick from its per-workload rows (``delta``, ``variance``, ``workload``):
    ``combine_effects(..., method_re=METHOD_RE)`` over the workloads that can be weighted."""
    from statsmodels.stats.meta_analysis import combine_effects

    d, v = rows["delta"].to_numpy(dtype=float), rows["variance"].to_numpy(dtype=float)
    ok = np.isfinite(d) & np.isfinite(v) & (v > 0)
    left = [f"{w} ({'no delta' if not math.isfinite(x) else 'zero variance' if var == 0 else 'no variance'})"
            for w, x, var, good in zip(rows["workload"], d, v, ok) if not good]
    out = {c: math.nan for c in POOLED_COLUMNS}
    out.update(k=int(ok.sum()), method=METHOD_NAME, note="left out: " + ", ".join(left) if left else "",
               weight_re=1.0)
    if ok.sum() < 2:
        out["note"] = "fewer than 2 workloads with a finite delta and a positive variance" + (
            f"; {out['note']}" if left else "")
        return out
    with np.errstate(divide="ignore", invalid="ignore"):   # I^2 is -inf where Q = 0: clipped to 0 below
        res = combine_effects(d[ok], v[ok], method_re=METHOD_RE, row_names=list(rows.loc[ok, "workload"]))
        fe, re, _, _ = res.conf_int(alpha=0.05, use_t=False)
        hk = res.conf_int(alpha=0.05, use_t=True)[3]   # random effects, Hartung-Knapp scale, t with k - 1 df
        i2 = float(res.i2)
    out.update(delta=float(res.mean_effect_re), ci_low=float(re[0]), ci_high=float(re[1]),
               fe_delta=float(res.mean_effect_fe), fe_ci_low=float(fe[0]), fe_ci_high=float(fe[1]),
               hk_ci_low=float(hk[0]), hk_ci_high=float(hk[1]), tau2=float(res.tau2),
               i2=math.nan if math.isnan(i2) else max(0.0, i2),
               q=float(res.q), q_p=float(res.test_homogeneity().pvalue),
               weights=dict(zip(rows.loc[ok, "workload"], map(float, res.weights_rel_re))))
    return out


def transfer_table(data: StudyData) -> pd.DataFrame:
    """transfer.csv: per trick (spec order) one row per workload (manifest order), then its pooled row."""
    ref, per = data.reference, []
    for w in workloads_of(data.manifest):
        d = workload_deltas(workload_view(data, w["name"])).set_index(["variant", "against", "kind"])
        per.append((w, d))
    rows = []
    for v in data.order:
        if v == ref:
            continue
        mine = []
        for w, d in per:
            r = d.loc[(v, ref, "vs_baseline")] if (v, ref, "vs_baseline") in d.index else None
            row = {"variant": v, "against": ref, "workload": w["name"], "model": w["model"],
                   **{c: (r[c] if r is not None else math.nan) for c in PER_WORKLOAD}}
            row["variance"] = row["delta_std"] ** 2 / row["n"] if row["n"] == row["n"] and row["n"] > 0 else math.nan
            mine.append(row)
        frame = pd.DataFrame(mine, columns=COLUMNS[:len(COLUMNS) - len(POOLED_COLUMNS)])
        pooled = pool(frame) if len(frame) else {}
        weights = pooled.pop("weights", {})
        for row in mine:
            row.update({c: math.nan for c in POOLED_COLUMNS}, weight_re=weights.get(row["workload"], math.nan),
                       method="", note="")
        if pooled:
            mine.append({"variant": v, "against": ref, "workload": POOLED, "model": "", "seeds": "",
                         "delta_std": math.nan, "t_p": math.nan, "p_holm": math.nan, "mde_holm": math.nan,
                         "verdict": "", "variance": math.nan, "n": math.nan, "delta": math.nan, "ci_low": math.nan,
                         "ci_high": math.nan, **pooled})
        rows += mine
    return pd.DataFrame(rows, columns=COLUMNS)


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
                     "pooled_ci_high": p.get("ci_high", math.nan), "i2": p.get("i2", math.nan),
                     "tau2": p.get("tau2", math.nan), "q_p": p.get("q_p", math.nan),
                     "evidence": "; ".join(f"{_said(r)} ({r.verdict})" for r in w.itertuples())})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def pooled_said(p) -> str:
    """'pooled +1.10 pts, random-effects 95% CI [+0.20, +2.00], I^2 = 12%, tau = 0.40 pts (k = 3)'."""
    if p is None or not math.isfinite(p.delta):
        return "no pooled estimate" + (f" ({p.note})" if p is not None and p.note else "")
    return (f"pooled {pct(p.delta, True)} pts, random-effects 95% CI [{pct(p.ci_low, True)}, {pct(p.ci_high, True)}] "
            f"(Hartung-Knapp, t on k - 1 df: [{pct(p.hk_ci_low, True)}, {pct(p.hk_ci_high, True)}]), "
            f"I² = {100 * p.i2:.0f}%, tau = {pct(math.sqrt(max(p.tau2, 0.0)))} pts, Q-test p = {fmt_p(p.q_p)} "
            f"(k = {int(p.k)})")


def _noise_said(r) -> str:
    return (f"{r.workload} {pct(r.delta, True)} pts [{pct(r.ci_low, True)}, {pct(r.ci_high, True)}], Holm p = "
            f"{fmt_p(r.p_holm)}, detectable at 80% power after Holm: {pct(r.mde_holm)} pts")


def transfer_findings(table: pd.DataFrame, verdicts: pd.DataFrame) -> list[str]:
    """Sentences from ``transfer_table`` and ``transfer_verdicts``: the tests, then per trick (grouped by
    class) its per-workload deltas with intervals and Holm p, its pooled estimate with the random-effects
    interval and I^2; a workload within noise also states the effect detectable there at 80% power after Holm."""
    if not len(verdicts):
        return ["No trick to compare: the spec has only the reference variant."]
    work = table[table["workload"] != POOLED]
    m = int(work["workload"].nunique())
    out = [f"Tests: on each of the {m} workloads, each trick against {verdicts['against'].iloc[0]} by a paired "
           "t-test on test micro-F1 over the seeds (95% t-intervals), Holm-adjusted within that workload's family "
           "(the comparisons of its deltas.csv); pooled over the workloads by a "
           f"{METHOD_NAME} meta-analysis (statsmodels' combine_effects, method_re=\"{METHOD_RE}\"; each "
           "workload's variance delta_std²/n). The classes use the per-workload Holm verdicts only."]
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
            out.append(f"{head} (" + "; ".join(parts) + f"); {pooled_said(p)}{tail}.")
    return out

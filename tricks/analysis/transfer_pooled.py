"""When a trick's pooled transfer estimate is a finding: with fewer than MIN_SEEDS paired seeds on a
workload, that workload's delta and its spread rest on at most one degree of freedom, and a pooled
interval over such workloads can be tight and away from zero while every workload's own interval spans
zero (issue 37: 2 seeds did exactly that). Such an estimate stays in transfer.csv, but the report does
not state it as a finding (``withheld``, ``as_findings``) and the forest plot draws it grey. The rule
reads only the per-workload rows (``n``, ``delta``) and the pooled row's ``delta``, whatever method
pooled them (``transfer``). No torch.
"""

from __future__ import annotations

import math

import pandas as pd

from .report_findings import pct
from .transfer import POOLED

MIN_SEEDS = 3   # paired seeds every pooled workload needs for the pooled estimate to be a finding
ESTIMATE = ("delta", "ci_low", "ci_high", "t_p", "tau2", "i2")   # a pooled row's estimate...
ESTIMATE_PREFIXES = ("re_", "fe_", "hk_", "fixed_")                     # ...and its other intervals


def _pooled_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The per-workload rows a trick's pooling can use: those with a finite delta."""
    w = rows[rows["workload"] != POOLED]
    return w[w["delta"].astype(float).map(math.isfinite)]


def withheld(table: pd.DataFrame) -> dict[str, str]:
    """trick -> why its pooled estimate is not a finding ('2 paired seeds on small, wide'), for every trick
    with a pooled estimate some of whose workloads had fewer than MIN_SEEDS paired seeds."""
    out = {}
    for v in dict.fromkeys(table["variant"]):
        rows = table[table["variant"] == v]
        pooled = rows[rows["workload"] == POOLED]
        if not len(pooled) or not math.isfinite(float(pooled["delta"].iloc[0])):
            continue
        used = _pooled_rows(rows)
        few = used[used["n"] < MIN_SEEDS]
        if len(few):
            by_n = few.groupby("n", sort=True)["workload"].apply(list)
            out[v] = "; ".join(f"{int(n)} paired seed{'s' if n != 1 else ''} on {', '.join(ws)}"
                               for n, ws in by_n.items())
    return out


def as_findings(table: pd.DataFrame, held: dict[str, str]) -> pd.DataFrame:
    """``table`` with the pooled estimates of the ``held`` tricks blanked (its other tests, a heterogeneity
    test with its own error, are kept) and their ``note`` saying why, for the findings' sentences
    (transfer.csv keeps the numbers)."""
    t = table.copy()
    blank = [c for c in t.columns if c in ESTIMATE or c.startswith(ESTIMATE_PREFIXES)]
    for v, why in held.items():
        at = (t["variant"] == v) & (t["workload"] == POOLED)
        t.loc[at, blank] = math.nan
        t.loc[at, "note"] = f"withheld: {why}, fewer than {MIN_SEEDS} per workload; see below"
    return t


def withheld_finding(table: pd.DataFrame, held: dict[str, str]) -> str:
    """The finding that names the withheld pooled estimates and why ('' when none is)."""
    if not held:
        return ""
    pooled = table[table["workload"] == POOLED].set_index("variant")
    by_why: dict[str, list[str]] = {}
    for v, why in held.items():
        by_why.setdefault(why, []).append(f"**{v}** {pct(pooled.at[v, 'delta'], True)} pts "
                                          f"[{pct(pooled.at[v, 'ci_low'], True)}, {pct(pooled.at[v, 'ci_high'], True)}]")
    items = "; ".join(f"with {why}: " + ", ".join(said) for why, said in by_why.items())
    return (f"Pooled estimates not drawn as findings, each from fewer than {MIN_SEEDS} paired seeds on a workload "
            f"({items}). With so few seeds a workload's delta and its spread rest on at most one degree of "
            "freedom, and a pooled interval over them can be narrow and away from zero while no workload's own "
            "interval is. transfer.csv keeps these numbers and the figure draws them "
            f"grey; run at least {MIN_SEEDS} seeds on every workload before reading them.")

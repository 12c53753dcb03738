"""REPORT.md's tables of what each variant is and costs, and of every comparison seed by seed, and its
sentence on what a sign-flip test can reach with the seeds run (no torch, no drawing).

- ``variant_recipe``: a variant's tricks with their parameters (``exp_lr(lr=0.002, gamma=0.8)``), or the
  configuration keys it sets in an entry-point study (docs/entry.md);
- ``variants_table``: one row per variant: its base, its recipe, its finished seeds, the mean training
  time of its finished runs (``train_seconds``: the training epochs, evaluation excluded) and that time
  over the reference's;
- ``per_seed_table``: one row per comparison of the delta table, one column per seed: the variant's
  micro-F1 minus the one it is compared with, in points, on each seed where both finished (their mean
  is the comparison's delta);
- ``sign_flip_note``: with n paired seeds the smallest two-sided sign-flip p is 2^(1 - n); the sentence
  says when that exceeds 0.05, or Holm's strictest step 0.05/m of the report's family ('' otherwise).
"""

from __future__ import annotations

import json
import math
from typing import Iterable

import pandas as pd

from .report_findings import pct
from .stats import ALPHA

ENTRY_BASELINE = "none (the workload's config)"   # an entry-point variant that sets no key of its own
SAME_AS_BASE = "(as its base)"


def _value(x) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return "[" + ", ".join(_value(v) for v in x) + "]"
    if isinstance(x, float):
        return repr(x)
    return json.dumps(x, sort_keys=True) if isinstance(x, dict) else str(x)


def md_cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def is_entry(manifest: dict) -> bool:
    """Whether the study's variants set configuration keys (an entry-point study) instead of tricks."""
    return any("config" in v for v in manifest["spec"]["variants"])


def config_said(config: dict) -> str:
    """``flip=true, width=32``."""
    return ", ".join(f"{k}={_value(v)}" for k, v in config.items())


def tricks_said(tricks: Iterable[dict]) -> str:
    """``normalize_inputs, exp_lr(lr=0.002, gamma=0.8)``; '' for none."""
    out = []
    for t in tricks:
        params = {k: v for k, v in t.items() if k != "name"}
        out.append(t["name"] + (f"({config_said(params)})" if params else ""))
    return ", ".join(out)


def variant_recipe(variant: dict, base: dict | None = None) -> str:
    """What a variant is, as the manifest lists it (its tricks with parameters, or its config keys), or,
    given its ``base``, what it adds to it (``+ mixup(alpha=0.2)``) and takes out of it (``- dropout(p=0.2)``)."""
    if "config" in variant:
        config = variant["config"]
        if base is not None:
            config = {k: v for k, v in config.items() if k not in base.get("config", {}) or base["config"][k] != v}
            return ("+ config " + config_said(config)) if config else SAME_AS_BASE
        return ("config " + config_said(config)) if config else ENTRY_BASELINE
    tricks = list(variant.get("tricks") or [])
    if base is not None:
        had = list(base.get("tricks") or [])
        said = [x for x in ("+ " + tricks_said(t for t in tricks if t not in had),
                            "- " + tricks_said(t for t in had if t not in tricks)) if len(x) > 2]
        return "; ".join(said) or SAME_AS_BASE
    return tricks_said(tricks) or "none (the model's defaults)"


def mean_train_seconds(runs: pd.DataFrame) -> pd.Series:
    """variant -> the mean ``train_seconds`` of its finished (status ok) runs."""
    ok = runs[runs["status"] == "ok"]
    return ok.groupby("variant")["train_seconds"].mean()


def time_ratio(seconds: pd.Series, variant: str, reference: str) -> str:
    """'2.41x': the variant's mean training time over the reference's ('n/a' when either is missing)."""
    a, b = seconds.get(variant, math.nan), seconds.get(reference, math.nan)
    return f"{a / b:.2f}x" if a == a and b == b and b > 0 else "n/a"


def variants_table(manifest: dict, runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The report's Variants table (see the module docstring)."""
    seconds = mean_train_seconds(runs)
    ok = runs[runs["status"] == "ok"].groupby("variant").size()
    head = "config keys" if is_entry(manifest) else "tricks (parameters)"
    vs = manifest["spec"]["variants"]
    named = {v["name"]: v for v in vs}
    return pd.DataFrame({
        "variant": [v["name"] for v in vs], "base": [v.get("base") or "" for v in vs],
        head: [md_cell(variant_recipe(v, named.get(v.get("base")))) for v in vs],
        "seeds ok": [int(ok.get(v["name"], 0)) for v in vs],
        "mean train s": [f"{seconds[v['name']]:,.1f}" if v["name"] in seconds else "n/a" for v in vs],
        f"time vs {reference}": [time_ratio(seconds, v["name"], reference) for v in vs]})


def timing_note(reference: str, cpu_kinds: int, workers, entry: bool, ratio: str = "") -> str:
    """How to read the table's training times (``ratio``: what names the ratio, default its column)."""
    where = [f"{workers} runs trained at once" if isinstance(workers, int) and workers > 1 else "",
             "on several CPU kinds, whose speeds differ, so the ratios mix them" if cpu_kinds > 1 else ""]
    return ("Training time: the mean over a variant's finished runs of the seconds its training epochs took "
            "as each run recorded them (`train_seconds` in runs.csv: evaluation excluded"
            + ("; an entry point's own epoch times, else its call's wall time" if entry else "")
            + f"); {ratio or f'`time vs {reference}`'} divides it by {reference}'s. They are times on the "
            "machine the study ran on"
            + (f" ({'; '.join(x for x in where if x)})" if any(where) else "")
            + ": the cost of a trick there, not a benchmark.")


def base_note(manifest: dict) -> str:
    """How the recipe column reads when some variant's base is in the table ('' when none is)."""
    vs = manifest["spec"]["variants"]
    if not any(v.get("base") in {x["name"] for x in vs} for v in vs):
        return ""
    what = "config keys" if is_entry(manifest) else "tricks"
    return (f"A variant whose base is in this table lists the {what} it adds to that base (+) or takes out of it "
            f"(-), a change of parameters being both; any other lists all its {what}.")


def variants_section(manifest: dict, runs: pd.DataFrame, reference: str, cpu_kinds: int, table) -> list[str]:
    """REPORT.md's '## Variants' section (``table``: the markdown table maker)."""
    note = base_note(manifest)
    return ["## Variants", "", table(variants_table(manifest, runs, reference)), "", *([note, ""] if note else []),
            timing_note(reference, cpu_kinds, manifest.get("workers"), is_entry(manifest)), ""]


def per_seed_table(runs: pd.DataFrame, deltas: pd.DataFrame, metric: str = "micro_f1") -> pd.DataFrame:
    """One row per comparison (``deltas``' order), one ``seed k`` column per seed any run has: the paired
    delta in points, 'n/a' where the two did not both finish ok; then the mean (the delta table's delta)."""
    ok = runs[runs["status"] == "ok"]
    scores = ok.pivot_table(index="variant", columns="seed", values=metric, aggfunc="first")
    seeds = sorted(set(runs["seed"]))
    rows = []
    for r in deltas.itertuples():
        row = {"variant": r.variant, "against": r.against}
        for s in seeds:
            a = scores.at[r.variant, s] if r.variant in scores.index and s in scores.columns else math.nan
            b = scores.at[r.against, s] if r.against in scores.index and s in scores.columns else math.nan
            row[f"seed {s}"] = pct(a - b, True)
        row["mean"] = pct(r.delta, True)
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", "against", *[f"seed {s}" for s in seeds], "mean"])


def per_seed_section(runs: pd.DataFrame, deltas: pd.DataFrame, table) -> list[str]:
    """REPORT.md's '## Per-seed deltas' section, '' without comparisons."""
    if not len(deltas):
        return []
    return ["## Per-seed deltas (micro-F1, points)", "",
            "Each comparison of the table above on every seed: the variant's micro-F1 minus that of the one it "
            "is compared with, both trained with that seed (n/a: one of them did not finish, or diverged). The "
            "mean is the paired delta above; a delta that every seed agrees on in sign is what the sign-flip "
            "test rewards.", "", table(per_seed_table(runs, deltas)), ""]


def fewest_seeds(threshold: float) -> int:
    """The fewest paired seeds whose smallest two-sided sign-flip p, 2^(1 - n), is at most ``threshold``."""
    return 1 + math.ceil(math.log2(1 / threshold) - 1e-12)


def _floor(n: int) -> str:
    return f"2^(1-{n}) = {2.0 ** (1 - n):.3g}"


def sign_flip_note(pairs: Iterable[tuple[int, int]], family: str = "this report's") -> str:
    """The sentence on what a sign-flip test can reach, from (n, m) per comparison with a t-test (n >= 2
    paired seeds, m the size of the Holm family it belongs to); '' when every comparison's smallest
    sign-flip p, 2^(1 - n), is at most its Holm's strictest step ALPHA / m."""
    pairs = [(int(n), int(m)) for n, m in pairs if n >= 2 and m >= 1]
    if not pairs or all(2.0 ** (1 - n) <= ALPHA / m for n, m in pairs):
        return ""
    ns, ms = sorted({n for n, _ in pairs}), sorted({m for _, m in pairs})
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    floors = _floor(ns[0]) if len(ns) == 1 else f"{_floor(ns[-1])} to {_floor(ns[0])}"
    step = f"{ALPHA:g}/{ms[0]} = {ALPHA / ms[0]:.3g}" if len(ms) == 1 else f"{ALPHA:g}/{ms[0]} to {ALPHA:g}/{ms[-1]}"
    need = f"{fewest_seeds(ALPHA)} paired seeds are the fewest for which a sign-flip p can reach {ALPHA:g}" + (
        f", {fewest_seeds(ALPHA / ms[-1])} for Holm's strictest step {ALPHA:g}/{ms[-1]}" if ms[-1] > 1 else "")
    head = f"Sign-flip tests: with {seeds} paired seeds the smallest two-sided sign-flip p is {floors}"
    if all(2.0 ** (1 - n) > ALPHA for n, _ in pairs):
        return (f"{head}, above {ALPHA:g}: no sign-flip p in {family} comparisons can reach {ALPHA:g} whatever the "
                f"deltas, so the verdicts rest on the t-test alone ({need}).")
    if all(2.0 ** (1 - n) > ALPHA / m for n, m in pairs):
        return (f"{head}, above Holm's strictest step ({step}): a sign-flip test Holm-adjusted over {family} "
                f"family could reject none of its comparisons, so the verdicts rest on the t-test alone ({need}).")
    short = [(n, m) for n, m in pairs if 2.0 ** (1 - n) > ALPHA / m]
    few = sorted({n for n, _ in short})
    return (f"{head}: the {len(short)} of {len(pairs)} comparisons with "
            f"{' or '.join(map(str, few))} paired seeds cannot pass Holm's strictest step ({step}) on a sign-flip "
            f"test ({need}).")


def study_sign_flip_note(deltas: pd.DataFrame) -> str:
    """``sign_flip_note`` for one study's delta table: its family is every comparison with a t-test p."""
    tested = deltas[deltas["t_p"].notna()] if len(deltas) else deltas
    m = len(tested)
    return sign_flip_note([(n, m) for n in tested["n"]]) if m else ""

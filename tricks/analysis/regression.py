"""The CI regression check: compare a CI-profile study's paired deltas with a committed reference.

Pure decision logic over stored results (no torch). For each variant the reference holds the mean
paired delta in accuracy against the baseline and its spread across seeds. A new result fails
when a trick helps less (or hurts more) than the reference by more than the tolerance

    tolerance = max(DELTA_FLOOR, SPREAD_MULT * sd_ref * sqrt(2 / n))

where sd_ref is the seed-to-seed standard deviation of the reference's paired deltas and n the
number of seeds: sd * sqrt(2/n) is the standard deviation of a difference between two n-seed
means, so 3 of them let noise alone through (about 0.3% of the time for normal noise), and the
floor keeps a reference with an accidentally tiny spread from failing on noise. The baseline's own
accuracy must stay above ``baseline_floor`` (its reference mean minus the same kind of margin).

Both are written within the bounds the reference file's schema reads back (``running.schema.REFERENCE``):
a tolerance is at most MAX_TOLERANCE (1.0: 100 points; the formula exceeds it only when the reference's
deltas spread across seeds by an sd above sqrt(n / 2) / 3, a third of the whole accuracy range or more),
and a floor is at least 0 (no accuracy falls below 0, so a lower floor passes exactly the same results).

On the same machine with the same library versions CPU runs are deterministic, so an unchanged
tree reproduces the reference exactly; the tolerance covers other machines and library versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..running.records import stem_key
from .studydata import StudyData

SCHEMA = 1
DELTA_FLOOR = 0.015          # accuracy (1.5 points): smallest tolerance on a delta
SPREAD_MULT = 3.0            # standard deviations of a difference of seed means
BASELINE_MARGIN_FLOOR = 0.03  # accuracy (3 points): smallest allowed drop of the baseline's mean
MAX_TOLERANCE = 1.0          # accuracy (100 points): the largest tolerance a reference file holds (its schema)

OK, BETTER, REGRESSION, MISSING, DIVERGED = "ok", "better (re-baseline?)", "REGRESSION", "MISSING", "DIVERGED"
CORRUPTED, UNVERIFIABLE = "CORRUPTED", "UNVERIFIABLE"
# The check fails closed: anything it cannot verify (a corrupted run file, a number that is not finite,
# a variant the reference does not cover) fails, exactly like a regression.
FAILING = (REGRESSION, MISSING, DIVERGED, CORRUPTED, UNVERIFIABLE)


def profile_signature(manifest: dict) -> dict:
    """What must match for two results to be comparable: spec, variants and their tricks, schedule, data."""
    return {"spec": manifest["spec"]["name"], "epochs": manifest["epochs"], "batch_size": manifest["batch_size"],
            "train_subset": manifest["train_subset"], "seeds": manifest["seeds"],
            "precision": manifest.get("precision", "fp32"),
            "variants": {v["name"]: v["tricks"] for v in manifest["spec"]["variants"]},
            "dataset_sha256": manifest["dataset"].get("sha256"),
            # only when there is one, so that references made before validation splits existed still match
            **({"validation": manifest["validation"]} if manifest.get("validation") else {})}


def _accuracies(data: StudyData) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in data.records:
        if r["status"] == "ok":
            out.setdefault(r["variant"], {})[r["seed"]] = r["metrics"]["accuracy"]
    return out


def _deltas(acc: dict[str, dict[int, float]], variant: str, reference: str) -> list[float]:
    a, b = acc.get(variant, {}), acc.get(reference, {})
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def tolerance(sd: float, n: int) -> float:
    """A variant's tolerance from its reference deltas' seed spread ``sd`` over ``n`` seeds (module docstring)."""
    return min(MAX_TOLERANCE, max(DELTA_FLOOR, SPREAD_MULT * sd * math.sqrt(2 / n)))


def make_reference(data: StudyData) -> dict:
    """The reference file's content, from a finished CI-profile study."""
    if data.missing:
        raise ValueError(f"cannot make a reference from an unfinished study; missing: {data.missing}")
    acc = _accuracies(data)
    ref = data.reference
    base = np.array([acc[ref][s] for s in sorted(acc.get(ref, {}))])
    if len(base) < 2:
        raise ValueError("a reference needs at least 2 finished baseline seeds")
    n = len(data.manifest["seeds"])
    base_sd = float(base.std(ddof=1))
    variants = {}
    for v in data.order:
        if v == ref:
            continue
        d = np.array(_deltas(acc, v, ref))
        sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
        variants[v] = {"delta": float(d.mean()) if len(d) else math.nan, "delta_sd": sd, "n": len(d),
                       "per_seed": [float(x) for x in d],
                       "tolerance": tolerance(sd, n) if len(d) > 1 else DELTA_FLOOR}
    prov = data.records[0].get("provenance", {})
    return {"schema": SCHEMA, "profile": profile_signature(data.manifest), "reference_variant": ref,
            "baseline": {"accuracy": float(base.mean()), "sd": base_sd, "per_seed": base.tolist(),
                         "floor": max(0.0, float(base.mean() - max(BASELINE_MARGIN_FLOOR, SPREAD_MULT * base_sd)))},
            "variants": variants,
            "rule": {"delta_floor": DELTA_FLOOR, "spread_mult": SPREAD_MULT,
                     "baseline_margin_floor": BASELINE_MARGIN_FLOOR},
            "provenance": {"git": prov.get("git"), "packages": prov.get("packages"), "cpu": prov.get("cpu"),
                           "device": prov.get("device"), "finished_at": max(r.get("finished_at", "")
                                                                             for r in data.records)}}


@dataclass
class CheckResult:
    rows: list[dict] = field(default_factory=list)
    incompatible: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.incompatible and not any(r["verdict"] in FAILING for r in self.rows)


def compare(reference: dict, data: StudyData) -> CheckResult:
    """One row per variant (and one for the baseline's accuracy) with a verdict."""
    result = CheckResult()
    sig, ref_sig = profile_signature(data.manifest), reference.get("profile", {})
    for key in sorted(set(sig) | set(ref_sig)):
        if sig.get(key) != ref_sig.get(key):
            result.incompatible.append(f"{key}: reference {_short(ref_sig.get(key))}, results {_short(sig.get(key))}")
    if result.incompatible:
        return result
    acc = _accuracies(data)
    status = {(r["variant"], r["seed"]): r["status"] for r in data.records}
    broken = {stem_key(p) for p in data.corrupted}
    seeds = data.manifest["seeds"]
    refv = reference["reference_variant"]

    def health(v):
        if any((v, s) in broken for s in seeds):
            return CORRUPTED
        if any(status.get((v, s)) == "diverged" for s in seeds):
            return DIVERGED
        if any((v, s) not in status for s in seeds):
            return MISSING
        return None

    def finite(*xs) -> bool:
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in xs)

    b = reference["baseline"]
    new_base = float(np.mean([acc[refv][s] for s in seeds])) if health(refv) is None else math.nan
    base_verdict = health(refv) or (UNVERIFIABLE if not finite(new_base, b.get("floor"), b.get("accuracy"))
                                    else OK if new_base >= b["floor"] else REGRESSION)
    result.rows.append({"variant": refv, "what": "accuracy", "reference": b["accuracy"], "new": new_base,
                        "limit": b["floor"], "verdict": base_verdict})
    for v in data.order:
        if v != refv and v not in reference["variants"]:
            result.rows.append({"variant": v, "what": "not in the reference", "reference": math.nan,
                                "new": math.nan, "limit": math.nan, "verdict": UNVERIFIABLE})
    for v, ref in reference["variants"].items():
        problem = health(v) or health(refv)
        new = float(np.mean(_deltas(acc, v, refv))) if problem is None else math.nan
        if problem:
            verdict = problem
        elif not finite(new, ref.get("delta"), ref.get("tolerance")) or ref["tolerance"] < 0:
            verdict = UNVERIFIABLE
        elif new < ref["delta"] - ref["tolerance"]:
            verdict = REGRESSION
        elif new > ref["delta"] + ref["tolerance"]:
            verdict = BETTER
        else:
            verdict = OK
        result.rows.append({"variant": v, "what": f"delta vs {refv}", "reference": ref["delta"], "new": new,
                            "limit": ref["tolerance"], "verdict": verdict})
    return result


def _short(value, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def format_table(result: CheckResult) -> str:
    if result.incompatible:
        return ("INCOMPATIBLE: the reference was made with a different profile; re-baseline with "
                "'make regression-update' if that change is intended:\n  " + "\n  ".join(result.incompatible))
    head = f"{'variant':<16} {'checked':<22} {'reference':>10} {'new':>10} {'tolerance':>10}  verdict"
    lines = [head, "-" * len(head)]
    for r in result.rows:
        pct = lambda x, s=True: "n/a" if not isinstance(x, (int, float)) or not math.isfinite(x) else (f"{100 * x:+.2f}" if s else f"{100 * x:.2f}")  # noqa
        if r["what"] == "accuracy":
            ref, new, tol = pct(r["reference"], False), pct(r["new"], False), f">={100 * r['limit']:.2f}"
        else:
            ref, new, tol = pct(r["reference"]), pct(r["new"]), f"±{100 * r['limit']:.2f}"
        lines.append(f"{r['variant']:<16} {r['what']:<22} {ref:>10} {new:>10} {tol:>10}  {r['verdict']}")
    lines.append("(accuracy in percent; deltas in percentage points, paired by seed)")
    lines.append("PASS" if result.passed else "FAIL: " + ", ".join(
        f"{r['variant']} {r['verdict']}" for r in result.rows if r["verdict"] in FAILING))
    return "\n".join(lines)


def describe_update(old: dict | None, new: dict) -> str:
    """What re-baselining changes, one line per variant."""
    if old is None:
        return "new reference (there was none)"
    lines = []
    if old.get("profile") != new["profile"]:
        lines.append("profile changed: " + ", ".join(k for k in new["profile"]
                                                     if old.get("profile", {}).get(k) != new["profile"][k]))
    ob, nb = old.get("baseline", {}), new["baseline"]
    lines.append(f"baseline accuracy: {100 * ob.get('accuracy', math.nan):.2f} -> {100 * nb['accuracy']:.2f}")
    for v, nv in new["variants"].items():
        ov = old.get("variants", {}).get(v)
        was = f"{100 * ov['delta']:+.2f}" if ov else "(new)"
        lines.append(f"{v}: delta {was} -> {100 * nv['delta']:+.2f} pts (tolerance ±{100 * nv['tolerance']:.2f})")
    return "\n".join(lines)

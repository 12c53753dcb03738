"""A confirmation's table (``confirm.csv``): per claim, the exploratory estimate from the study it came
from beside the confirmatory one on the registered fresh seeds, with the family's tests
(``confirm_stats``). Reads stored records only."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..predictions import decode_labels
from ..running.confirm_plan import PREREGISTRATION
from ..running.records import read_test_labels, scan_runs
from . import confirm_stats as cs

COLUMNS = ["claim", "statement", "contrast", "direction", "margin", "study", "seeds_registered", "seeds_complete",
           "explor_delta", "explor_low", "explor_high", "explor_seeds", "delta", "delta_std", "family_low",
           "family_high", "boot_low", "boot_high", "t_p", "t_p_holm", "sign_flip_p", "sign_flip_p_holm",
           "family_size", "per_seed", "predictions", "verdict"]


@dataclass
class Confirmation:
    out_dir: Path
    registration: dict
    claims: dict            # claims.json
    table: pd.DataFrame     # COLUMNS
    seeds: list[int]        # the registered seeds
    complete: list[int]     # those with every arm of every claim finished
    corrupted: dict[str, str] = field(default_factory=dict)   # run file -> what is wrong (read as missing)
    runs: tuple[int, int] = (0, 0)   # (stored, needed): the distinct runs the claims need over the seeds


def load_confirmation(out_dir: Path) -> Confirmation:
    out_dir = Path(out_dir)
    reg = json.loads((out_dir / PREREGISTRATION).read_text(encoding="utf-8"))
    claims = json.loads((out_dir / "claims.json").read_text(encoding="utf-8"))
    seeds = list(reg["seeds"])
    scans = {c["folder"]: scan_runs(out_dir / c["folder"]) for c in claims["claims"]}   # each read once
    folders = {f: records for f, (records, _) in scans.items()}
    corrupted = {path: why for _, bad in scans.values() for path, why in bad.items()}   # they count as missing
    arms = {c["name"]: _arms(folders[c["folder"]], c, seeds) for c in claims["claims"]}
    complete = [s for s in seeds if all(s in a[v] for c in claims["claims"] for a in [arms[c["name"]]]
                                        for v, _ in c["weights"])]
    rows = [_row(out_dir, reg, c, arms[c["name"]], seeds, len(claims["claims"])) for c in claims["claims"]]
    done = len(complete) == len(seeds)
    if done:   # every claim has every seed, each a finite accuracy (the record schema): m = every claim
        t_holm = cs.holm([r["t_p"] for r in rows])
        f_holm = cs.holm([r["sign_flip_p"] for r in rows])
        for r, th, fh in zip(rows, t_holm, f_holm):
            r["t_p_holm"], r["sign_flip_p_holm"] = th, fh
            r["verdict"] = cs.verdict(th, fh, True)
    else:      # interim: no adjusted p (the claims' seed counts differ) and no verdict
        for r in rows:
            r["verdict"] = cs.verdict(math.nan, math.nan, False)
    # the distinct runs the claims need (an arm shared by claims counts once) and how many are stored
    needed = {(c["folder"], v, c.get("workload"), _lr(c, v), s): arms[c["name"]][v].get(s)
              for c in claims["claims"] for v, _ in c["weights"] for s in seeds}
    runs = (sum(r is not None for r in needed.values()), len(needed))
    return Confirmation(out_dir, reg, claims, pd.DataFrame(rows, columns=COLUMNS), seeds, complete, corrupted,
                        runs)


def _lr(claim: dict, variant: str) -> float | None:
    return (claim.get("fixed_lr") or {}).get(variant) if claim.get("tuned") else None


def _match(rec: dict, claim: dict, variant: str) -> bool:
    return (rec["variant"] == variant and rec.get("workload") == claim.get("workload")
            and rec.get("tuned_lr") == _lr(claim, variant))


def _arms(records: list[dict], claim: dict, seeds: list[int]) -> dict[str, dict[int, dict]]:
    """{variant: {seed: record}} of the claim's arms among ``records`` (only the registered ``seeds``)."""
    return {v: {r["seed"]: r for r in records if _match(r, claim, v) and r["seed"] in seeds}
            for v, _ in claim["weights"]}


def _contrast(arms: dict[str, dict[int, dict]], weights, seeds) -> np.ndarray:
    return np.array([sum(w * arms[v][s]["metrics"]["accuracy"] for v, w in weights) * 100.0 for s in seeds])


def _correct(folder: Path, arms, weights, seeds) -> np.ndarray | None:
    """correct[arm, seed, image], or None when a record or the study's labels lack predictions."""
    labels = read_test_labels(folder)
    out = []
    for v, _ in weights:
        rows = []
        for s in seeds:
            rec = arms[v][s]
            blob = rec.get("test_predictions")
            truth = labels.get((rec.get("settings") or {}).get("data_sha256", ""))
            if blob is None or truth is None:
                return None
            rows.append(np.array(decode_labels(blob)) == np.array(decode_labels(truth["labels"])))
        out.append(rows)
    return np.array(out, dtype=bool)


def _row(out_dir: Path, reg: dict, claim: dict, arms, seeds: list[int], m: int) -> dict:
    weights = [(v, float(w)) for v, w in claim["weights"]]
    have = [s for s in seeds if all(s in arms[v] for v, _ in weights)]
    d = _contrast(arms, weights, have)
    t_p, flip_p = cs.directional_ps(d, claim["direction"], claim.get("margin")) if len(have) >= 2 \
        else (math.nan, math.nan)
    lo, hi = cs.t_interval(d, 1 - cs.ALPHA / m)
    correct = _correct(out_dir / claim["folder"], arms, weights, have) if len(have) >= 2 else None
    b_lo, b_hi = cs.two_level_bootstrap(correct, np.array([w for _, w in weights])) if correct is not None \
        else (math.nan, math.nan)
    ex = _exploratory(reg.get("exploratory", {}).get(claim["name"]))
    return {"claim": claim["name"], "statement": claim.get("statement", ""), "contrast": claim["contrast"],
            "direction": claim["direction"], "margin": claim.get("margin"), "study": claim["study"],
            "seeds_registered": len(seeds), "seeds_complete": len(have),
            "explor_delta": ex[0], "explor_low": ex[1], "explor_high": ex[2], "explor_seeds": ex[3],
            "delta": float(d.mean()) if len(d) else math.nan,
            "delta_std": float(d.std(ddof=1)) if len(d) > 1 else math.nan,
            "family_low": lo, "family_high": hi, "boot_low": b_lo, "boot_high": b_hi,
            "t_p": t_p, "sign_flip_p": flip_p, "family_size": m,
            "per_seed": " ".join(f"{s}:{x:+.2f}" for s, x in zip(have, d)),
            "predictions": "stored" if correct is not None else ("missing" if len(have) >= 2 else ""),
            "t_p_holm": math.nan, "sign_flip_p_holm": math.nan, "verdict": ""}


def _exploratory(stored: dict | None) -> tuple[float, float, float, int]:
    """(mean contrast, 95% t interval, seeds) in the exploratory study the claim came from, as the
    registration fixed it."""
    if not stored or not stored.get("per_seed"):
        return math.nan, math.nan, math.nan, 0
    d = np.asarray(stored["per_seed"], dtype=float)
    lo, hi = cs.t_interval(d, 1 - cs.ALPHA)
    return float(d.mean()), lo, hi, len(d)

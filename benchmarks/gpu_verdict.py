"""What a GPU check's numbers support as the CUDA default for ``--population`` (benchmarks/gpu_check.sh).

    python benchmarks/gpu_verdict.py OUT_DIR

Reads what gpu_check.sh wrote under OUT_DIR: the CUDA tests' result (``tests.txt``), the slice's per-run
accuracies solo and in populations (``slice/``, ``slice_population/``: paired by variant and seed), and
the full study's progress in each mode within its stage's time (``study_solo/``, ``study_population/``:
the epochs of every finished run plus those of every run's last checkpoint, per second of the stage).
Writes ``verdict.json`` and prints one line per comparison, the last saying which default the numbers
support. Population training becomes the CUDA default only on a measurement: the CUDA tests passed, the
slice's paired accuracies agree (mean difference within ``AGREE_POINTS``) and populations train at
least ``FASTER`` times the solo workers' model-epochs per second. The default itself is one constant,
``CUDA_DEFAULT_POPULATION`` in tricks/running/cohorts.py (docs/gpu.md says how to change it).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

AGREE_POINTS = 1.0       # |mean paired accuracy difference| (points) within which the slice agrees
FASTER = 1.25            # population / solo model-epochs per second needed to make it the default
POPULATION = 40          # the cohort size the check's population study trains with


def accuracies(folder: Path) -> dict[tuple[str, str], float]:
    try:
        with open(folder / "runs.csv", newline="") as f:
            return {(r["variant"], r["seed"]): float(r["accuracy"]) for r in csv.DictReader(f) if r["accuracy"]}
    except OSError:
        return {}


def model_epochs(folder: Path) -> int:
    """Epochs trained in ``folder``'s study: finished runs' epochs, plus each unfinished run's checkpoint."""
    total = 0
    for p in sorted((folder / "runs").glob("*.json")):
        try:
            total += int(json.loads(p.read_text()).get("epochs_run") or 0)
        except (OSError, ValueError):
            pass
    checkpoints = sorted((folder / "checkpoints").glob("*.pt"))
    if checkpoints:
        import torch

        for p in checkpoints:
            try:
                total += int(torch.load(p, map_location="cpu", weights_only=True)["epoch"])
            except Exception:
                pass
    return total


def seconds(out: Path, name: str) -> float | None:
    try:
        return float((out / f"{name}.seconds").read_text())
    except (OSError, ValueError):
        return None


def tests_passed(out: Path) -> tuple[bool, str]:
    try:
        last = (out / "tests.txt").read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return False, "no test output"
    return ("passed" in last and "failed" not in last and "error" not in last), last


def verdict(out: Path) -> dict:
    solo, pop = accuracies(out / "slice"), accuracies(out / "slice_population")
    pairs = sorted(set(solo) & set(pop))
    diffs = [100 * (pop[p] - solo[p]) for p in pairs]
    rates = {}
    for mode in ("solo", "population"):
        secs, epochs = seconds(out, f"study_{mode}"), model_epochs(out / f"study_{mode}")
        rates[mode] = {"model_epochs": epochs, "seconds": secs, "per_second": epochs / secs if secs else None}
    ok, test_line = tests_passed(out)
    mean = sum(diffs) / len(diffs) if diffs else None
    agree = mean is not None and abs(mean) <= AGREE_POINTS
    s, p = rates["solo"]["per_second"], rates["population"]["per_second"]
    ratio = p / s if s and p is not None else None
    faster = ratio is not None and ratio >= FASTER
    default = POPULATION if ok and agree and faster else 0
    why = [f"CUDA tests {'passed' if ok else 'not all passed'}",
           f"slice accuracies {'agree' if agree else 'do not agree'}",
           f"populations {'at least' if faster else 'under'} {FASTER}x the solo workers' speed"]
    return {"tests": test_line, "tests_passed": ok, "slice_pairs": len(pairs), "slice_diffs_points": diffs,
            "slice_mean_diff_points": mean, "study": rates, "population_over_solo": ratio,
            "supported_default": default, "because": why}


def lines(v: dict) -> list[str]:
    out = []
    if v["slice_pairs"]:
        d = v["slice_diffs_points"]
        out.append(f"slice: population - solo accuracy over {v['slice_pairs']} paired runs: mean "
                   f"{v['slice_mean_diff_points']:+.2f} points (from {min(d):+.2f} to {max(d):+.2f})")
    else:
        out.append("slice: no paired runs to compare")
    for mode, r in v["study"].items():
        rate = f"{r['per_second']:.3f} model-epochs/s" if r["per_second"] is not None else "no rate"
        out.append(f"study {mode}: {r['model_epochs']} model-epochs in {r['seconds']} s, {rate}")
    if v["population_over_solo"] is not None:
        out.append(f"population / solo: {v['population_over_solo']:.2f}x model-epochs per second")
    k = v["supported_default"]
    advice = (f"--population {k} as the CUDA default (set CUDA_DEFAULT_POPULATION = {k} in "
              "tricks/running/cohorts.py)" if k else "keeping population training opt-in on CUDA (default off)")
    out.append(f"supported default: {advice}; {', '.join(v['because'])}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python benchmarks/gpu_verdict.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    v = verdict(out)
    (out / "verdict.json").write_text(json.dumps(v, indent=1) + "\n")
    print("\n".join(lines(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

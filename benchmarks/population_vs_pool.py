"""Population training against the worker pool, on the same study slice, side by side in one run.

    python benchmarks/population_vs_pool.py --data-dir /path/to/cifar10-jpeg [--train-subset 2000]
        [--seeds 0,1] [--epochs 1] [--repeats 2] [--precision fp32]

The slice: the five variants of the cumulative study that share the baseline's network shape
(baseline, norm_inputs, lr_schedule, weight_decay, init_weights) x ``--seeds``, on a class-balanced
training subset, each run evaluated on the whole test split. Both sides use every core the same way:
the pool trains solo runs on one worker per core (one intra-op thread each, the default), the
population side trains the same runs as one cohort per core (``--population`` = runs / cores, one
thread each). They alternate, ``--repeats`` times each, into fresh result folders, after the dataset
cache is warmed. Printed and written to ``results/bench/population_vs_pool.{json,txt}``:

- the study's wall time, each side (median), and population / pool;
- training core-seconds per model-image: the pool's summed per-run training time over (runs x
  images x epochs), the population's summed per-cohort training time over the same count (a member's
  ``train_seconds`` is its cohort's), and their ratio (above 1: the population is slower per image);
- the paired accuracy difference population - solo per run (float rounding only: they should agree
  within seed noise).

Only ratios measured in one run mean anything: absolute times move with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.cli import main as tricks_main  # noqa: E402
from tricks.running.provenance import cpu_model, git_revision, package_versions  # noqa: E402

VARIANTS = "baseline,norm_inputs,lr_schedule,weight_decay,init_weights"


def run(side: str, args, cohort: int, out: Path) -> float:
    argv = ["ablation", "--spec", str(REPO / "benchmarks" / "backprop_tricks.toml"), "--variants", VARIANTS,
            "--seeds", args.seeds, "--epochs", str(args.epochs), "--train-subset", str(args.train_subset),
            "--dataset", "imagefolder", "--data-dir", args.data_dir, "--device", "cpu", "--precision",
            args.precision, "--workers", str(args.cores), "--no-progress", "--no-report", "--out", str(out),
            "--population", str(cohort if side == "population" else 0)]
    t0 = time.perf_counter()
    rc = tricks_main(argv)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"the {side} study failed (exit {rc})")
    return wall


def read(out: Path) -> dict:
    rows = {}
    for p in sorted((out / "runs").glob("*.json")):
        r = json.loads(p.read_text())
        rows[p.stem] = {"accuracy": r["metrics"]["accuracy"], "train_seconds": r["train_seconds"],
                        "cohort": (r["provenance"].get("population") or {}).get("cohort"),
                        "images": r["train_images"] * r["epochs_run"]}
    return rows


def per_image(rows: dict) -> float:
    """Training core-seconds per model-image: a cohort's time counted once (its members share it)."""
    seconds, seen = 0.0, set()
    for r in rows.values():
        if r["cohort"] is None or r["cohort"] not in seen:
            seconds += r["train_seconds"]
            seen.add(r["cohort"])
    return seconds / sum(r["images"] for r in rows.values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--train-subset", type=int, default=2000)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(REPO / "results" / "bench" / "population_vs_pool"))
    args = p.parse_args()
    runs = len(VARIANTS.split(",")) * len(args.seeds.split(","))
    cohort = max(2, -(-runs // args.cores))
    tmp = Path(tempfile.mkdtemp(prefix="pop_vs_pool_"))
    walls = {"pool": [], "population": []}
    per = {"pool": [], "population": []}
    last = {}
    try:
        run("pool", args, cohort, tmp / "warm")          # decodes and caches the dataset once
        for i in range(args.repeats):
            for side in ("pool", "population"):
                out = tmp / f"{side}{i}"
                walls[side].append(run(side, args, cohort, out))
                last[side] = read(out)
                per[side].append(per_image(last[side]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    diffs = [last["population"][s]["accuracy"] - last["pool"][s]["accuracy"] for s in last["pool"]]
    med = {s: statistics.median(v) for s, v in walls.items()}
    med_per = {s: statistics.median(v) for s, v in per.items()}
    result = {
        "slice": {"variants": VARIANTS, "seeds": args.seeds, "epochs": args.epochs, "train_subset": args.train_subset,
                  "runs": runs, "precision": args.precision, "cores": args.cores, "cohort_size": cohort},
        "wall_seconds": walls, "wall_median": med, "wall_ratio_population_over_pool": med["population"] / med["pool"],
        "train_core_seconds_per_model_image": per, "per_image_median": med_per,
        "per_image_ratio_population_over_pool": med_per["population"] / med_per["pool"],
        "accuracy_diff_population_minus_solo": diffs,
        "provenance": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                       "packages": package_versions(), "git": git_revision(),
                       "load_average_at_end": os.getloadavg()},
    }
    lines = [f"population vs pool, {runs} runs ({VARIANTS}; seeds {args.seeds}), {args.epochs} epoch(s) on "
             f"{args.train_subset} images, {args.precision}, {args.cores} cores: pool = {args.cores} solo workers, "
             f"population = cohorts of {cohort}, one per core",
             f"machine: {cpu_model()}, torch {package_versions()['torch']}, load average at end "
             f"{os.getloadavg()[0]:.2f}",
             f"study wall time (median of {args.repeats}): pool {med['pool']:.1f} s, population "
             f"{med['population']:.1f} s -> population / pool = {result['wall_ratio_population_over_pool']:.2f}x",
             f"training core-seconds per model-image: pool {med_per['pool'] * 1e3:.3f} ms, population "
             f"{med_per['population'] * 1e3:.3f} ms -> population / pool = "
             f"{result['per_image_ratio_population_over_pool']:.2f}x (above 1: the population is slower)",
             f"accuracy, population - solo, per run (points): "
             + ", ".join(f"{100 * d:+.2f}" for d in diffs)]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Population training against the worker pool, on the same study slice, side by side in one run.

    python benchmarks/population_vs_pool.py --data-dir /path/to/cifar10-jpeg [--train-subset 2000]
        [--seeds 0,1] [--epochs 1] [--repeats 2] [--precisions fp32,bf16] [--out FILE_STEM]

The slice: the five variants of the cumulative study that share the baseline's network shape
(baseline, norm_inputs, lr_schedule, weight_decay, init_weights) x ``--seeds``, on a class-balanced
training subset, each run evaluated on the whole test split. Both sides use every core the same way:
the pool trains solo runs on one worker per core (one intra-op thread each, the default), the
population side trains the same runs as one cohort per core (``--population`` = runs / cores, one
thread each). They alternate, in every precision of ``--precisions`` (side by side: pool, population,
then the next precision), ``--repeats`` times each, into fresh result folders, after the dataset cache
is warmed. Printed and written to ``--out`` + ``.json``/``.txt`` (default
``results/bench/population_vs_pool``), per precision:

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


def run(side: str, args, cohort: int, out: Path, precision: str) -> float:
    argv = ["ablation", "--spec", str(REPO / "benchmarks" / "backprop_tricks.toml"), "--variants", VARIANTS,
            "--seeds", args.seeds, "--epochs", str(args.epochs), "--train-subset", str(args.train_subset),
            "--dataset", "imagefolder", "--data-dir", args.data_dir, "--device", "cpu", "--precision",
            precision, "--workers", str(args.cores), "--no-progress", "--no-report", "--out", str(out),
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
    p.add_argument("--precisions", default="fp32,bf16", help="each measured side by side (default fp32,bf16)")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(REPO / "results" / "bench" / "population_vs_pool"))
    args = p.parse_args()
    precisions = args.precisions.split(",")
    runs = len(VARIANTS.split(",")) * len(args.seeds.split(","))
    cohort = max(2, -(-runs // args.cores))
    tmp = Path(tempfile.mkdtemp(prefix="pop_vs_pool_"))
    walls = {(pr, side): [] for pr in precisions for side in ("pool", "population")}
    per = {k: [] for k in walls}
    last = {}
    try:
        run("pool", args, cohort, tmp / "warm", "fp32")          # decodes and caches the dataset once
        for i in range(args.repeats):
            for precision in precisions:
                for side in ("pool", "population"):
                    out = tmp / f"{precision}_{side}{i}"
                    walls[precision, side].append(run(side, args, cohort, out, precision))
                    last[precision, side] = read(out)
                    per[precision, side].append(per_image(last[precision, side]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    result = {"slice": {"variants": VARIANTS, "seeds": args.seeds, "epochs": args.epochs,
                        "train_subset": args.train_subset, "runs": runs, "precisions": precisions, "cores": args.cores,
                        "cohort_size": cohort},
              "by_precision": {},
              "provenance": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                             "packages": package_versions(), "git": git_revision(), "load_average_at_end": load}}
    lines = [f"population vs pool, {runs} runs ({VARIANTS}; seeds {args.seeds}), {args.epochs} epoch(s) on "
             f"{args.train_subset} images, {args.cores} cores: pool = {args.cores} solo workers, population = "
             f"cohorts of {cohort}, one per core; side by side, {args.repeats} repeat(s)",
             f"machine: {cpu_model()}, torch {package_versions()['torch']}, load average at end {load[0]:.2f}",
             "precision  wall pool  wall population  ratio   train ms/model-image pool  population  ratio"]
    for precision in precisions:
        wall = {s: statistics.median(walls[precision, s]) for s in ("pool", "population")}
        each = {s: statistics.median(per[precision, s]) for s in ("pool", "population")}
        diffs = [last[precision, "population"][k]["accuracy"] - last[precision, "pool"][k]["accuracy"]
                 for k in last[precision, "pool"]]
        result["by_precision"][precision] = {
            "wall_seconds": {s: walls[precision, s] for s in ("pool", "population")}, "wall_median": wall,
            "wall_ratio_population_over_pool": wall["population"] / wall["pool"],
            "train_core_seconds_per_model_image": {s: per[precision, s] for s in ("pool", "population")},
            "per_image_median": each, "per_image_ratio_population_over_pool": each["population"] / each["pool"],
            "accuracy_diff_population_minus_solo": diffs}
        lines.append(f"{precision:<9}  {wall['pool']:7.1f} s  {wall['population']:13.1f} s  "
                     f"{wall['population'] / wall['pool']:4.2f}x  {each['pool'] * 1e3:22.3f} ms  "
                     f"{each['population'] * 1e3:7.3f} ms  {each['population'] / each['pool']:4.2f}x")
        lines.append(f"  accuracy, population - solo, per run (points): " + ", ".join(f"{100 * d:+.2f}" for d in diffs))
    lines.append("ratios above 1: the population is slower (training core-seconds per model-image; medians)")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

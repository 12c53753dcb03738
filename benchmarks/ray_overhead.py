"""What the Ray executor costs against the local process pool, on the same slice, in one run.

    python benchmarks/ray_overhead.py --data-dir /path/to/cifar10-jpeg [--train-subset 5000] [--repeats 2]

Runs the same study slice (2 variants x 2 seeds x 1 epoch on a class-balanced training subset,
each run evaluated on the whole test split) through ``tricks ablation`` in this process, first with
``--executor local`` (the default pool) and then with ``--executor ray`` (a local Ray started for
the study, one task per run), alternating, ``--repeats`` times each, into fresh result directories.
The dataset cache is warmed first, so neither side pays for decoding. Prints the wall times, the
summed per-run training+evaluation time (the same work on both sides) and the overhead ratio, and
checks that both executors produced identical accuracies. Writes ``results/bench/ray_overhead.json``
with provenance. Only ratios from one run mean anything: absolute times move between machines.
"""

from __future__ import annotations

import argparse
import csv
import json
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

VARIANTS = "baseline,dropout_conv"
SEEDS = "0,1"


def run(executor: str, data_dir: str, subset: int, out: Path) -> dict:
    args = ["ablation", "--spec", str(REPO / "benchmarks" / "backprop_tricks.toml"), "--variants", VARIANTS,
            "--seeds", SEEDS, "--epochs", "1", "--train-subset", str(subset), "--dataset", "imagefolder",
            "--data-dir", data_dir, "--out", str(out), "--no-progress", "--no-report", "--executor", executor]
    t0 = time.perf_counter()
    rc = tricks_main(args)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"tricks ablation --executor {executor} failed with exit code {rc}")
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    work = sum(float(r["train_seconds"]) + float(r["eval_seconds"]) for r in rows)
    return {"wall_s": wall, "work_s": work, "acc": {(r["variant"], r["seed"]): r["accuracy"] for r in rows}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="the unpacked cifar10-jpeg folder (train/, test/)")
    ap.add_argument("--train-subset", type=int, default=5000, help="training images per run (default 5000)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each executor, alternating (default 2)")
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "ray_overhead.json"))
    args = ap.parse_args()
    import ray

    scratch = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    try:
        run("local", args.data_dir, args.train_subset, scratch / "warm")   # warms the dataset cache
        times: dict[str, list[dict]] = {"local": [], "ray": []}
        for i in range(args.repeats):
            for ex in ("local", "ray"):
                times[ex].append(run(ex, args.data_dir, args.train_subset, scratch / f"{ex}{i}"))
                print(f"{ex:>5} #{i}: wall {times[ex][-1]['wall_s']:.1f} s, training+evaluation summed over runs "
                      f"{times[ex][-1]['work_s']:.1f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    same = all(r["acc"] == times["local"][0]["acc"] for ex in times for r in times[ex])
    med = {ex: statistics.median(r["wall_s"] for r in rs) for ex, rs in times.items()}
    work = {ex: statistics.median(r["work_s"] for r in rs) for ex, rs in times.items()}
    result = {
        "slice": {"variants": VARIANTS, "seeds": SEEDS, "epochs": 1, "train_subset": args.train_subset,
                  "test_images_per_run": 10000},
        "wall_s": {ex: [round(r["wall_s"], 2) for r in rs] for ex, rs in times.items()},
        "work_s": {ex: [round(r["work_s"], 2) for r in rs] for ex, rs in times.items()},
        "median_wall_s": {k: round(v, 2) for k, v in med.items()},
        "ray_over_local_wall": round(med["ray"] / med["local"], 3),
        "ray_extra_wall_s": round(med["ray"] - med["local"], 2),
        "identical_accuracies": same,
        "provenance": {"git": git_revision(), "packages": {**package_versions(), "ray": ray.__version__},
                       "python": platform.python_version(), "cpu": cpu_model(),
                       "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"median wall: local {med['local']:.1f} s, ray {med['ray']:.1f} s -> ray/local {result['ray_over_local_wall']:.2f}x "
          f"(+{result['ray_extra_wall_s']:.1f} s per study); summed training+evaluation local {work['local']:.1f} s, "
          f"ray {work['ray']:.1f} s; identical accuracies: {same}")
    print(f"written: {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""Short studies, whole processes: how far a command's wall time is from the compute inside it.

Run with ``make bench-short`` (or ``python benchmarks/short_studies.py --data-dir PATH``). Every
figure is a whole process, started and waited for as a user would (interpreter start, imports,
dataset load, worker start, training, evaluation, tables, report and figures, exit), measured
side by side in one run, the commands interleaved ``--reps`` times:

1. the smoke study: ``tricks ablation`` of the 8 study variants, 1 seed, 1 epoch, 5,000 training
   images, report included. Its yardstick is its own training-plus-evaluation time per worker (the
   runs' ``train_seconds + eval_seconds`` summed, over the number of workers): the target is a
   wall time within 1.5x of it;
2. the study slice: 2 variants (norm_inputs, dropout_conv) x 2 seeds x 1 epoch x 10,000 training
   images, each run evaluated on the 10,000 test images: the notebook pipeline
   (``benchmarks/notebook_pipeline.py``, one run after the other on all cores) against
   ``tricks ablation`` (report included). Target: the engine at least 3x the notebook.

``--against REV`` also runs the same ``tricks ablation`` commands from a git worktree of REV (an
earlier revision), interleaved with this tree's, so that a change is measured before/after in one
run. Writes results/bench/short_studies.json (every timing, provenance, machine) and prints ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SMOKE = ["--spec", "benchmarks/backprop_tricks.toml", "--seeds", "0", "--epochs", "1", "--train-subset", "5000"]
SLICE = ["--spec", "benchmarks/backprop_tricks.toml", "--variants", "norm_inputs,dropout_conv", "--seeds", "0,1",
         "--epochs", "1", "--train-subset", "10000"]
SLICE_RUNS = "norm_inputs:0,norm_inputs:1,dropout_conv:0,dropout_conv:1"
SMOKE_TARGET = 1.5     # wall / (training + evaluation per worker), at most
SLICE_TARGET = 3.0     # notebook wall / engine wall, at least


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    """Wall seconds of ``cmd`` as one whole process; its output goes to a file (as in a terminal, the
    command is over when its process exits, not when helpers that inherited a pipe close it)."""
    with tempfile.TemporaryFile() as log:
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t
        if r.returncode != 0:
            log.seek(0)
            sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{log.read().decode()[-3000:]}")
    return wall


def compute_per_worker(out: Path) -> tuple[float, int]:
    """(training + evaluation seconds per worker, workers) of the study in ``out``."""
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    workers = json.loads((out / "study.json").read_text())["workers"]
    return sum(r["train_seconds"] + r["eval_seconds"] for r in runs) / workers, workers


def accuracies(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text())["metrics"]["accuracy"] for p in sorted((out / "runs").glob("*.json"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CIFAR10_JPEG_DIR"),
                    help="imagefolder of CIFAR-10 images (default $CIFAR10_JPEG_DIR)")
    ap.add_argument("--reps", type=int, default=3, help="times each command runs, interleaved (noise: 5-10%% here)")
    ap.add_argument("--against", metavar="REV", help="also time the same commands at this git revision")
    ap.add_argument("--no-slice", action="store_true", help="only the smoke study (the notebook slice takes minutes)")
    ap.add_argument("--out", default=str(REPO / "results" / "bench"))
    args = ap.parse_args()
    if not args.data_dir or not Path(args.data_dir, "train").is_dir():
        sys.exit("needs --data-dir (or CIFAR10_JPEG_DIR): an image folder with train/ and test/")
    if args.reps < 1:
        sys.exit("--reps must be at least 1")

    import torch

    from tricks.running.provenance import provenance
    from tricks.training.data import DataSource, load_dataset

    load_dataset(DataSource("imagefolder", args.data_dir), progress=False)   # the cache exists for every command
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    trees = {"this tree": REPO}
    scratch = Path(tempfile.mkdtemp(prefix="short_studies_"))
    try:
        if args.against:
            old = scratch / "against"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.against], cwd=REPO, check=True,
                           capture_output=True)
            trees[f"at {args.against}"] = old
        common = ["--dataset", "imagefolder", "--data-dir", args.data_dir, "--no-progress"]
        py = sys.executable
        timings: dict[str, list] = {}
        same_numbers = {}
        for rep in range(args.reps):
            for label, tree in trees.items():
                out = scratch / f"smoke-{label}-{rep}"
                wall = timed([py, "-m", "tricks", "ablation", *SMOKE, *common, "--out", str(out)], tree, env)
                compute, workers = compute_per_worker(out)
                timings.setdefault(f"smoke study, {label}", []).append(
                    {"wall_s": wall, "compute_per_worker_s": compute, "workers": workers, "ratio": wall / compute})
                same_numbers.setdefault(label, accuracies(out))
                print(f"rep {rep + 1}  smoke study ({label}): {wall:5.1f} s wall, {compute:5.1f} s of training + "
                      f"evaluation per worker ({workers} workers): {wall / compute:.2f}x", flush=True)
            if args.no_slice:
                continue
            wall = timed([py, str(REPO / "benchmarks" / "notebook_pipeline.py"), "--data-dir", args.data_dir,
                          "--train-images", "10000", "--runs", SLICE_RUNS], REPO, env)
            timings.setdefault("study slice, notebook", []).append({"wall_s": wall})
            print(f"rep {rep + 1}  study slice (notebook pipeline): {wall:5.1f} s", flush=True)
            for label, tree in trees.items():
                out = scratch / f"slice-{label}-{rep}"
                wall = timed([py, "-m", "tricks", "ablation", *SLICE, *common, "--out", str(out)], tree, env)
                timings.setdefault(f"study slice, engine, {label}", []).append({"wall_s": wall})
                print(f"rep {rep + 1}  study slice (tricks ablation, {label}): {wall:5.1f} s", flush=True)
    finally:
        if args.against:
            subprocess.run(["git", "worktree", "remove", "--force", str(scratch / "against")], cwd=REPO,
                           capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)

    def med(name, key="wall_s"):
        return statistics.median(t[key] for t in timings[name])

    summary = {}
    print("\nmedians over", args.reps, "reps")
    for label in trees:
        r = med(f"smoke study, {label}", "ratio")
        summary[f"smoke_ratio, {label}"] = r
        print(f"smoke study ({label}): {med(f'smoke study, {label}'):.1f} s wall = {r:.2f}x its training + "
              f"evaluation per worker (target <= {SMOKE_TARGET}x)")
        if not args.no_slice:
            x = med("study slice, notebook") / med(f"study slice, engine, {label}")
            summary[f"slice_speedup, {label}"] = x
            print(f"study slice ({label}): notebook {med('study slice, notebook'):.1f} s, engine "
                  f"{med(f'study slice, engine, {label}'):.1f} s: {x:.2f}x (target >= {SLICE_TARGET}x)")
    if args.against:
        label = f"at {args.against}"
        print(f"smoke study, this tree vs {label}: {med(f'smoke study, {label}') / med('smoke study, this tree'):.2f}x "
              f"faster; the same accuracies: {same_numbers['this tree'] == same_numbers[label]}")
        summary["same_accuracies_as_against"] = same_numbers["this tree"] == same_numbers[label]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"reps": args.reps, "against": args.against, "data_dir": args.data_dir, "timings": timings,
            "summary": summary, "targets": {"smoke_ratio_max": SMOKE_TARGET, "slice_speedup_min": SLICE_TARGET},
            "provenance": provenance(torch.device("cpu")), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out_dir / "short_studies.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out_dir / 'short_studies.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

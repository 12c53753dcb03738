"""Refactors do not move numbers: every variant of every committed spec, 1 epoch on 1,000 images, fp32,
1 thread, seed 0, trained by a git revision and by the working tree, and compared run by run.

    python benchmarks/numbers_unchanged.py --against HEAD --data-dir ~/.cache/backprop-tricks/cifar10-jpeg

The revision is checked out into a temporary git worktree and run from there (PYTHONPATH), so both
sides use this venv's packages. A run matches when its settings key, its final metrics and its
per-epoch history (timings left out) are identical. CPU training is deterministic at a fixed thread
count, so on one machine any difference is a change in the code's numbers. Exit 1 on a difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = ("backprop_tricks", "one_at_a_time", "lr_schedules", "lecun_lecture", "factorial", "modern_tricks",
         "factorial_followup", "tuned_tricks", "transfer")
TIMINGS = ("train_seconds", "eval_seconds")


def train(tree: Path, out: Path, data_dir: str, workers: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for name in SPECS:
        spec = tree / "benchmarks" / f"{name}.toml"
        if not spec.exists():
            continue
        validation = ["--validation", "200"] if "validation" in spec.read_text() else []
        cmd = [sys.executable, "-m", "tricks", "ablation", "--spec", str(spec), "--dataset", "imagefolder",
               "--data-dir", data_dir, "--train-subset", "1000", "--epochs", "1", "--seeds", "0",
               "--precision", "fp32", "--device", "cpu", "--threads", "1", "--workers", str(workers),
               "--out", str(out / name), "--no-report", "--no-progress", *validation]
        r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if r.returncode not in (0, 1):
            print(f"{tree.name} {name}: exit {r.returncode}: {r.stderr.strip()[-400:]}", file=sys.stderr)


def comparable(path: Path) -> dict:
    rec = json.loads(path.read_text())
    history = [{k: v for k, v in e.items() if k not in TIMINGS} for e in rec.get("history", [])]
    return {"key": rec["settings_key"], "accuracy": rec["metrics"]["accuracy"], "history": history,
            "confusion": rec["metrics"]["confusion_matrix"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="HEAD", help="the git revision to compare with (default HEAD)")
    ap.add_argument("--data-dir", required=True, help="the unpacked cifar10-jpeg folder")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep both trees' runs here (default: a temporary folder)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="numbers-unchanged-"))
    base = work / "base-tree"
    if not base.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.against], cwd=REPO, check=True,
                       capture_output=True)
    try:
        train(base, work / "before", args.data_dir, args.workers)
        train(REPO, work / "after", args.data_dir, args.workers)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    before = {p.relative_to(work / "before"): p for p in (work / "before").rglob("runs/*.json")}
    after = {p.relative_to(work / "after"): p for p in (work / "after").rglob("runs/*.json")}
    same, differ = 0, []
    for rel in sorted(set(before) | set(after)):
        if rel not in before or rel not in after:
            differ.append(f"{rel}: only {'after' if rel in after else 'before'}")
            continue
        a, b = comparable(before[rel]), comparable(after[rel])
        if a == b:
            same += 1
        else:
            what = [k for k in a if a[k] != b[k]]
            differ.append(f"{rel}: {', '.join(what)} differ (accuracy {a['accuracy']:.4f} -> {b['accuracy']:.4f})")
    for line in differ:
        print(line)
    print(f"{same} of {len(set(before) | set(after))} runs identical ({args.against} vs the working tree, "
          f"1 epoch, 1,000 images, fp32, 1 thread); runs in {work}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

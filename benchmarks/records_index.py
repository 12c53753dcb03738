"""Records read once: how long a study start and `tricks figures` take on a folder of 5,000 stored runs.

    python benchmarks/records_index.py [--runs 5000] [--against REV] [--keep DIR] [--skip-figures]

Writes a study folder of synthetic run records (``--runs`` of them: the cumulative study's 8 variants x
runs/8 seeds, each a copy of one real 10-epoch record on a synthetic image folder (60 training and
10,002 test images, so that each record holds 10,002 test predictions, as a CIFAR-10 run's) with its
variant, seed, settings and key, test predictions included, as a study writes them), then times, each in
a fresh process: reading every record once (``RecordIndex``), a study start on the folder (``run_study``
with everything stored: precision auto, conflicts, what is done, the folder's study, runs.csv; nothing
trains) and ``tricks figures`` (the report). ``--against REV`` times the same study start with the code
of git revision REV too (a temporary worktree), on the same folder. Prints one line per measure.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SPEC = REPO / "benchmarks" / "backprop_tricks.toml"
START = """
import sys, time
import tricks
assert tricks.__file__.startswith(sys.path[0] or __import__("os").getcwd()), tricks.__file__
from pathlib import Path
from tricks.plugins import load_spec
from tricks.running.study import StudyOptions, run_study
from tricks.training.data import DataSource
spec, data, out, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
opts = StudyOptions(spec=load_spec(Path(spec)), source=DataSource("imagefolder", data), out_dir=Path(out),
                    seeds=tuple(range(seeds)), epochs=10, workers=1, progress=False, device="cpu", precision="auto")
t = time.perf_counter()
o = run_study(opts, on_notice=lambda m: None)
print(f"{time.perf_counter() - t:.2f} {o.reused} {len(o.finished)}")
"""


def image_folder(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 3334)):     # 10,002 test images: records of a real size
        for ci, c in enumerate(("blue", "green", "red")):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 90, size=(32, 32, 3), dtype=np.uint8)
                img[..., ci] += 150
                Image.fromarray(img).save(root / split / c / f"{i:04d}.png")
    return root


def write_folder(out: Path, data: Path, n: int) -> int:
    """One real run, then ``n`` records copied from it, each with its planned settings and key."""
    from tricks.plugins import load_spec
    from tricks.running.plan import plan
    from tricks.running.records import run_path, write_json
    from tricks.running.study import StudyOptions, run_study
    from tricks.training.data import DataSource, load_dataset

    seeds = max(1, n // 8)
    source = DataSource("imagefolder", str(data))
    opts = StudyOptions(spec=load_spec(SPEC), source=source, out_dir=out, variants=["baseline"], seeds=(0,),
                        epochs=10, workers=1, progress=False, device="cpu", precision="fp32")
    run_study(opts, on_notice=lambda m: None)
    template = __import__("json").loads(run_path(out, "baseline__seed0").read_text())
    dataset = load_dataset(source, progress=False)
    runs = plan(StudyOptions(**{**vars(opts), "variants": None, "seeds": tuple(range(seeds))}),
                {source: dataset.checksum})
    for r in runs:
        rec = copy.deepcopy(template)
        rec.update(variant=r.variant, seed=r.seed, settings=r.to_dict(), settings_key=r.key())
        write_json(run_path(out, r.stem), rec)
    return seeds


def timed(cmd: list[str], env: dict | None = None, tree: Path = REPO) -> tuple[float, str]:
    """Run ``cmd`` from ``tree`` (``python -c`` puts the current folder first on sys.path: its code runs)."""
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=tree)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{cmd[:4]}: exit {r.returncode}: {r.stderr[-600:]}")
    return time.perf_counter() - t, r.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--against", help="also time the study start with this git revision's code")
    ap.add_argument("--keep", type=Path, help="build the folder here and keep it, or reuse the one an earlier run "
                                              "kept there (default: a temporary folder)")
    ap.add_argument("--skip-figures", action="store_true")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="records-index-"))
    os.environ.setdefault("TRICKS_CACHE_DIR", str(work / "cache"))
    data, out = work / "images", work / "study"
    t = time.perf_counter()
    reused = len(list((out / "runs").glob("*.json"))) >= args.runs     # --keep's folder from an earlier run
    seeds = max(1, args.runs // 8) if reused else write_folder(out, image_folder(data), args.runs)
    files = len(list((out / "runs").glob("*.json")))
    size = sum(p.stat().st_size for p in (out / "runs").glob("*.json"))
    print(f"folder: {files} run records ({size / files / 1e3:.1f} kB each) "
          + ("reused" if reused else f"written in {time.perf_counter() - t:.1f} s"))
    py = sys.executable
    secs, _ = timed([py, "-c", "import sys, time; from tricks.running.index import RecordIndex; t = time.perf_counter(); "
                     "i = RecordIndex(sys.argv[1]); print(len(i.records()), time.perf_counter() - t)", str(out)])
    print(f"read every record once (RecordIndex, in a fresh process): {secs:.2f} s")
    trees = [("working tree", REPO)]
    base = None
    if args.against:
        base = work / "base-tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.against], cwd=REPO, check=True,
                       capture_output=True)
        trees.append((args.against, base))
    try:
        for name, tree in trees:
            secs, said = timed([py, "-c", START, str(SPEC), str(data), str(out), str(seeds)], {"PYTHONPATH": str(tree)},
                               tree)
            inside, reused, trained = said.split()[-3:]
            print(f"study start, {name}: {secs:.2f} s in all ({inside} s in run_study; {reused} runs reused, "
                  f"{trained} trained)")
    finally:
        if base is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    if not args.skip_figures:
        secs, _ = timed([py, "-m", "tricks", "figures", "--results", str(out)])
        print(f"tricks figures (the report of {files} runs): {secs:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

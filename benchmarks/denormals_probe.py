"""Subnormal ("denormal") floats in a run's state, and what flushing them to zero changes.

    python benchmarks/denormals_probe.py CHECKPOINT --data-dir ~/.cache/backprop-tricks/cifar10-jpeg [--steps 200]

CHECKPOINT is ``<results>/checkpoints/<variant>__seed<k>.pt``; the variant's tricks are read from the
``study.json`` of that results directory.

Weight decay with Adam drives the weights of dead units, and Adam's moments of their zero gradients,
into the subnormal range (|x| < 1.18e-38 in fp32). Some x86 CPUs take a microcode assist on every
arithmetic operation with a subnormal operand; a run in that state can train several times slower.
This probe starts from one run's per-epoch checkpoint, counts the subnormals in it, then trains
``--steps`` steps of that run twice (the run built by ``training.build.build_run`` and resumed from
the checkpoint as the engine resumes it: the run's next steps), side by side in fresh 1-thread
processes, on the same batches and dropout masks: once keeping subnormals (the engine before
``FLUSH_DENORMALS``), once with ``torch.set_flush_denormal(True)`` (flush-to-zero and
denormals-are-zero, as the engine trains on CPU now). It prints the speed ratio and what differs
afterwards: weights and optimizer state (bit for bit, and the largest absolute difference) and the
test-set predictions. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TINY = 1.1754943508222875e-38   # smallest positive normal fp32; nonzero values below it are subnormal


def subnormals(state) -> tuple[int, int]:
    """(subnormal fp32 entries, all fp32 entries) in a nested state (dicts, lists, tensors)."""
    import torch

    if isinstance(state, torch.Tensor):
        if state.dtype != torch.float32:
            return 0, 0
        a = state.abs()
        return int(((a > 0) & (a < TINY)).sum()), state.numel()
    pairs = [subnormals(v) for v in (state.values() if isinstance(state, dict) else
                                     state if isinstance(state, (list, tuple)) else [])]
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def child(args) -> int:
    """Train ``steps`` steps from the checkpoint in this process; save the state and predictions."""
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(args.flush)
    from tricks.plugins import load_plugins
    from tricks.running.settings import RunSettings
    from tricks.training.build import build_run
    from tricks.training.checkpoint import set_rng_state
    from tricks.training.data import DataSource, load_dataset
    from tricks.training.engine import evaluate, train_one_epoch
    from tricks.training.recipe import build_recipe

    study = json.loads(Path(args.study).read_text())
    variant = next(v for v in study["spec"]["variants"] if v["name"] == args.variant)
    imports = tuple(study["spec"].get("imports", []))
    load_plugins(list(imports))
    recipe = build_recipe(variant["name"], variant["tricks"])
    data = load_dataset(DataSource("imagefolder", args.data_dir), progress=False)
    # The run as its study built it (build_run: the study's training split, the input transform fitted
    # on it, the variant's model, optimizer, LR controller, hooks and streams), then the checkpoint's
    # state put into it as the engine resumes a run: the steps trained here are the run's next ones.
    settings = RunSettings(spec=study["spec"]["name"], variant=variant["name"], tricks=tuple(variant["tricks"]),
                           imports=imports, seed=args.seed, epochs=study["epochs"], batch_size=study["batch_size"],
                           train_subset=study.get("train_subset"), precision="fp32", data_kind="imagefolder",
                           data_sha256=data.checksum, validation=study.get("validation") or 0, threads=1)
    device = torch.device("cpu")
    run = build_run(recipe, settings, data, device)
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    if "lr" in saved:
        run.lr.load_state_dict(saved["lr"])
    if "tricks" in saved:
        recipe.load_state_dict(saved["tricks"])
    if "rng" in saved:
        set_rng_state(saved["rng"], run.streams.generators(), device)
    batch = settings.batch_size
    order = recipe.data_order(run.train_y.numel(), run.streams.order)[:args.steps * batch]
    images, labels = run.train_x[order], run.train_y[order]   # the next epoch's first ``steps`` batches
    t0 = time.perf_counter()
    train_one_epoch(run.model, run.optimizer, images, labels, run.transform, batch, torch.arange(order.numel()),
                    "fp32", run.hooks, run.lr.after_step, run.streams.augment, step_generator=run.streams.step,
                    num_classes=len(data.classes))
    seconds = time.perf_counter() - t0
    preds, _ = evaluate(run.model, run.test_x, run.test_y, run.transform, "fp32", predict=run.hooks.predict)
    torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "preds": preds,
                "seconds": seconds}, args.out)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=200,
                    help="training steps per mode (batches of the run's batch size: 64 images in the studies)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--flush", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--study", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    import torch

    stem = args.checkpoint.stem
    variant, seed = stem.rsplit("__seed", 1)
    study = args.checkpoint.resolve().parent.parent / "study.json"
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    for part in ("model", "optimizer"):
        n, total = subnormals(saved[part])
        print(f"checkpoint {stem} (after epoch {saved['epoch']}): {part}: {n} subnormal of {total} fp32 values")
    outs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("keep", "flush", "keep", "flush"):   # interleaved: the machine's speed drifts
            out = Path(tmp) / f"{mode}.pt"
            cmd = [sys.executable, __file__, str(args.checkpoint), "--child", "--data-dir", args.data_dir,
                   "--steps", str(args.steps), "--study", str(study), "--variant", variant, "--seed", seed,
                   "--out", str(out)] + (["--flush"] if mode == "flush" else [])
            subprocess.run(cmd, check=True, cwd=REPO)
            r = torch.load(out, weights_only=False)
            outs.setdefault(mode, []).append(r)
            print(f"  {mode:5s}: {args.steps} steps in {r['seconds']:.1f} s")
    keep, flush = outs["keep"][0], outs["flush"][0]
    ratio = min(r["seconds"] for r in outs["keep"]) / min(r["seconds"] for r in outs["flush"])
    print(f"speed, flushing subnormals vs keeping them: {ratio:.2f}x (best of 2 each)")
    for part in ("model", "optimizer"):
        a, b = keep[part], flush[part]
        flat_a = a if part == "model" else {f"{k}/{n}": t for k, s in a["state"].items() for n, t in s.items()
                                            if isinstance(t, torch.Tensor) and t.dtype == torch.float32}
        flat_b = b if part == "model" else {f"{k}/{n}": t for k, s in b["state"].items() for n, t in s.items()
                                            if isinstance(t, torch.Tensor) and t.dtype == torch.float32}
        differ = [k for k in flat_a if not torch.equal(flat_a[k], flat_b[k])]
        worst = max(((flat_a[k] - flat_b[k]).abs().max().item() for k in flat_a), default=0.0)
        n_keep = subnormals(a)[0]
        print(f"{part}: {len(differ)} of {len(flat_a)} tensors differ, largest absolute difference {worst:.3g}; "
              f"{n_keep} subnormal values when kept, {subnormals(b)[0]} when flushed")
    same = int((keep["preds"] == flush["preds"]).sum())
    print(f"test predictions identical for {same} of {keep['preds'].numel()} images; "
          f"the two kept runs identical: {torch.equal(outs['keep'][0]['preds'], outs['keep'][1]['preds'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

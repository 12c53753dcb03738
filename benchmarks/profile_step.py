"""Where a training step's time goes: torch.profiler over the engine's own loop, grouped by kind of op.

    python benchmarks/profile_step.py [--data-dir DIR] [--variant dropout_conv] [--precision bf16]
        [--threads 1] [--steps 50]

Profiles ``steps`` training steps (batch 64) of one study variant with ``tricks.training.engine.train_one_epoch``
after a warm-up, on ``threads`` threads (1 = what a study worker gets), and prints the self CPU time
per group of ops (convolutions forward/backward, pooling, ReLU, dropout masks, optimizer, casts
and copies, the rest) as milliseconds per step and as a share, with the top ops of each group.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.plugins import load_plugins, load_spec  # noqa: E402
from tricks.running.settings import RunSettings  # noqa: E402
from tricks.training.allocator import keep_freed_memory  # noqa: E402
from tricks.training.build import build_run  # noqa: E402
from tricks.training.data import Dataset, DataSource, load_dataset  # noqa: E402
from tricks.training.engine import train_one_epoch  # noqa: E402
from tricks.training.recipe import build_recipe  # noqa: E402

BATCH = 64
# (group, substrings of aten op names): the first group whose substring matches takes the op
GROUPS = (
    ("conv backward", ("convolution_backward",)),
    ("conv forward", ("mkldnn_convolution", "convolution")),
    ("max-pool", ("max_pool2d",)),
    ("ReLU", ("threshold_backward", "clamp_min", "relu")),
    ("dropout masks", ("random_", "uniform_", "bernoulli", "aten::ge")),
    ("dense layers", ("aten::mm", "aten::addmm")),
    ("optimizer", ("Optimizer", "lerp_", "addcdiv_", "sqrt", "_foreach")),
    ("casts and copies", ("copy_", "_to_copy", "aten::to")),
    ("zero fills", ("fill_", "zero_")),
)


def group_of(name: str) -> str:
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "other"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CIFAR10_JPEG_DIR"),
                    help="imagefolder of CIFAR-10 images (default $CIFAR10_JPEG_DIR); random images without it")
    ap.add_argument("--variant", default="norm_inputs", help="a variant of benchmarks/backprop_tricks.toml")
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--default-allocator", action="store_true", help="leave glibc's allocator at its defaults")
    args = ap.parse_args()
    spec = load_spec(REPO / "benchmarks" / "backprop_tricks.toml")
    variants = {v.name: v for v in spec.variants}
    if args.variant not in variants:
        print(f"profile_step: unknown variant {args.variant!r}; valid: {', '.join(variants)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if not args.default_allocator:
        keep_freed_memory()
    load_plugins()
    n = (args.steps + 10) * BATCH
    if args.data_dir:
        ds = load_dataset(DataSource("imagefolder", args.data_dir), progress=False)
        data = Dataset(ds.train_x[:n], ds.train_y[:n], ds.test_x[:0], ds.test_y[:0], ds.classes, ds.source,
                       ds.checksum)
    else:
        data = Dataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (n,)),
                       torch.zeros((0, 3, 32, 32), dtype=torch.uint8), torch.zeros((0,), dtype=torch.int64),
                       [str(i) for i in range(10)], DataSource("imagefolder", "random"), "random")
    variant = variants[args.variant]
    # The run as a study builds it (build_run: input transform fitted on these training images, seed 0's
    # streams, the variant's model with max-pooling before the ReLUs in channels_last, its optimizer, LR
    # controller and step hooks), for one epoch of the warm-up plus the profiled steps.
    settings = RunSettings(spec=spec.name, variant=variant.name, tricks=variant.tricks, imports=spec.imports, seed=0,
                           epochs=1, batch_size=BATCH, train_subset=None, precision=args.precision,
                           data_kind="bench", data_sha256=data.checksum, threads=args.threads)
    recipe = build_recipe(variant.name, variant.tricks)
    run = build_run(recipe, settings, data, torch.device("cpu"))

    def steps(lo: int, hi: int) -> None:
        """Train on the run's training images lo:hi, in the order the run's data-order stream gives."""
        order = recipe.data_order(hi - lo, run.streams.order)
        train_one_epoch(run.model, run.optimizer, run.train_x[lo:hi], run.train_y[lo:hi], run.transform, BATCH,
                        order, args.precision, run.hooks, run.lr.after_step, run.streams.augment,
                        step_generator=run.streams.step, num_classes=len(data.classes))

    steps(0, 10 * BATCH)   # warm-up

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steps(10 * BATCH, n)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    per_group, ops = defaultdict(float), defaultdict(list)
    for e in events:
        grp = group_of(e.key)
        per_group[grp] += e.self_cpu_time_total
        ops[grp].append((e.self_cpu_time_total, e.key))
    steps = args.steps
    print(f"{args.variant}, {args.precision}, {args.threads} thread(s), batch {BATCH}, {steps} steps: "
          f"{total / 1e3 / steps:.1f} ms per step under the profiler ({steps * BATCH / (total / 1e6):.0f} img/s)")
    for grp, us in sorted(per_group.items(), key=lambda kv: -kv[1]):
        top = ", ".join(f"{k} {t / 1e3 / steps:.2f}" for t, k in sorted(ops[grp], reverse=True)[:3])
        print(f"  {grp:<17} {us / 1e3 / steps:6.2f} ms/step {us / total:6.1%}   ({top})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

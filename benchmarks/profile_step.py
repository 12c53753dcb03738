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

from tricks.training.allocator import keep_freed_memory  # noqa: E402
from tricks.training.data import DataSource, load_dataset  # noqa: E402
from tricks.training.engine import MEMORY_FORMAT, train_one_epoch  # noqa: E402
from tricks.plugins import load_plugins  # noqa: E402
from tricks.specs.recipe import Recipe, build_recipe  # noqa: E402
from tricks.specs.spec import load_spec  # noqa: E402

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
        x, y = ds.train_x[:n], ds.train_y[:n]
    else:
        x, y = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (n,))
    recipe = Recipe(args.variant, variants[args.variant].instantiate())
    transform = recipe.input_transform(x)
    model = recipe.model(0, 10).to(memory_format=MEMORY_FORMAT)
    opt = recipe.optimizer(model)
    g = torch.Generator().manual_seed(0)
    train_one_epoch(model, opt, x[:10 * BATCH], y[:10 * BATCH], transform, BATCH,
                    torch.randperm(10 * BATCH, generator=g), args.precision)

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_one_epoch(model, opt, x[10 * BATCH:], y[10 * BATCH:], transform, BATCH,
                    torch.randperm(x.shape[0] - 10 * BATCH, generator=g), args.precision)
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

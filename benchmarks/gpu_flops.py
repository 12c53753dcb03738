"""The achieved FLOP/s of a study against the device's measured bf16 matmul peak (benchmarks/gpu_check.sh).

    python benchmarks/gpu_flops.py peak [--out FILE]                      # measure the matmul peaks
    python benchmarks/gpu_flops.py achieved --results DIR --wall SECONDS --peak FILE [--out FILE]

``peak``: the device's dense bf16 and IEEE-fp32 matmul throughput (8192 x 8192, CUDA events, after a
warm-up): the ceiling any training can reach there. ``achieved``: the work a study's finished runs did
(forward FLOPs per image of each run's network, measured by torch's FlopCounterMode; a training image
costs 3x a forward pass, forward plus backward; every epoch's evaluation of the validation and test
images is counted) divided by the study's wall time, and its share of the bf16 peak. Nothing here
changes a run; it reads the stored records. Needs CUDA for ``peak`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tricks.running.records import load_runs  # noqa: E402

MATMUL_N = 8192
TRAIN_COST = 3      # a training image: one forward and one backward (about twice a forward)


def matmul_peak(dtype: torch.dtype, n: int = MATMUL_N, iters: int = 20) -> float:
    """FLOP/s of an n x n x n matmul in ``dtype`` on the current CUDA device (TF32 off for fp32)."""
    from tricks.training.cuda import strict_math

    device = torch.device("cuda")
    with strict_math(device):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            a @ b
        end.record()
        torch.cuda.synchronize()
    return 2 * n ** 3 * iters / (start.elapsed_time(end) / 1000.0)


def forward_flops(record: dict) -> int:
    """Forward FLOPs of one 3x32x32 image through the run's network (its variant's tricks applied)."""
    from torch.utils.flop_counter import FlopCounterMode

    from tricks.plugins import load_plugins
    from tricks.training.recipe import build_recipe

    settings = record["settings"]
    load_plugins(tuple(settings.get("imports") or ()))
    model = build_recipe(record["variant"], settings["tricks"]).model(0, len(record["classes"]))
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32))
    return int(counter.get_total_flops())


def achieved(results: Path, wall: float) -> dict:
    runs = load_runs(results)
    cache: dict[str, int] = {}
    total = 0
    for r in runs:
        key = json.dumps(r["settings"]["tricks"], sort_keys=True)
        if key not in cache:
            cache[key] = forward_flops(r)
        epochs = r["epochs_run"]
        test = int((r.get("dataset") or {}).get("test_images") or len(r.get("predictions") or []) or 10000)
        evaluated = (r.get("validation_images", 0) + test) * epochs
        total += cache[key] * (TRAIN_COST * r.get("train_images", 0) * epochs + evaluated)
    return {"runs": len(runs), "flops": total, "wall_seconds": wall,
            "achieved_flops_per_s": total / wall if wall > 0 else None,
            "forward_flops_per_image": sorted(set(cache.values()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    pk = sub.add_parser("peak")
    pk.add_argument("--out")
    ac = sub.add_parser("achieved")
    ac.add_argument("--results", required=True)
    ac.add_argument("--wall", type=float, required=True, help="the study's wall time, seconds")
    ac.add_argument("--peak", help="the JSON `peak` wrote")
    ac.add_argument("--out")
    args = p.parse_args(argv)
    if args.what == "peak":
        if not torch.cuda.is_available():
            print("gpu_flops: no CUDA device", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "bf16_matmul_flops_per_s": matmul_peak(torch.bfloat16),
               "fp32_ieee_matmul_flops_per_s": matmul_peak(torch.float32), "matmul_n": MATMUL_N}
        out["seconds"] = time.perf_counter() - t0
    else:
        out = achieved(Path(args.results), args.wall)
        if args.peak and Path(args.peak).exists():
            peak = json.loads(Path(args.peak).read_text())["bf16_matmul_flops_per_s"]
            out["bf16_peak_flops_per_s"] = peak
            out["share_of_bf16_peak"] = out["achieved_flops_per_s"] / peak if out["achieved_flops_per_s"] else None
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(summary(out))    # the last line: what gpu_check.sh puts in its summary
    return 0


def summary(out: dict) -> str:
    if "bf16_matmul_flops_per_s" in out:
        return (f"bf16 {out['bf16_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s, "
                f"IEEE fp32 {out['fp32_ieee_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s")
    if not out.get("achieved_flops_per_s"):
        return f"{out['runs']} finished runs: nothing to measure"
    share = out.get("share_of_bf16_peak")
    return (f"{out['runs']} finished runs, {out['achieved_flops_per_s'] / 1e12:.3f} TFLOP/s"
            + (f", {100 * share:.2f}% of the bf16 peak" if share else ""))


if __name__ == "__main__":
    sys.exit(main())

"""Does ``torch.compile`` pay for a study worker? Eager against compiled, side by side, one thread.

    python benchmarks/compile_probe.py [--data-dir PATH] [--steps 100] [--rounds 3]

The issue's lever: fuse the elementwise work of a training step (ReLU, dropout masks, the
uint8-to-float conversion and normalization) with ``torch.compile`` (Inductor, which needs a C
compiler on CPU). In one process, on one thread (what a study worker gets), on the engine's run
(norm_inputs variant, built by ``training.build.build_run``: channels_last, max-pool before ReLU) with
and without conv dropout, trained by the engine's step (``train_one_epoch``):

- the compile cost: wall seconds of the first compiled steps beyond eager ones;
- the steady training rate, eager and compiled, in interleaved windows of ``--steps`` steps;
- the input conversion alone (uint8 batch -> normalized float), eager and compiled;
- the break-even: how many steps the compiled step must run to pay back its compile time, against
  a 10-epoch full-data run's 7,820 steps.

Writes results/bench/compile_probe.json. Not a unit test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import BATCH, lever_run, load_bench_data  # noqa: E402
from tricks.plugins import load_plugins  # noqa: E402
from tricks.plugins.dropout import FastDropout  # noqa: E402
from tricks.running.provenance import provenance  # noqa: E402
from tricks.training.allocator import keep_freed_memory  # noqa: E402
from tricks.training.build import MEMORY_FORMAT, Run  # noqa: E402
from tricks.training.engine import train_one_epoch  # noqa: E402

RUN_STEPS = 10 * 782   # optimizer steps of a 10-epoch run on 50,000 images at batch 64


def steps(run: Run, model, n: int, start: int = 0) -> float:
    """Seconds for ``n`` training steps of ``run`` (the engine's step: ``train_one_epoch`` with the
    run's optimizer, hooks and LR controller) through ``model`` (the run's net, or it compiled), on
    consecutive batches of the run's training images from batch ``start`` (wrapping around)."""
    batches = (torch.arange(start, start + n) % (run.train_y.numel() // BATCH)) * BATCH
    idx = (batches[:, None] + torch.arange(BATCH)).flatten()
    x, y = run.train_x[idx], run.train_y[idx]
    t = time.perf_counter()
    train_one_epoch(model, run.optimizer, x, y, run.transform, BATCH, torch.arange(idx.numel()), "fp32", run.hooks,
                    run.lr.after_step, run.streams.augment, step_generator=run.streams.step)
    return time.perf_counter() - t


def probe(data, dropout: bool, n: int, rounds: int) -> dict:
    # Two identical runs, built as a study builds them (throughput.lever_run: build_run, seed 0); the
    # lever: the second one's net is compiled.
    eager = lever_run(data, dropout_cls=FastDropout if dropout else None)
    comp = lever_run(data, dropout_cls=FastDropout if dropout else None)
    compiled = torch.compile(comp.model)
    steps(eager, eager.model, 5)                              # eager warm-up
    first_eager = steps(eager, eager.model, 5)
    first_compiled = steps(comp, compiled, 5)                 # includes compiling forward + backward
    compile_s = first_compiled - first_eager
    e_rates, c_rates = [], []
    for r in range(rounds):                                   # interleaved: drift hits both alike
        e_rates.append(n * BATCH / steps(eager, eager.model, n, 5 + r * n))
        c_rates.append(n * BATCH / steps(comp, compiled, n, 5 + r * n))
    e, c = statistics.median(e_rates), statistics.median(c_rates)
    saved_per_step = BATCH / e - BATCH / c
    return {"dropout": dropout, "compile_seconds": compile_s, "eager_img_s": e, "compiled_img_s": c,
            "speedup": c / e, "break_even_steps": compile_s / saved_per_step if saved_per_step > 0 else None,
            "eager_rounds": e_rates, "compiled_rounds": c_rates}


def conversion(data, n: int, rounds: int) -> dict:
    transform = lever_run(data).transform

    def convert(xb):
        return transform(xb.float().div_(255.0)).contiguous(memory_format=MEMORY_FORMAT)
    fused = torch.compile(convert)
    xb = data.train_x[:BATCH]
    t = time.perf_counter()
    fused(xb)
    compile_s = time.perf_counter() - t

    def rate(fn):
        t = time.perf_counter()
        for _ in range(n):
            fn(xb)
        return n * BATCH / (time.perf_counter() - t)
    e = statistics.median(rate(convert) for _ in range(rounds))
    c = statistics.median(rate(fused) for _ in range(rounds))
    return {"compile_seconds": compile_s, "eager_img_s": e, "compiled_img_s": c, "speedup": c / e}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="CIFAR-10 image folder (default: random images)")
    ap.add_argument("--steps", type=int, default=100, help="training steps per timed window")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved windows per configuration")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "compile_probe.json")
    args = ap.parse_args()
    keep_freed_memory()
    torch.set_num_threads(1)
    load_plugins()
    data, source = load_bench_data(args.data_dir, 20 * BATCH * args.rounds, 1000)
    results = {"training step": [probe(data, d, args.steps, args.rounds) for d in (False, True)],
               "input conversion": conversion(data, 20 * args.steps, args.rounds)}
    for r in results["training step"]:
        be = f"{r['break_even_steps']:.0f}" if r["break_even_steps"] else "never"
        print(f"training step{' + conv dropout' if r['dropout'] else ''}: eager {r['eager_img_s']:.0f} img/s, "
              f"compiled {r['compiled_img_s']:.0f} img/s ({r['speedup']:.2f}x); compile {r['compile_seconds']:.1f} s; "
              f"break-even after {be} steps (a 10-epoch run has {RUN_STEPS})")
    c = results["input conversion"]
    print(f"input conversion: eager {c['eager_img_s']:.0f} img/s, compiled {c['compiled_img_s']:.0f} img/s "
          f"({c['speedup']:.2f}x); compile {c['compile_seconds']:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "data": source, "torch": torch.__version__,
                                    "provenance": provenance(torch.device("cpu")),
                                    "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

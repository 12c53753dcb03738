"""Throughput: the original notebook's pipeline against this project's engine, side by side.

Run with ``make bench`` (or ``python benchmarks/throughput.py --data-dir PATH``). In one process
run, on the same images and machine, it measures:

1. the machine: fp32 and bf16 matmul peaks (GFLOP/s) on 1 thread and on all cores, and the net's
   FLOPs per image (torch's FLOP counter);
2. single runs, all cores: (a) the notebook: a Dataset turning each sample into a PIL image with
   ToTensor()+Normalize(), a DataLoader (batch 64, shuffle), a plain NCHW loop with nn.Dropout;
   (b) the engine (``tricks.training.engine.train_run``, the code the study runs) in fp32 and in bf16;
3. the levers, one at a time, on 1 thread (what a study worker gets): the glibc allocator left as
   it is vs kept (``tricks.training.allocator``), NCHW vs channels_last, max-pooling before vs after
   the ReLU, fp32 vs bf16, three ways of drawing conv-dropout masks, and the evaluation batch size;
4. a study slice (2 variants x 2 seeds): the notebook one run at a time on all cores vs the engine
   in one 1-thread worker per core, as ``tricks ablation`` runs it, and the full 8 x 5 x 10 study
   projected from both.

The notebook runs in this process first, with glibc's allocator at its defaults as it had; each
lever runs in a fresh process (the allocator's state would otherwise carry over). Output: results/bench/throughput.csv, throughput.json (machine, peaks,
provenance) and throughput.png.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.training.allocator import keep_freed_memory  # noqa: E402
from tricks.training.build import MEMORY_FORMAT, Run, build_run  # noqa: E402
from tricks.training.data import Dataset, DataSource, class_balanced_subset, load_dataset  # noqa: E402
from tricks.training.engine import evaluate, train_one_epoch, train_run  # noqa: E402
from tricks.training.model import baseline_net  # noqa: E402
from tricks.plugins import load_plugins, load_spec  # noqa: E402
from tricks.plugins.dropout import FastDropout  # noqa: E402
from tricks.running.provenance import provenance  # noqa: E402
from notebook_pipeline import notebook_run  # noqa: E402 - benchmarks/ is this script's folder
from tricks.training.recipe import build_recipe  # noqa: E402
from tricks.running.settings import RunSettings  # noqa: E402

BATCH = 64             # images per training step, as in the study
LEVER_STEPS = 150      # timed training steps per lever (after 10 warm-up steps), 1 thread
STUDY = load_spec(REPO / "benchmarks" / "backprop_tricks.toml")
SLICE_VARIANTS = ("norm_inputs", "dropout_conv")   # one without and one with conv dropout


def matmul_peak(threads: int, dtype: torch.dtype, n: int = 2048, reps: int = 6) -> float:
    """GFLOP/s of a large square matmul in ``dtype`` on ``threads`` threads (best of ``reps``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best / 1e9


def flops_per_image() -> tuple[float, float]:
    """(forward, forward+backward) FLOPs per image of the baseline net, by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    m = baseline_net()
    x = torch.randn(BATCH, 3, 32, 32)
    with FlopCounterMode(display=False) as fc:
        m(x)
    fwd = fc.get_total_flops() / BATCH
    with FlopCounterMode(display=False) as fc:
        F.nll_loss(m(x), torch.zeros(BATCH, dtype=torch.long)).backward()
    return fwd, fc.get_total_flops() / BATCH


# ---------------------------------------------------------------------------------------------
# (b) the engine, as the study runs it

def settings_for(variant: str, seed: int, epochs: int, precision: str, tricks: tuple | None = None,
                 threads: int = 1) -> RunSettings:
    """A run's settings: the study variant's tricks (or ``tricks``), on ``threads`` intra-op threads."""
    if tricks is None:
        tricks = next(v for v in STUDY.variants if v.name == variant).tricks
    return RunSettings(spec="bench", variant=variant, tricks=tricks, imports=(), seed=seed, epochs=epochs,
                       batch_size=BATCH, train_subset=None, precision=precision, data_kind="bench",
                       data_sha256="bench", threads=threads)


def engine_run(data: Dataset, variant: str, seed: int, epochs: int, precision: str) -> dict:
    # train_run sets the run's own thread count (RunSettings.threads): the caller's (all cores for a
    # single run, 1 in a study worker)
    s = settings_for(variant, seed, epochs, precision, threads=torch.get_num_threads())
    rec = train_run(build_recipe(s.variant, s.tricks), s, data, torch.device("cpu"))
    return {"train_s": rec["train_seconds"], "eval_s": rec["eval_seconds"]}


_POOL_DATA: dict = {}


def _pool_init(data: Dataset) -> None:
    torch.set_num_threads(1)
    load_plugins()
    _POOL_DATA["data"] = data


def _pool_job(job) -> dict:
    if job is None:   # warm-up: the worker is started and has imported everything
        return {}
    return engine_run(_POOL_DATA["data"], *job)


# ---------------------------------------------------------------------------------------------
# levers, one thread

class RandLikeDropout(torch.nn.Dropout):
    """Engine v2's mask: one float draw per element (``rand_like``), kept for comparison."""

    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))


def pool_after_activation(model: torch.nn.Module) -> torch.nn.Module:
    """The inverse of ``training.model.pool_before_activation``: every max-pool directly followed by a
    ReLU moved back behind it (as the net is written), the same modules and so the same parameters."""
    layers = list(model.named_children())
    i = 0
    while i < len(layers) - 1:
        (_, pool), (_, act) = layers[i], layers[i + 1]
        if type(pool) is torch.nn.MaxPool2d and type(act) is torch.nn.ReLU:
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
            i += 2
        else:
            i += 1
    return torch.nn.Sequential(OrderedDict(layers))


def lever_run(data: Dataset, precision: str = "fp32", memory_format=MEMORY_FORMAT, dropout_cls=None,
              pool_first: bool = True) -> Run:
    """Seed 0's run of the norm_inputs variant (+ Dropout(0.2) after each conv ReLU with ``dropout_cls``)
    on 1 thread, built as a study builds it (``build_run``: channels_last, max-pooling before the
    ReLUs); then only the levers asked for are changed on it."""
    torch.set_num_threads(1)
    tricks = next(v for v in STUDY.variants if v.name == SLICE_VARIANTS[0]).tricks
    if dropout_cls is not None:
        tricks = tricks + ({"name": "dropout", "p": 0.2, "after": ["conv"]},)
    settings = settings_for("lever", 0, 1, precision, tricks)
    run = build_run(build_recipe("lever", tricks), settings, data, torch.device("cpu"))
    if dropout_cls is not None and dropout_cls is not FastDropout:
        # lever: the dropout trick's mask (FastDropout) swapped for another of the same p, in place
        for name, m in list(run.model.named_children()):
            if isinstance(m, FastDropout):
                setattr(run.model, name, dropout_cls(m.p))
    if not pool_first:
        # lever: max-pooling back after the ReLUs, as the net is written (same modules and parameters)
        run.model = pool_after_activation(run.model)
    if memory_format != MEMORY_FORMAT:
        # lever: the parameters (and, through train_one_epoch's memory_format, the inputs) in another layout
        run.model = run.model.to(memory_format=memory_format)
    return run


def lever_rate(data: Dataset, precision: str, memory_format, dropout_cls=None, pool_first: bool = True) -> float:
    """Training images/s of LEVER_STEPS steps (after 10 warm-up steps) of ``lever_run``."""
    run = lever_run(data, precision, memory_format, dropout_cls, pool_first)
    n = min(run.train_y.numel(), (LEVER_STEPS + 10) * BATCH)

    def steps(lo: int, hi: int) -> None:
        order = run.recipe.data_order(hi - lo, run.streams.order)
        train_one_epoch(run.model, run.optimizer, run.train_x[lo:hi], run.train_y[lo:hi], run.transform, BATCH,
                        order, precision, run.hooks, run.lr.after_step, run.streams.augment,
                        memory_format=memory_format, step_generator=run.streams.step,
                        num_classes=len(data.classes))

    steps(0, 10 * BATCH)
    t = time.perf_counter()
    steps(10 * BATCH, n)
    return (n - 10 * BATCH) / (time.perf_counter() - t)


def _lever_job(data: Dataset, precision: str, fmt: str, dropout: str | None, keep_memory: bool,
               pool_first: bool = True) -> float:
    load_plugins()
    if keep_memory:
        keep_freed_memory()
    cls = {None: None, "nn": torch.nn.Dropout, "rand_like": RandLikeDropout, "fast": FastDropout}[dropout]
    memory_format = MEMORY_FORMAT if fmt == "channels_last" else torch.contiguous_format
    return lever_rate(data, precision, memory_format, cls, pool_first)


def eval_rate(data: Dataset, precision: str, batch: int) -> float:
    """Evaluation images/s of ``lever_run``'s model on the test images; the lever: the evaluation batch."""
    run = lever_run(data, precision)
    evaluate(run.model, run.test_x[:batch], run.test_y[:batch], run.transform, precision, batch,
             predict=run.hooks.predict)
    t = time.perf_counter()
    evaluate(run.model, run.test_x, run.test_y, run.transform, precision, batch, predict=run.hooks.predict)
    return run.test_y.numel() / (time.perf_counter() - t)


# ---------------------------------------------------------------------------------------------

def load_bench_data(data_dir: str | None, n_train: int, n_test: int) -> tuple[Dataset, str]:
    if data_dir:
        ds = load_dataset(DataSource("imagefolder", data_dir), progress=False)
        idx = class_balanced_subset(ds.train_y, n_train)
        tidx = class_balanced_subset(ds.test_y, n_test)
        return (Dataset(ds.train_x[idx].contiguous(), ds.train_y[idx].contiguous(), ds.test_x[tidx].contiguous(),
                        ds.test_y[tidx].contiguous(), ds.classes, ds.source, ds.checksum),
                f"imagefolder {data_dir} (decoded sha256 {ds.checksum[:16]})")
    g = torch.Generator().manual_seed(0)
    return (Dataset(torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n_train,), generator=g),
                    torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n_test,), generator=g), [str(i) for i in range(10)],
                    DataSource("imagefolder", "random"), "random"),
            "random uint8 images (no --data-dir)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CIFAR10_JPEG_DIR"),
                    help="imagefolder of CIFAR-10 images (default $CIFAR10_JPEG_DIR); random images without it")
    ap.add_argument("--train-images", type=int, default=25000,
                    help="training images per run (class-balanced); enough that per-run set-up does not dominate")
    ap.add_argument("--test-images", type=int, default=5000,
                    help="test images evaluated after each epoch (default: 1 per 5 training images, as in the study)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per run")
    ap.add_argument("--out", default=str(REPO / "results" / "bench"))
    ap.add_argument("--replot", action="store_true", help="only redraw throughput.png from the stored csv/json")
    args = ap.parse_args()
    if args.replot:
        import pandas as pd

        out_dir = Path(args.out)
        meta = json.loads((out_dir / "throughput.json").read_text())
        plot(pd.read_csv(out_dir / "throughput.csv"), meta["full_study_projection"], out_dir / "throughput.png",
             meta["cores"])
        return 0
    cores = os.cpu_count() or 1
    t_bench = time.perf_counter()
    load_plugins()
    data, data_desc = load_bench_data(args.data_dir, args.train_images, args.test_images)
    n_train, n_test = args.train_images * args.epochs, args.test_images * args.epochs
    print(f"data: {data_desc}; {args.train_images} train / {args.test_images} test images per run, "
          f"{args.epochs} epoch(s); {cores} CPU cores; torch {torch.__version__}")

    peaks = {(p, t): matmul_peak(t, dt) for p, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))
             for t in (1, cores)}
    fwd, train_flops = flops_per_image()
    for p in ("fp32", "bf16"):
        print(f"{p} matmul peak: {peaks[p, 1]:.0f} GFLOP/s on 1 thread, {peaks[p, cores]:.0f} on {cores}")
    print(f"net: {fwd / 1e6:.2f} MFLOP forward, {train_flops / 1e6:.2f} MFLOP forward+backward per image")

    rows: list[dict] = []

    def add(section, name, precision, threads, train=None, evals=None, seconds=None, workers=None, ref=None):
        row = {"section": section, "name": name, "precision": precision, "threads": threads, "workers": workers,
               "train_img_s": train, "eval_img_s": evals, "seconds": seconds}
        if train is not None and threads:
            row["peak_fraction"] = train * train_flops / (peaks[precision, threads] * 1e9)
        if ref is not None:
            row["vs"], row["ratio"] = ref[0], (train if train is not None else evals) / ref[1]
        rows.append(row)
        return row

    # 1. notebook single runs, all cores, glibc allocator untouched (as the notebook ran)
    torch.set_num_threads(cores)
    nb = {}
    for dropout in (False, True):
        r = notebook_run(data, dropout, 0, args.epochs)
        nb[dropout] = r
        row = add("single run", f"notebook, {'conv dropout' if dropout else 'no dropout'}", "fp32", cores,
                  n_train / r["train_s"], n_test / r["eval_s"], r["train_s"] + r["eval_s"])
        print(f"single run  {row['name']:<32} train {row['train_img_s']:6.0f} img/s  eval {row['eval_img_s']:6.0f} "
              f"img/s  {row['peak_fraction']:5.1%} of the {cores}-thread fp32 peak")

    # 2. levers on one thread, each in a fresh process (glibc's allocator state and oneDNN's caches
    #    would otherwise carry over from one measurement to the next)
    lever = {}
    configs = [(name, p, fmt, None, keep, pool) for p in ("fp32", "bf16") for name, fmt, keep, pool in (
        ("engine", "channels_last", True, True), ("default allocator", "channels_last", False, True),
        ("NCHW", "nchw", True, True), ("ReLU before pool", "channels_last", True, False))]
    configs += [(f"conv dropout: {name}", "bf16", "channels_last", cls, True, True) for name, cls in (
        ("nn.Dropout", "nn"), ("rand_like mask (engine v2)", "rand_like"), ("16-bit draws (engine v3)", "fast"))]
    k = (LEVER_STEPS + 10) * BATCH
    lever_data = Dataset(data.train_x[:k], data.train_y[:k], data.test_x, data.test_y, data.classes, data.source,
                         data.checksum)
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for name, p, fmt, cls, keep, pool_first in configs:
            lever[name, p] = pool.apply(_lever_job, (lever_data, p, fmt, cls, keep, pool_first))
    for p in ("fp32", "bf16"):
        ref = ("engine", lever["engine", p])
        add("lever, 1 thread", "engine (every lever on)", p, 1, lever["engine", p])
        add("lever, 1 thread", "glibc allocator at its defaults", p, 1, lever["default allocator", p], ref=ref)
        add("lever, 1 thread", "NCHW instead of channels_last", p, 1, lever["NCHW", p], ref=ref)
        add("lever, 1 thread", "ReLU before max-pool (as the net is written)", p, 1, lever["ReLU before pool", p],
            ref=ref)
    add("lever, 1 thread", "bf16 autocast vs fp32", "bf16", 1, lever["engine", "bf16"],
        ref=("engine fp32", lever["engine", "fp32"]))
    base = ("conv dropout: nn.Dropout", lever["conv dropout: nn.Dropout", "bf16"])
    add("lever, 1 thread", "conv dropout: nn.Dropout", "bf16", 1, base[1])
    for name in ("rand_like mask (engine v2)", "16-bit draws (engine v3)"):
        add("lever, 1 thread", f"conv dropout: {name}", "bf16", 1, lever[f"conv dropout: {name}", "bf16"], ref=base)
    keep_freed_memory()
    for p in ("fp32", "bf16"):
        rates = {b: eval_rate(data, p, b) for b in (64, 250, 500)}
        for b, r in rates.items():
            add("lever, 1 thread", f"evaluation batch {b}", p, 1, evals=r, ref=("evaluation batch 64", rates[64]))
    for r in rows:
        if r["section"].startswith("lever"):
            rate = r["train_img_s"] if r["train_img_s"] is not None else r["eval_img_s"]
            vs = f"  {r['ratio']:.2f}x vs {r['vs']}" if r.get("vs") else ""
            print(f"lever {r['precision']}  {r['name']:<40} {rate:6.0f} img/s{vs}")

    # 3. engine single runs, all cores
    torch.set_num_threads(cores)
    for p in ("fp32", "bf16"):
        for variant in SLICE_VARIANTS:
            r = engine_run(data, variant, 0, args.epochs, p)
            row = add("single run", f"engine, {'conv dropout' if 'dropout' in variant else 'no dropout'}", p,
                      cores, n_train / r["train_s"], n_test / r["eval_s"], r["train_s"] + r["eval_s"],
                      ref=("notebook", n_train / nb["dropout" in variant]["train_s"]))
            print(f"single run  {row['name'] + ' (' + p + ')':<32} train {row['train_img_s']:6.0f} img/s  eval "
                  f"{row['eval_img_s']:6.0f} img/s  {row['peak_fraction']:5.1%} of the {cores}-thread {p} peak  "
                  f"{row['ratio']:.2f}x the notebook")

    # 4. the study slice: 2 variants x 2 seeds
    jobs = [(v, s) for v in SLICE_VARIANTS for s in (0, 1)]
    torch.set_num_threads(cores)
    t = time.perf_counter()
    nb_runs = [notebook_run(data, "dropout" in v, s, args.epochs) for v, s in jobs]
    nb_s = time.perf_counter() - t
    add("study slice", "notebook, one run at a time", "fp32", cores, len(jobs) * n_train / nb_s, seconds=nb_s)
    slice_rows = {}
    for p in ("fp32", "bf16"):
        t0 = time.perf_counter()
        with mp.get_context("spawn").Pool(cores, initializer=_pool_init, initargs=(data,)) as pool:
            pool.map(_pool_job, [None] * cores, chunksize=1)
            t1 = time.perf_counter()
            out = pool.map(_pool_job, [(v, s, args.epochs, p) for v, s in jobs], chunksize=1)
            t2 = time.perf_counter()
        warm = t2 - t1
        row = add("study slice", f"engine, {cores} workers x 1 thread", p, None, len(jobs) * n_train / warm,
                  seconds=warm, workers=cores, ref=("notebook", len(jobs) * n_train / nb_s))
        row["pool_start_s"] = t1 - t0
        slice_rows[p] = (row, out)
        print(f"study slice {p}: notebook {nb_s:.1f} s one run at a time on {cores} threads; engine {warm:.1f} s on "
              f"{cores} 1-thread workers (+{t1 - t0:.1f} s to start them, once per study): "
              f"{nb_s / warm:.2f}x ({nb_s / (t2 - t0):.2f}x counting the start)")

    # 5. the full study (8 variants x 5 seeds x 10 epochs, 50,000 train / 10,000 test images) projected
    full_train, full_test = 50_000 * 10, 10_000 * 10
    conv = sum(any(t["name"] == "dropout" and "conv" in t["after"] for t in v.tricks) for v in STUDY.variants)
    plain = len(STUDY.variants) - conv
    nb_run = {d: full_train / (n_train / nb[d]["train_s"]) + full_test / (n_test / nb[d]["eval_s"])
              for d in (False, True)}
    nb_min = 5 * (plain * nb_run[False] + conv * nb_run[True]) / 60
    projection = {"notebook_minutes": nb_min}
    for p, (row, out) in slice_rows.items():
        per = {}
        for (v, _), r in zip(jobs, out):
            per.setdefault("dropout" in v, []).append(full_train / (n_train / r["train_s"]) +
                                                      full_test / (n_test / r["eval_s"]))
        run_s = {d: sum(x) / len(x) for d, x in per.items()}
        minutes = 5 * (plain * run_s[False] + conv * run_s[True]) / cores / 60
        projection[f"engine_{p}_minutes"] = minutes
        print(f"full study projected from the slice ({p}): engine {minutes:.0f} min on {cores} workers, notebook "
              f"{nb_min:.0f} min: {nb_min / minutes:.2f}x")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    df = pd.DataFrame(rows)
    df.to_csv(out_dir / "throughput.csv", index=False, float_format="%.4g")
    meta = {"data": data_desc, "cores": cores, "train_images": args.train_images, "test_images": args.test_images,
            "epochs": args.epochs, "lever_steps": LEVER_STEPS,
            "matmul_peak_gflops": {f"{p}_{t}_threads": v for (p, t), v in peaks.items()},
            "flops_per_image": {"forward": fwd, "train": train_flops}, "full_study_projection": projection,
            "bench_seconds": time.perf_counter() - t_bench,
            "provenance": provenance(torch.device("cpu")), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out_dir / "throughput.json").write_text(json.dumps(meta, indent=1) + "\n")
    plot(df, projection, out_dir / "throughput.png", cores)
    print(f"wrote {out_dir / 'throughput.csv'}, throughput.json, throughput.png in {meta['bench_seconds']:.0f} s")
    return 0


def plot(df, projection: dict, path: Path, cores: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1.1, 1.5, 0.8]})
    single = df[df["section"] == "single run"]
    labels = [n.replace(", ", "\n") + ("" if n.startswith("notebook") else f" {p}")
              for n, p in zip(single["name"], single["precision"])]
    colors = ["#7f7f7f" if n.startswith("notebook") else ("#1f77b4" if p == "fp32" else "#ff7f0e")
              for n, p in zip(single["name"], single["precision"])]
    axes[0].barh(range(len(single)), single["train_img_s"], color=colors)
    axes[0].set_yticks(range(len(single)), labels, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("training images/s")
    axes[0].set_title(f"single run, {cores} threads")

    lev = df[(df["section"] == "lever, 1 thread") & df["train_img_s"].notna()
             & (df["name"] != "bf16 autocast vs fp32")]
    axes[1].barh(range(len(lev)), lev["train_img_s"],
                 color=["#1f77b4" if p == "fp32" else "#ff7f0e" for p in lev["precision"]])
    axes[1].set_yticks(range(len(lev)), [f"{n} ({p})" for n, p in zip(lev["name"], lev["precision"])], fontsize=8)
    for i, v in enumerate(lev["train_img_s"]):
        axes[1].text(v, i, f" {v:.0f}", va="center", fontsize=7)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("training images/s, 1 thread (blue fp32, orange bf16)")
    axes[1].set_title("levers, one at a time")

    sl = df[df["section"] == "study slice"]
    names = ["notebook"] + [f"engine\n{p}" for p in sl["precision"][1:]]
    axes[2].bar(names, sl["seconds"], color=["#7f7f7f", "#1f77b4", "#ff7f0e"][:len(sl)])
    for i, s in enumerate(sl["seconds"]):
        axes[2].text(i, s, f"{sl['seconds'].iloc[0] / s:.1f}x", ha="center", va="bottom")
    axes[2].set_ylabel("seconds for 2 variants x 2 seeds (lower is better)")
    axes[2].set_title("study slice (ratio to the notebook)\nfull study projected, minutes:\n" + ", ".join(
        f"{k.replace('_minutes', '').replace('engine_', '')} {v:.0f}" for k, v in projection.items()), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

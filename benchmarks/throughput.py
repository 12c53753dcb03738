"""Throughput: the original notebook's input pipeline against this project's engine, side by side.

Run with ``make bench`` (or ``python benchmarks/throughput.py --data-dir PATH``). In one process,
on the same images and machine, it measures:

(a) notebook: a Dataset that turns each sample into a PIL image and applies ToTensor()+Normalize(),
    a DataLoader (batch 64, shuffle), a plain loop in NCHW with nn.Dropout, one run at a time;
(b) engine:   tricks' engine (whole uint8 tensors, permutation batches, channels_last, vectorized
    dropout), single runs in-process and a study slice in parallel worker processes.

It reports training and evaluation images/s, the time for the same set of runs, the ratio (a)/(b),
and the achieved training FLOP/s as a fraction of this machine's fp32 matmul peak measured in the
same run. Output: results/bench/throughput.csv, throughput.json (provenance) and throughput.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.data import DataSource, class_balanced_subset, load_dataset  # noqa: E402
from tricks.engine import evaluate, train_one_epoch  # noqa: E402
from tricks.model import baseline_net  # noqa: E402
from tricks.plugins import load_plugins  # noqa: E402
from tricks.provenance import provenance  # noqa: E402
from tricks.recipe import Recipe  # noqa: E402
from tricks.registry import TRICKS  # noqa: E402

BATCH = 64  # images per step, as in the study


def matmul_peak(threads: int, n: int = 2048, reps: int = 6) -> float:
    """fp32 GFLOP/s of a large square matmul on ``threads`` threads (best of ``reps``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
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
# (a) the notebook pipeline

class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()   # HWC uint8, as PIL wants
        self.labels = labels.tolist()
        self.tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.tf(Image.fromarray(self.images[i])), self.labels[i]


def notebook_run(train, test, dropout: bool, seed: int, epochs: int) -> dict:
    torch.manual_seed(seed)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    tl = torch.utils.data.DataLoader(PILDataset(*train, mean, std), batch_size=BATCH, shuffle=True)
    vl = torch.utils.data.DataLoader(PILDataset(*test, mean, std), batch_size=BATCH)
    model = baseline_net()
    if dropout:
        from tricks.model import CONV_RELUS, insert_after

        for r in CONV_RELUS:
            model = insert_after(model, r, f"d_{r}", torch.nn.Dropout(0.2))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    t_train = t_eval = 0.0
    for _ in range(epochs):
        model.train()
        t = time.perf_counter()
        for x, y in tl:
            loss = F.nll_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t_train += time.perf_counter() - t
        model.eval()
        t = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for x, y in vl:
                correct += (model(x).argmax(1) == y).sum().item()
        t_eval += time.perf_counter() - t
    return {"train_s": t_train, "eval_s": t_eval, "accuracy": correct / len(test[1])}


# ---------------------------------------------------------------------------------------------
# (b) the engine

def engine_run(train, test, dropout: bool, seed: int, epochs: int) -> dict:
    load_plugins()
    tricks = [TRICKS.get("normalize_inputs")()] + ([TRICKS.get("dropout")(after=["conv"])] if dropout else [])
    recipe = Recipe("bench", tricks)
    transform = recipe.input_transform(train[0])
    model = recipe.model(seed, 10).to(memory_format=torch.channels_last)
    opt = recipe.optimizer(model)
    g = torch.Generator().manual_seed(seed)
    t_train = t_eval = 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        train_one_epoch(model, opt, train[0], train[1], transform, BATCH, g)
        t_train += time.perf_counter() - t
        t = time.perf_counter()
        preds, _ = evaluate(model, test[0], test[1], transform)
        t_eval += time.perf_counter() - t
    return {"train_s": t_train, "eval_s": t_eval, "accuracy": float((preds == test[1]).double().mean())}


def _engine_worker(args):
    train, test, dropout, seed, epochs = args
    torch.set_num_threads(1)
    return engine_run(train, test, dropout, seed, epochs)


def engine_slice(train, test, jobs, workers: int) -> float:
    import multiprocessing as mp

    t = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_engine_worker, [(train, test, d, s, e) for d, s, e in jobs])
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CIFAR10_JPEG_DIR"),
                    help="imagefolder of CIFAR-10 images (default $CIFAR10_JPEG_DIR); random images without it")
    ap.add_argument("--train-images", type=int, default=10000, help="training images per run (class-balanced)")
    ap.add_argument("--test-images", type=int, default=2000, help="test images evaluated after each epoch")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per run")
    ap.add_argument("--out", default=str(REPO / "results" / "bench"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1

    if args.data_dir:
        ds = load_dataset(DataSource("imagefolder", args.data_dir), progress=False)
        idx = class_balanced_subset(ds.train_y, args.train_images)
        train = (ds.train_x[idx].contiguous(), ds.train_y[idx].contiguous())
        test = (ds.test_x[:args.test_images].contiguous(), ds.test_y[:args.test_images].contiguous())
        data_desc = f"imagefolder {args.data_dir} (sha256 {ds.checksum[:16]})"
    else:
        g = torch.Generator().manual_seed(0)
        train = (torch.randint(0, 256, (args.train_images, 3, 32, 32), dtype=torch.uint8, generator=g),
                 torch.randint(0, 10, (args.train_images,), generator=g))
        test = (torch.randint(0, 256, (args.test_images, 3, 32, 32), dtype=torch.uint8, generator=g),
                torch.randint(0, 10, (args.test_images,), generator=g))
        data_desc = "random uint8 images (no --data-dir)"
    print(f"data: {data_desc}; {len(train[1])} train / {len(test[1])} test images per run, {args.epochs} epoch(s)")

    peak1, peakn = matmul_peak(1), matmul_peak(cores)
    fwd, fwdbwd = flops_per_image()
    print(f"fp32 matmul peak: {peak1:.1f} GFLOP/s on 1 thread, {peakn:.1f} on {cores}")
    print(f"net: {fwd / 1e6:.2f} MFLOP forward, {fwdbwd / 1e6:.2f} MFLOP forward+backward per image")

    rows = []
    torch.set_num_threads(cores)
    n_train, n_test = len(train[1]) * args.epochs, len(test[1]) * args.epochs
    for dropout in (False, True):
        for name, fn in (("notebook", notebook_run), ("engine", engine_run)):
            r = fn(train, test, dropout, 0, args.epochs)
            tr, ev = n_train / r["train_s"], n_test / r["eval_s"]
            frac = tr * fwdbwd / (peakn * 1e9)
            rows.append({"measure": "single run", "pipeline": name, "variant": "conv dropout" if dropout else
                         "no dropout", "threads": cores, "train_img_s": tr, "eval_img_s": ev,
                         "seconds": r["train_s"] + r["eval_s"], "peak_fraction": frac})
            print(f"single run {rows[-1]['variant']:<13} {name:<9} train {tr:7.0f} img/s  eval {ev:7.0f} img/s  "
                  f"{frac:5.1%} of {cores}-thread peak")

    # the whole-study slice: 2 variants x 2 seeds
    jobs = [(d, s, args.epochs) for d in (False, True) for s in (0, 1)]
    torch.set_num_threads(cores)
    t = time.perf_counter()
    for d, s, e in jobs:
        notebook_run(train, test, d, s, e)
    nb = time.perf_counter() - t
    en = engine_slice(train, test, jobs, workers=cores)
    rows.append({"measure": "study slice (2 variants x 2 seeds)", "pipeline": "notebook", "variant": "both",
                 "threads": cores, "seconds": nb, "train_img_s": len(jobs) * n_train / nb})
    rows.append({"measure": "study slice (2 variants x 2 seeds)", "pipeline": "engine", "variant": "both",
                 "threads": 1, "workers": cores, "seconds": en, "train_img_s": len(jobs) * n_train / en})
    print(f"study slice: notebook {nb:.1f} s (one run at a time, {cores} threads), engine {en:.1f} s "
          f"({cores} workers x 1 thread): {nb / en:.2f}x")
    for d in ("no dropout", "conv dropout"):
        a = next(r for r in rows if r["pipeline"] == "notebook" and r["variant"] == d)
        b = next(r for r in rows if r["pipeline"] == "engine" and r["variant"] == d)
        print(f"single run {d}: engine/notebook training {b['train_img_s'] / a['train_img_s']:.2f}x, "
              f"evaluation {b['eval_img_s'] / a['eval_img_s']:.2f}x")

    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "throughput.csv", index=False, float_format="%.4g")
    meta = {"data": data_desc, "cores": cores, "matmul_peak_gflops": {"1": peak1, str(cores): peakn},
            "flops_per_image": {"forward": fwd, "train": fwdbwd}, "study_slice_ratio": nb / en,
            "provenance": provenance(torch.device("cpu")), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version()}
    (out / "throughput.json").write_text(json.dumps(meta, indent=1))
    plot(df, nb / en, out / "throughput.png", cores)
    print(f"wrote {out / 'throughput.csv'}, throughput.json, throughput.png")
    return 0


def plot(df, slice_ratio: float, path: Path, cores: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    single = df[df["measure"] == "single run"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, col, title in ((axes[0], "train_img_s", "training images/s (single run)"),
                           (axes[1], "eval_img_s", "evaluation images/s (single run)")):
        labels = [f"{p}\n{v}" for p, v in zip(single["pipeline"], single["variant"])]
        ax.bar(range(len(single)), single[col], color=["#7f7f7f" if p == "notebook" else "#1f77b4"
                                                       for p in single["pipeline"]])
        ax.set_xticks(range(len(single)), labels, fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    sl = df[df["measure"] != "single run"]
    axes[2].bar(sl["pipeline"], sl["seconds"], color=["#7f7f7f", "#1f77b4"])
    axes[2].set_title(f"study slice, 2 variants x 2 seeds: {slice_ratio:.2f}x")
    axes[2].set_ylabel("seconds (lower is better)")
    fig.suptitle(f"notebook pipeline vs engine on {cores} CPU cores")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

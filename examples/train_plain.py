"""A plain-PyTorch training function, ablated by the suite as an entry-point workload (docs/entry.md).

    tricks ablation --spec examples/plain.toml --dataset imagefolder --data-dir PATH

Everything that trains is this file's own: the data pipeline (torchvision's ``ImageFolder`` and a
``DataLoader`` over the image folder), the network, the optimizer and the loop. The suite calls
``run(config, seed, budget, context)`` once per (variant, seed) and turns what it returns into an
ordinary run record: paired seeds, designs over config keys, resume, the local pool or Ray, the
reports, tuning (``[tuning]`` sets ``config["lr"]``), ``tricks confirm`` and the CI check all apply.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

# The configuration keys this function reads, with their defaults. Any other key is refused: a
# misspelled key in a spec would otherwise train the baseline under another name.
DEFAULTS = {"lr": 1e-3, "width": 32, "weight_decay": 0.0, "flip": False, "label_smoothing": 0.0, "dropout": 0.0}


def make_net(width: int, classes: int, dropout: float) -> nn.Module:
    """A small CNN for 32x32 RGB images: two conv blocks, global average pooling, a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width, classes))


def settings(config: dict) -> dict:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)}; this function reads {', '.join(DEFAULTS)}")
    return {**DEFAULTS, **config}


class Flip(torch.utils.data.Dataset):
    """Images flipped left-right with probability 1/2 (torch's global generator: seeded by the run)."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return (x.flip(-1) if torch.rand(()) < 0.5 else x), y


def datasets(context):
    """(training images, test images) as torch datasets of (float image in [0, 1], label), both in the
    order of the suite's copy: an image folder through torchvision, any other dataset from ``context.data()``."""
    if context.dataset == "imagefolder":
        from torchvision import datasets as tv, transforms as T

        to_tensor = T.Compose([T.Resize((32, 32)), T.ToTensor()])
        train = tv.ImageFolder(context.data_dir / "train", to_tensor)
        test = tv.ImageFolder(context.data_dir / "test", to_tensor)
        if train.targets != context.data().train_y.tolist():
            raise ValueError(f"{context.data_dir}/train: torchvision lists the images in another order than the "
                             "suite (unreadable files?)")
        return train, test
    data = context.data()
    return (TensorDataset(data.train_x.float() / 255, data.train_y),
            TensorDataset(data.test_x.float() / 255, data.test_y))


def evaluate(net: nn.Module, loader: DataLoader, context) -> tuple[float, float, list[int], list[int]]:
    """(mean loss, accuracy, predicted classes, labels) over a loader, in its order."""
    net.eval()
    loss, preds, labels = 0.0, [], []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(context.device), y.to(context.device)
            with context.autocast():
                out = net(x).float()
            loss += F.cross_entropy(out, y, reduction="sum").item()
            preds += out.argmax(1).tolist()
            labels += y.tolist()
    return loss / len(labels), sum(p == t for p, t in zip(preds, labels)) / len(labels), preds, labels


def run(config: dict, seed: int, budget: dict, context) -> dict:
    c = settings(config)
    torch.manual_seed(seed)                        # initial weights, dropout masks, flips: from the seed
    order = torch.Generator().manual_seed(seed)    # the data order: the same in every variant (paired seeds)
    train, test = datasets(context)
    train_idx, val_idx = context.split()           # the suite's class-balanced subset and validation split
    trained = Subset(train, train_idx)
    train_loader = DataLoader(Flip(trained) if c["flip"] else trained, batch_size=budget["batch_size"],
                              shuffle=True, generator=order)
    test_loader = DataLoader(test, batch_size=250)
    val_loader = DataLoader(Subset(train, val_idx), batch_size=250) if val_idx else None
    net = make_net(c["width"], len(context.classes), c["dropout"]).to(context.device)
    opt = torch.optim.AdamW(net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget["epochs"])

    history, start = [], 1
    state = context.load_checkpoint()              # an interrupted attempt's last epoch, if any
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        order.set_state(state["order"])
        history, start = state["history"], state["epoch"] + 1

    for epoch in range(start, budget["epochs"] + 1):
        lr = opt.param_groups[0]["lr"]
        t0 = time.perf_counter()
        net.train()
        total, n = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(context.device), y.to(context.device)
            with context.autocast():
                out = net(x).float()
            loss = F.cross_entropy(out, y, label_smoothing=c["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(y), n + len(y)
        sched.step()
        t1 = time.perf_counter()
        test_loss, test_acc, _, _ = evaluate(net, test_loader, context)
        row = {"epoch": epoch, "train_loss": total / n, "test_loss": test_loss, "test_accuracy": test_acc, "lr": lr}
        if val_loader is not None:
            row["val_loss"], row["val_accuracy"], _, _ = evaluate(net, val_loader, context)
        row.update(train_seconds=t1 - t0, eval_seconds=time.perf_counter() - t1)
        history.append(row)
        context.report_epoch(row)
        if not math.isfinite(row["train_loss"]):
            break                                  # the suite records the run as diverged
        if epoch < budget["epochs"]:
            context.save_checkpoint({"epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict(),
                                     "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                                     "order": order.get_state(), "history": history})

    _, _, predictions, labels = evaluate(net, test_loader, context)
    return {"history": history, "predictions": predictions, "labels": labels,
            "parameters": sum(p.numel() for p in net.parameters())}

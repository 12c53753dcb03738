"""The same training as ``train_plain.py``, as a Lightning module, ablated by the suite as an entry-point
workload (docs/entry.md). Needs Lightning (``pip install 'backprop-tricks[lightning]'``):

    tricks ablation --spec examples/lightning.toml --dataset imagefolder --data-dir PATH

A small callback (``ReportToTricks``) turns each epoch's validation pass over the test images into a
history row and reports it; Lightning's own checkpoints go to ``context.checkpoint_dir``, so a run that
was interrupted resumes from its last epoch (``trainer.fit(ckpt_path=...)``).
"""

from __future__ import annotations

import logging
import time
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, Subset

from train_plain import Flip, datasets, evaluate, make_net, settings   # the spec lists it under imports


class LitNet(L.LightningModule):
    def __init__(self, config: dict, classes: int, epochs: int):
        super().__init__()
        self.c, self.epochs = config, epochs
        self.net = make_net(config["width"], classes, config["dropout"])
        self.history: list[dict] = []      # kept in Lightning's checkpoints (on_save_checkpoint)
        self.resumed_from = 0
        self.sums: dict[str, list[float]] = {}

    def _add(self, split: str, loss_sum: float, correct: float, n: int) -> None:
        s = self.sums.setdefault(split, [0.0, 0.0, 0])
        s[0], s[1], s[2] = s[0] + loss_sum, s[1] + correct, s[2] + n

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x).float(), y, label_smoothing=self.c["label_smoothing"])
        self._add("train", loss.item() * len(y), 0.0, len(y))
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch                              # dataloader 0: the test images, 1: the validation split
        out = self.net(x).float()
        self._add(("test", "val")[dataloader_idx], F.cross_entropy(out, y, reduction="sum").item(),
                  (out.argmax(1) == y).sum().item(), len(y))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.c["lr"], weight_decay=self.c["weight_decay"])
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)}

    def on_save_checkpoint(self, checkpoint):
        checkpoint["tricks_history"] = self.history

    def on_load_checkpoint(self, checkpoint):
        self.history = checkpoint["tricks_history"]
        self.resumed_from = len(self.history)


class ReportToTricks(Callback):
    """Each finished epoch as a history row of the run record, reported to the study as it ends."""

    def __init__(self, context):
        self.context = context

    def on_train_epoch_start(self, trainer, module):
        module.sums = {}
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]
        self.t0 = time.perf_counter()

    def on_validation_epoch_start(self, trainer, module):
        self.t1 = time.perf_counter()

    def on_validation_epoch_end(self, trainer, module):
        train, test = module.sums["train"], module.sums["test"]
        row = {"epoch": trainer.current_epoch + 1, "train_loss": train[0] / train[2], "test_loss": test[0] / test[2],
               "test_accuracy": test[1] / test[2], "lr": self.lr}
        if "val" in module.sums:
            val = module.sums["val"]
            row.update(val_loss=val[0] / val[2], val_accuracy=val[1] / val[2])
        row.update(train_seconds=self.t1 - self.t0, eval_seconds=time.perf_counter() - self.t1)
        module.history.append(row)
        self.context.report_epoch(row)


def run(config: dict, seed: int, budget: dict, context) -> dict:
    c = settings(config)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)   # the study prints its own progress
    warnings.filterwarnings("ignore", module="lightning")
    L.seed_everything(seed, verbose=False)
    train, test = datasets(context)
    train_idx, val_idx = context.split()
    trained = Subset(train, train_idx)
    train_loader = DataLoader(Flip(trained) if c["flip"] else trained, batch_size=budget["batch_size"],
                              shuffle=True, generator=torch.Generator().manual_seed(seed))
    eval_loaders = [DataLoader(test, batch_size=250)] + ([DataLoader(Subset(train, val_idx), batch_size=250)]
                                                         if val_idx else [])
    module = LitNet(c, len(context.classes), budget["epochs"])
    callbacks: list[Callback] = [ReportToTricks(context)]
    ckpt_dir, last = context.checkpoint_dir, None     # None where runs do not resume (Ray)
    if ckpt_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, save_last=True))   # after every epoch
        last = ckpt_dir / "last.ckpt" if (ckpt_dir / "last.ckpt").is_file() else None
    trainer = L.Trainer(max_epochs=budget["epochs"], accelerator="gpu" if context.device.type == "cuda" else "cpu",
                        devices=1, precision="bf16-mixed" if context.precision == "bf16" else "32-true",
                        callbacks=callbacks, logger=False, enable_checkpointing=ckpt_dir is not None,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        deterministic=True, default_root_dir=ckpt_dir)
    trainer.fit(module, train_loader, eval_loaders, ckpt_path=last)
    _, _, predictions, labels = evaluate(module.net.to(context.device), eval_loaders[0], context)
    return {"history": module.history, "predictions": predictions, "labels": labels,
            "resumed_from_epoch": module.resumed_from, "parameters": sum(p.numel() for p in module.net.parameters())}

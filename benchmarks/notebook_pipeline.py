"""The original notebook's training pipeline, the reference the engine is measured against.

Each sample becomes a PIL image and goes through ``ToTensor()`` + ``Normalize()`` in a
``DataLoader`` (batch 64, shuffled), into a plain NCHW loop with ``nn.Dropout`` (after each conv's
ReLU for the conv-dropout variant), Adam at 1e-3, and an evaluation of the test images after each
epoch. ``benchmarks/throughput.py`` calls ``notebook_run`` in-process; run as a script it is one
whole process, as ``benchmarks/short_studies.py`` times it:

    python benchmarks/notebook_pipeline.py --data-dir DIR --train-images 10000 --runs norm_inputs:0,dropout_conv:1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.training.model import CONV_RELUS, baseline_net, insert_after  # noqa: E402

BATCH = 64                                                          # images per step, as in the study
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)      # CIFAR-10 channel statistics


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()   # HWC uint8, as PIL wants
        self.labels = labels.tolist()
        self.tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.tf(Image.fromarray(self.images[i])), self.labels[i]


def notebook_run(data, dropout: bool, seed: int, epochs: int) -> dict:
    """One run on ``data`` (a ``tricks.training.data.Dataset``); seconds spent training and evaluating."""
    torch.manual_seed(seed)
    tl = torch.utils.data.DataLoader(PILDataset(data.train_x, data.train_y), batch_size=BATCH, shuffle=True)
    vl = torch.utils.data.DataLoader(PILDataset(data.test_x, data.test_y), batch_size=BATCH)
    model = baseline_net()
    if dropout:
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
        with torch.no_grad():
            for x, y in vl:
                model(x).argmax(1)
        t_eval += time.perf_counter() - t
    return {"train_s": t_train, "eval_s": t_eval}


def main() -> int:
    from tricks.training.data import Dataset, DataSource, class_balanced_subset, load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="imagefolder of CIFAR-10 images (train/ and test/)")
    ap.add_argument("--train-images", type=int, default=10000, help="training images per run (class-balanced)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per run")
    ap.add_argument("--runs", default="norm_inputs:0,norm_inputs:1,dropout_conv:0,dropout_conv:1",
                    help="variant:seed pairs, one run each, one after the other (a variant with 'dropout' in "
                         "its name gets conv dropout)")
    args = ap.parse_args()
    ds = load_dataset(DataSource("imagefolder", args.data_dir), progress=False)
    idx = class_balanced_subset(ds.train_y, args.train_images)
    data = Dataset(ds.train_x[idx], ds.train_y[idx], ds.test_x, ds.test_y, ds.classes, ds.source, ds.checksum)
    for item in args.runs.split(","):
        variant, seed = item.split(":")
        r = notebook_run(data, "dropout" in variant, int(seed), args.epochs)
        print(f"{variant} seed {seed}: train {r['train_s']:.1f} s, eval {r['eval_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

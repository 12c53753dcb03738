"""CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features"): paste a rectangle of another image of the batch into each image, and mix
the targets by the area that was actually pasted.

Reference: the paper's code (``clovaai/CutMix-PyTorch``) and timm's ``data/mixup.py``. Per training
batch, one ``lam ~ Beta(alpha, alpha)``, one box centre (a pixel, uniform over the image) and one
permutation ``perm`` of the batch. The box has sides ``floor(H * sqrt(1 - lam))`` by
``floor(W * sqrt(1 - lam))`` (area fraction about ``1 - lam``) around the centre, clipped to the
image; every image gets its partner ``x[perm]``'s pixels inside the box. Clipping (and the floor)
make the pasted area smaller than ``1 - lam`` asked for, so the targets are mixed by the actual
area, as in the paper's reference code: ``lam_adj = 1 - box_area / (H * W)`` and

    targets' = lam_adj * P + (1 - lam_adj) * P[perm]      (P: the targets as a probability per class)

(The reference's ``cy +- cut // 2`` box loses a row for odd sides; this one has exactly those sides.
timm pairs with the reversed batch instead of a random permutation.)

- ``prob``: the probability that a batch is cut-mixed at all (the paper's CIFAR recipe: 0.5; default
  1, every batch, this trick's behaviour before it had the choice). One coin per batch, drawn first;
  at 0 nothing is drawn and the step is exactly the plain one.
- ``switch_prob``: with ``mixup`` in the variant, one of the two per batch (timm's ``Mixup`` with both
  alphas: with probability ``prob`` a batch is mixed, then by cutmix with probability
  ``switch_prob``, else by mixup). Unset (default, as before the choice): both apply to every batch,
  in spec order. Without mixup in the variant it has nothing to switch to (timm's cutmix alone).

Random numbers: as for ``mixup``: batch-level draws (the coins, one seed for numpy's Beta and centre
draws) from a CPU generator (``mixup.BatchDraws``), the permutation on the device.
"""

from __future__ import annotations

import math

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..specs.types import Batch
from .mixup import BatchDraws, Mixup, batch_permutation, host_rng

Box = tuple[int, int, int, int]      # (top, bottom, left, right): rows top:bottom, columns left:right


def cut_box(h: int, w: int, lam: float, cy: int, cx: int) -> Box:
    """The box of sides ``floor(h * sqrt(1 - lam))`` x ``floor(w * sqrt(1 - lam))`` centred on pixel
    (``cy``, ``cx``), clipped to the ``h`` x ``w`` image. Unclipped it has exactly those sides (the
    reference code's ``cy +- cut // 2`` loses a row for odd sides)."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    top, left = cy - cut_h // 2, cx - cut_w // 2
    return (min(max(top, 0), h), min(max(top + cut_h, 0), h),
            min(max(left, 0), w), min(max(left + cut_w, 0), w))


def kept_fraction(box: Box, h: int, w: int) -> float:
    """``lam_adj``: the fraction of each image left as it was (1 - the box's area over the image's)."""
    top, bottom, left, right = box
    return 1.0 - (bottom - top) * (right - left) / (h * w)


def cutmix_parameters(h: int, w: int, n: int, alpha: float, generator: torch.Generator,
                      host: torch.Generator | None = None) -> tuple[Box, torch.Tensor]:
    """One batch's ``(box, perm)``: the seed of the numpy draws (lam, then the centre row, then the
    centre column) from ``host`` (default: ``generator``, a CPU one), then the permutation from
    ``generator``."""
    rng = host_rng(generator if host is None else host)
    lam = float(rng.beta(alpha, alpha))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    return cut_box(h, w, lam, cy, cx), batch_permutation(n, generator)


def paste(batch: Batch, box: Box, perm: torch.Tensor) -> Batch:
    """``batch`` with each image's ``box`` replaced by its ``perm`` partner's, and the targets (as
    probabilities) mixed by the area each image keeps."""
    h, w = batch.images.shape[-2:]
    top, bottom, left, right = box
    perm = perm.to(batch.images.device)
    images = batch.images.clone()       # the caller's batch is left as it was
    images[:, :, top:bottom, left:right] = batch.images[perm, :, top:bottom, left:right]
    lam = kept_fraction(box, h, w)
    p = batch.probabilities()
    return Batch(images, lam * p + (1 - lam) * p[perm], batch.num_classes)


class Switch:
    """timm's choice of one of mixup and cutmix per batch; the first of the two in the variant decides
    (``driver``), the other passes its batch through."""

    def __init__(self, cutmix: "CutMix", mixup: Mixup, driver):
        self.cutmix, self.mixup, self.driver = cutmix, mixup, driver

    def apply(self, batch: Batch, generator: torch.Generator) -> Batch:
        draws = self.driver.draws
        if not draws.coin(generator, self.cutmix.p["prob"]):
            return batch
        if draws.coin(generator, self.cutmix.p["switch_prob"]):
            return self.cutmix.cut(batch, generator)
        return self.mixup.mixed(batch, generator)


@register_trick
class CutMix(Trick):
    name = "cutmix"
    description = ("Paste a random box of another image of the batch into each image (with probability prob); mix "
                   "targets by the pasted area; beside mixup, switch_prob picks one of the two per batch.")
    params = (
        # 1.0: Yun et al. 2019 use alpha = 1 on CIFAR and ImageNet alike (lam uniform on (0, 1), so the box
        # covers any fraction of the image equally often); timm's and DeiT's recipes keep it.
        Param("alpha", float, 1.0, "concentration of the Beta(alpha, alpha) distribution of lam (the box "
              "covers about 1 - lam of the image; 1: uniform)", low=0.0, high=10.0, low_open=True),
        # 1.0: every batch, as before the choice; the paper's CIFAR runs use 0.5 (cutmix_prob)
        Param("prob", float, 1.0, "probability that a batch is cut-mixed (with switch_prob: mixed either way)",
              low=0.0, high=1.0, omit_default=True),
        # unset: beside mixup both apply to every batch, as before the choice; timm's default is 0.5
        Param("switch_prob", float, None, "beside mixup: probability that a mixed batch is cut-mixed rather "
              "than mixed up (one of the two per batch); unset: both on every batch", low=0.0, high=1.0,
              omit_default=True),
    )

    def __init__(self, **given):
        super().__init__(**given)
        self.draws = BatchDraws(salt=0x637574)
        self.switch: Switch | None = None

    def check_variant(self, tricks) -> None:
        mixup = next((t for t in tricks if isinstance(t, Mixup)), None)
        if self.p["switch_prob"] is None or mixup is None:
            self.switch = None
            return
        driver = next(t for t in tricks if t is self or t is mixup)
        self.switch = mixup.switch = Switch(self, mixup, driver)

    def cut(self, batch: Batch, generator: torch.Generator) -> Batch:
        n, _, h, w = batch.images.shape
        box, perm = cutmix_parameters(h, w, n, self.p["alpha"], generator, self.draws.generator(generator))
        return paste(batch, box, perm)

    def augment_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        if self.switch is not None:
            return self.switch.apply(batch, generator) if self.switch.driver is self else batch
        if not self.draws.coin(generator, self.p["prob"]):
            return batch
        return self.cut(batch, generator)

    def state_dict(self) -> dict:
        return self.draws.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draws.load_state_dict(state)

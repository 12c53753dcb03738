"""CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features"): paste a rectangle of another image of the batch into each image, and mix
the targets by the area that was actually pasted.

Per training batch, one ``lam ~ Beta(alpha, alpha)``, one box centre (a pixel, uniform over the
image) and one permutation ``perm`` of the batch. The box has sides ``floor(H * sqrt(1 - lam))``
by ``floor(W * sqrt(1 - lam))`` (area fraction about ``1 - lam``) around the centre, clipped to the
image; every image gets its partner ``x[perm]``'s pixels inside the box. Clipping (and the floor)
make the pasted area smaller than ``1 - lam`` asked for, so the targets are mixed by the actual
area, as in the paper's reference code: ``lam_adj = 1 - box_area / (H * W)`` and

    targets' = lam_adj * P + (1 - lam_adj) * P[perm]      (P: the targets as a probability per class)

Random numbers: the run's own augmentation generator only, as for ``mixup`` (one seed drawn from
it seeds numpy's Beta and centre draws; the permutation is drawn on the device).
"""

from __future__ import annotations

import math

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..specs.types import Batch
from .mixup import batch_permutation, host_rng

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


def cutmix_parameters(h: int, w: int, n: int, alpha: float,
                      generator: torch.Generator) -> tuple[Box, torch.Tensor]:
    """One batch's ``(box, perm)``, in this order of draws from ``generator``: the seed of the host
    draws (lam, then the centre row, then the centre column), then the permutation."""
    rng = host_rng(generator)
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


@register_trick
class CutMix(Trick):
    name = "cutmix"
    description = "Paste a random box of another image of the batch into each image; mix targets by the pasted area."
    params = (
        # 1.0: Yun et al. 2019 use alpha = 1 on CIFAR and ImageNet alike (lam uniform on (0, 1), so the box
        # covers any fraction of the image equally often); timm's and DeiT's recipes keep it.
        Param("alpha", float, 1.0, "concentration of the Beta(alpha, alpha) distribution of lam (the box "
              "covers about 1 - lam of the image; 1: uniform)", low=0.0, high=10.0, low_open=True),
    )

    def augment_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        n, _, h, w = batch.images.shape
        box, perm = cutmix_parameters(h, w, n, self.p["alpha"], generator)
        return paste(batch, box, perm)

"""Data augmentation on training batches, on the device: random crop with zero padding, horizontal flip."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


def flip_and_crop(x: torch.Tensor, generator: torch.Generator, padding: int, flip_p: float) -> torch.Tensor:
    """Each image of the float NCHW batch ``x``: flipped left-right with probability ``flip_p``, then
    cropped back to its size at a uniformly random offset from the image zero-padded by ``padding``."""
    b, _, h, w = x.shape
    if flip_p > 0:
        flip = torch.rand(b, generator=generator, device=x.device) < flip_p
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]        # b x h x 1
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]        # b x 1 x w
        x = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device)[:, None, None], rows, cols]
        x = x.permute(0, 3, 1, 2).contiguous()
    return x


@register_trick
class Augment(Trick):
    name = "augment"
    description = "Random crop (zero padding) and horizontal flip of training batches, drawn per run on the device."
    params = (
        # 4 pixels and p = 0.5: the standard CIFAR-10 augmentation (He et al. 2016, and most references since)
        Param("padding", int, 4, "pixels of zero padding on each side before the random 32x32 crop", low=0, high=16),
        Param("flip_p", float, 0.5, "probability of flipping an image left-right", low=0.0, high=1.0),
    )

    def augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return flip_and_crop(batch, generator, self.p["padding"], self.p["flip_p"])

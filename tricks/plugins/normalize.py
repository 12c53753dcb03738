"""Per-channel standardization with statistics of the training split only."""

from __future__ import annotations

import torch
from torch import nn

from ..specs.base import Trick
from ..specs.registry import register_trick


class Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 NCHW images scaled to [0, 1], in float64."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    ss = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].to(torch.float64) / 255.0
        s += x.sum(dim=(0, 2, 3))
        ss += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s / n
    std = (ss / n - mean * mean).clamp_min(0).sqrt()
    return mean, std


@register_trick
class NormalizeInputs(Trick):
    name = "normalize_inputs"
    description = "Standardize each input channel to mean 0, std 1 with the training split's statistics."

    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        mean, std = channel_stats(train_images)
        return Standardize(mean, std.clamp_min(1e-8))

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


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 NCHW images scaled to [0, 1], in float64.

    From each channel's histogram of the 256 byte values: its sums are exact integers, and it takes
    0.24 s for the 50,000 training images on one thread where summing them as floats took 3.2 s
    (once per run). The float32 constants the transform uses are the same as that float sum's
    (checked on the real data's splits and in tests/test_tricks.py)."""
    n = images.shape[0] * images.shape[2] * images.shape[3]
    counts = torch.stack([torch.bincount(images[:, k].reshape(-1), minlength=256)
                          for k in range(images.shape[1])]).to(torch.float64)   # channels x 256
    values = torch.arange(256, dtype=torch.float64)
    mean = counts @ values / (255.0 * n)
    std = (counts @ (values * values) / (255.0 * 255.0 * n) - mean * mean).clamp_min(0).sqrt()
    return mean, std


@register_trick
class NormalizeInputs(Trick):
    name = "normalize_inputs"
    description = "Standardize each input channel to mean 0, std 1 with the training split's statistics."

    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        mean, std = channel_stats(train_images)
        return Standardize(mean, std.clamp_min(1e-8))

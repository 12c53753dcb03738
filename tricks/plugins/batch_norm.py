"""Batch normalization (Ioffe & Szegedy 2015) after each conv layer, before its activation."""

from __future__ import annotations

from torch import nn

from ..specs.base import Trick
from ..specs.registry import register_trick
from ..training.model import insert_after


@register_trick
class BatchNorm(Trick):
    name = "batch_norm"
    description = "Insert BatchNorm2d after each conv layer, before its ReLU (bn1, bn2, bn3)."

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        # the convs keep their (now redundant) biases, so the rest of the net is the baseline's
        convs = [(n, m) for n, m in model.named_children() if isinstance(m, nn.Conv2d) and n.startswith("conv")]
        for name, conv in convs:
            model = insert_after(model, name, "bn" + name[len("conv"):], nn.BatchNorm2d(conv.out_channels))
        return model

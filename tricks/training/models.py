"""The built-in models (see ``specs.models`` for the contract), and how tricks edit a model at a site.

- ``tf_cnn``: the TensorFlow CNN-tutorial net of the study (``model.baseline_net``), 122,570 parameters.
- ``cifar10_3c3d``: DeepOBS's test problem of that name (Schneider et al. 2019): conv64 5x5 valid,
  conv96 3x3 valid, conv128 3x3 same, each followed by ReLU and a 3x3 max-pool of stride 2, then dense
  512 and 256 (ReLU) and the classifier; 895,210 parameters with 10 classes (as DeepOBS states).
- ``resnet8``: a small residual network with batch normalization: a 3x3 conv16 stem, three basic
  blocks (16, 32, 64 channels; the last two halve the resolution, with a 1x1 conv shortcut), global
  average pooling, a 64-unit dense layer (so that dense-layer tricks have a site, as on the other two
  nets) and the classifier; 82,202 parameters with 10 classes.

FLOPs per image and the parameter counts are measured by ``describe`` (``tricks list models``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..specs.models import MODELS, Model, Sites, register_model
from .model import baseline_net, count_parameters, insert_after


@register_model
class TfCnn(Model):
    name = "tf_cnn"
    description = "The TensorFlow CNN-tutorial net: conv32-pool-conv64-pool-conv64-dense64-dense10 (the study's)."
    sites = Sites(conv=("relu1", "relu2", "relu3"), dense=("relu4",), norm=("conv1", "conv2", "conv3"),
                  activations=("relu1", "relu2", "relu3", "relu4"))

    def build(self, num_classes: int) -> nn.Module:
        return baseline_net(num_classes)


@register_model
class Cifar10_3c3d(Model):
    name = "cifar10_3c3d"
    description = "DeepOBS's 3c3d: conv64(5x5)-conv96-conv128, each with a 3x3/2 max-pool, dense 512-256."
    sites = Sites(conv=("relu1", "relu2", "relu3"), dense=("relu4", "relu5"), norm=("conv1", "conv2", "conv3"),
                  activations=("relu1", "relu2", "relu3", "relu4", "relu5"))

    def build(self, num_classes: int) -> nn.Module:
        pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)   # noqa: E731  (TF "same" pooling: 28->14->6->3)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 5)), ("relu1", nn.ReLU()), ("pool1", pool()),              # 32->28->14
            ("conv2", nn.Conv2d(64, 96, 3)), ("relu2", nn.ReLU()), ("pool2", pool()),             # 14->12->6
            ("conv3", nn.Conv2d(96, 128, 3, padding=1)), ("relu3", nn.ReLU()), ("pool3", pool()),  # 6->6->3
            ("flatten", nn.Flatten()),                                                            # 128*3*3
            ("fc1", nn.Linear(1152, 512)), ("relu4", nn.ReLU()),
            ("fc2", nn.Linear(512, 256)), ("relu5", nn.ReLU()),
            ("fc3", nn.Linear(256, num_classes)),
            ("log_softmax", nn.LogSoftmax(dim=1)),
        ]))


class BasicBlock(nn.Module):
    """conv3x3-BN-act1-conv3x3-BN, plus the input (a 1x1 conv + BN when the shape changes), then act2."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


@register_model
class ResNet8(Model):
    name = "resnet8"
    description = "A small ResNet with batch norm: conv16 stem, basic blocks of 16, 32, 64 channels, avg-pool, dense 64."
    normalized = True
    sites = Sites(conv=("stem.act", "block1.act2", "block2.act2", "block3.act2"), dense=("relu_fc",),
                  activations=("stem.act", "block1.act1", "block1.act2", "block2.act1", "block2.act2",
                               "block3.act1", "block3.act2", "relu_fc"))

    def build(self, num_classes: int) -> nn.Module:
        return nn.Sequential(OrderedDict([
            ("stem", nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 16, 3, padding=1, bias=False)),
                                                ("bn", nn.BatchNorm2d(16)), ("act", nn.ReLU())]))),
            ("block1", BasicBlock(16, 16, 1)),     # 32x32
            ("block2", BasicBlock(16, 32, 2)),     # 16x16
            ("block3", BasicBlock(32, 64, 2)),     # 8x8
            ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(64, 64)), ("relu_fc", nn.ReLU()),
            ("fc2", nn.Linear(64, num_classes)),
            ("log_softmax", nn.LogSoftmax(dim=1)),
        ]))


def build_model(name: str, num_classes: int) -> nn.Module:
    return MODELS.get(name)().build(num_classes)


def insert_after_site(model: nn.Module, path: str, name: str, module: nn.Module) -> nn.Module:
    """``model`` with ``module`` (called ``name``) right after the submodule at ``path``.

    In an ``nn.Sequential`` parent it becomes the next layer (the top level of ``tf_cnn``, exactly
    as ``model.insert_after``); elsewhere the submodule is wrapped as ``Sequential(it, module)``."""
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if isinstance(parent, nn.Sequential):
        new = insert_after(parent, leaf, name, module)
    else:
        new = None
        setattr(parent, leaf, nn.Sequential(OrderedDict([(leaf, getattr(parent, leaf)), (name, module)])))
    if new is None:
        return model
    if not parent_path:
        return new
    grand_path, _, parent_leaf = parent_path.rpartition(".")
    setattr(model.get_submodule(grand_path) if grand_path else model, parent_leaf, new)
    return model


def replace_site(model: nn.Module, path: str, module: nn.Module) -> nn.Module:
    """``model`` with the submodule at ``path`` replaced by ``module`` (same name)."""
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, module)
    return model


def flops_per_image(model: nn.Module) -> int:
    """Forward FLOPs of one 3x32x32 image (a multiply-add counts 2), by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32))
    return int(counter.get_total_flops())


def describe(name: str, num_classes: int = 10) -> dict:
    """A model's parameter count, forward FLOPs per image and sites (``tricks list models``)."""
    cls = MODELS.get(name)
    model = cls().build(num_classes)
    return {"name": name, "description": cls.description, "parameters": count_parameters(model),
            "flops_per_image": flops_per_image(model), "normalized": cls.normalized, "sites": cls.sites.to_dict()}


__all__ = ["MODELS", "build_model", "describe", "insert_after_site", "replace_site"]

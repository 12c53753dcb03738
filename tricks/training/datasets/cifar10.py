"""CIFAR-10 (Krizhevsky 2009) from torchvision's archive ``cifar-10-python.tar.gz``."""

from __future__ import annotations

from ...specs.datasets import register_dataset
from ..data_torchvision import TorchvisionArchive


@register_dataset
class Cifar10(TorchvisionArchive):
    name = "cifar10"
    description = ("CIFAR-10 from torchvision's archive, downloaded into --data-dir or put there by hand "
                   "(cifar-10-python.tar.gz)")
    classes = "10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck"
    sizes = "50,000 train / 10,000 test images, 32x32 RGB"
    checksum_source = "md5 of the archive and of each batch file (torchvision's constants)"
    title = "CIFAR-10"
    tv_class = "CIFAR10"

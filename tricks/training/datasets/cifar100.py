"""CIFAR-100 (Krizhevsky 2009) from torchvision's archive ``cifar-100-python.tar.gz``: its 100 fine labels."""

from __future__ import annotations

from ...specs.datasets import register_dataset
from ..data_torchvision import TorchvisionArchive


@register_dataset
class Cifar100(TorchvisionArchive):
    name = "cifar100"
    description = ("CIFAR-100 from torchvision's archive, downloaded into --data-dir or put there by hand "
                   "(cifar-100-python.tar.gz)")
    classes = "100 fine labels (apple ... worm); the 20 coarse superclasses are not used"
    sizes = "50,000 train / 10,000 test images, 32x32 RGB"
    checksum_source = "md5 of the archive and of the train, test and meta files (torchvision's constants)"
    title = "CIFAR-100"
    tv_class = "CIFAR100"

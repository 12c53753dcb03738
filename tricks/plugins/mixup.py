"""Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"): train on convex
combinations of pairs of images and of their targets.

Per training batch, one ``lam ~ Beta(alpha, alpha)`` and one permutation ``perm`` of the batch:

    images'  = lam * x + (1 - lam) * x[perm]
    targets' = lam * P + (1 - lam) * P[perm]      (P: the targets as a probability per class)

Mixing the probabilities rather than the class indices makes the hook composable: it works on
targets that an earlier ``augment_batch`` hook already made soft, and the baseline NLL of the
soft targets, ``-(targets' * log_probs).sum(1)``, is exactly ``lam * NLL(y) + (1 - lam) *
NLL(y[perm])``, the loss of the paper's reference code.

Random numbers come only from the run's own augmentation generator (``specs.base``: torch's
global RNG is the dropout masks' stream, and numpy's global RNG is nobody's). Torch has no Beta
sampler that takes a generator (``torch.distributions.Beta`` draws from the global RNG), so one
64-bit seed is drawn from the generator and a numpy ``Generator`` seeded with it draws the Beta
variate (and, for cutmix, the box centre). Reading that seed is one host sync per training step:
the price of an exact Beta draw from the run's stream; the images and targets stay on the device.
"""

from __future__ import annotations

import numpy as np
import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick
from ..specs.types import Batch

_SEED_HIGH = 2 ** 63 - 1     # exclusive bound of torch.randint's int64 draws


def host_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded by one draw from ``generator`` (the run's own stream, on its device):
    numpy's samplers (Beta, integers) without touching torch's or numpy's global RNG."""
    seed = torch.randint(0, _SEED_HIGH, (), generator=generator, device=generator.device)
    return np.random.default_rng(int(seed))


def batch_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """The partner of each image in the batch: a permutation of ``n`` drawn on the generator's device."""
    return torch.randperm(n, generator=generator, device=generator.device)


def mix_parameters(n: int, alpha: float, generator: torch.Generator) -> tuple[float, torch.Tensor]:
    """One batch's ``(lam, perm)``, in this order of draws from ``generator``: the seed of the Beta
    draw, then the permutation. Recreating the generator from the same state gives the same pair."""
    lam = float(host_rng(generator).beta(alpha, alpha))
    return lam, batch_permutation(n, generator)


def mix(batch: Batch, lam: float, perm: torch.Tensor) -> Batch:
    """``batch`` with images and targets (as probabilities) mixed with their ``perm`` partners by ``lam``."""
    perm = perm.to(batch.images.device)
    x, p = batch.images, batch.probabilities()
    return Batch(lam * x + (1 - lam) * x[perm], lam * p + (1 - lam) * p[perm], batch.num_classes)


@register_trick
class Mixup(Trick):
    name = "mixup"
    description = "Train on convex mixes of image pairs and of their targets, weight lam ~ Beta(alpha, alpha) per batch."
    params = (
        # 0.2: Zhang et al. 2018 found alpha in [0.1, 0.4] helps on ImageNet while larger alpha underfits
        # (their CIFAR runs used alpha = 1 with a PreAct ResNet-18 for 200 epochs; timm's ImageNet recipes
        # use 0.8 for large vision transformers). This benchmark's net is a ~0.1M-parameter CNN trained for a
        # few epochs, which underfits already, so the weak mixing (lam mostly near 0 or 1) is the fair default.
        Param("alpha", float, 0.2, "concentration of the Beta(alpha, alpha) distribution of the mixing weight "
              "(small: mostly near-pure images; 1: uniform)", low=0.0, high=10.0, low_open=True),
    )

    def augment_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        lam, perm = mix_parameters(batch.images.shape[0], self.p["alpha"], generator)
        return mix(batch, lam, perm)

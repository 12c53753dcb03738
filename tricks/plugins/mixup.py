"""Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"): train on convex
combinations of pairs of images and of their targets.

Reference: the paper's code (``facebookresearch/mixup-cifar10``) and timm's ``data/mixup.py``: per
training batch, one ``lam ~ Beta(alpha, alpha)`` and one permutation ``perm`` of the batch:

    images'  = lam * x + (1 - lam) * x[perm]
    targets' = lam * P + (1 - lam) * P[perm]      (P: the targets as a probability per class)

(timm pairs each image with the batch reversed instead of a random permutation, and folds label
smoothing into the targets; here smoothing is the ``label_smoothing`` trick's.) Mixing the
probabilities rather than the class indices makes the hook composable: it works on targets that an
earlier ``augment_batch`` hook already made soft, and the baseline NLL of the soft targets,
``-(targets' * log_probs).sum(1)``, is exactly ``lam * NLL(y) + (1 - lam) * NLL(y[perm])``, the
loss of the paper's reference code. Beside ``cutmix`` both apply to every batch, unless cutmix's
``switch_prob`` picks one of the two per batch (timm's ``switch_prob``; see ``cutmix``).

Random numbers come only from the run's own augmentation stream (``specs.base``: torch's global RNG
is the dropout masks' stream, and numpy's global RNG is nobody's). Torch has no Beta sampler that
takes a generator (``torch.distributions.Beta`` draws from the global RNG), so one 64-bit seed is
drawn from a CPU generator and a numpy ``Generator`` seeded with it draws the Beta variate (and, for
cutmix, the box centre). That CPU generator is the run's augmentation generator itself when the run
trains on the CPU, and on a GPU a CPU generator of the trick's own (``BatchDraws``), seeded from the
device generator's seed, so that no step waits for the device to hand a number to the host. The
permutation is drawn on the device, by the run's generator.
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
    """A numpy generator seeded by one draw from ``generator``: numpy's samplers (Beta, integers)
    without touching torch's or numpy's global RNG. Given a CPU generator, no device sync."""
    seed = torch.randint(0, _SEED_HIGH, (), generator=generator, device=generator.device)
    return np.random.default_rng(int(seed))


class BatchDraws:
    """The CPU generator a trick's batch-level draws (a seed for numpy, a coin) come from: on CPU the
    run's augmentation generator itself; on another device a CPU generator of the trick's own, seeded
    from the device generator's seed plus ``salt`` (read on the host: no sync), whose state goes into
    the run's checkpoint (``state_dict``)."""

    def __init__(self, salt: int):
        self.salt = salt
        self.cpu: torch.Generator | None = None
        self._pending: torch.Tensor | None = None      # a loaded state, for the next generator made

    def generator(self, generator: torch.Generator) -> torch.Generator:
        if generator.device.type == "cpu":
            return generator
        if self.cpu is None:
            self.cpu = torch.Generator().manual_seed((generator.initial_seed() + self.salt) % 2 ** 64)
            if self._pending is not None:
                self.cpu.set_state(self._pending)
                self._pending = None
        return self.cpu

    def rng(self, generator: torch.Generator) -> np.random.Generator:
        return host_rng(self.generator(generator))

    def coin(self, generator: torch.Generator, p: float) -> bool:
        """True with probability ``p``; draws nothing when ``p`` is 0 or 1."""
        if p >= 1.0 or p <= 0.0:
            return p >= 1.0
        return float(torch.rand((), dtype=torch.float64, generator=self.generator(generator))) < p

    def state_dict(self) -> dict:
        state = self.cpu.get_state() if self.cpu is not None else self._pending
        return {} if state is None else {"cpu": state}

    def load_state_dict(self, state: dict) -> None:
        self.cpu, self._pending = None, state.get("cpu")


def batch_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """The partner of each image in the batch: a permutation of ``n`` drawn on the generator's device."""
    return torch.randperm(n, generator=generator, device=generator.device)


def mix_parameters(n: int, alpha: float, generator: torch.Generator,
                   host: torch.Generator | None = None) -> tuple[float, torch.Tensor]:
    """One batch's ``(lam, perm)``: the seed of the Beta draw from ``host`` (default: ``generator``,
    a CPU one), then the permutation from ``generator``. The same generator states give the same pair."""
    lam = float(host_rng(generator if host is None else host).beta(alpha, alpha))
    return lam, batch_permutation(n, generator)


def mix(batch: Batch, lam: float, perm: torch.Tensor) -> Batch:
    """``batch`` with images and targets (as probabilities) mixed with their ``perm`` partners by ``lam``."""
    perm = perm.to(batch.images.device)
    x, p = batch.images, batch.probabilities()
    return Batch(lam * x + (1 - lam) * x[perm], lam * p + (1 - lam) * p[perm], batch.num_classes)


@register_trick
class Mixup(Trick):
    name = "mixup"
    description = ("Train on convex mixes of image pairs and of their targets, weight lam ~ Beta(alpha, alpha) per "
                   "batch (beside cutmix: both per batch, or one of them with cutmix's switch_prob).")
    params = (
        # 0.2: Zhang et al. 2018 found alpha in [0.1, 0.4] helps on ImageNet while larger alpha underfits
        # (their CIFAR runs used alpha = 1 with a PreAct ResNet-18 for 200 epochs; timm's ImageNet recipes
        # use 0.8 for large vision transformers). This benchmark's net is a ~0.1M-parameter CNN trained for a
        # few epochs, which underfits already, so the weak mixing (lam mostly near 0 or 1) is the fair default.
        Param("alpha", float, 0.2, "concentration of the Beta(alpha, alpha) distribution of the mixing weight "
              "(small: mostly near-pure images; 1: uniform)", low=0.0, high=10.0, low_open=True),
    )

    def __init__(self, **given):
        super().__init__(**given)
        self.draws = BatchDraws(salt=0x6D6978)
        self.switch = None      # cutmix's switch_prob, when the variant has both (set by cutmix)

    def mixed(self, batch: Batch, generator: torch.Generator) -> Batch:
        lam, perm = mix_parameters(batch.images.shape[0], self.p["alpha"], generator, self.draws.generator(generator))
        return mix(batch, lam, perm)

    def augment_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        if self.switch is not None:        # one of mixup and cutmix per batch, decided by the first of them
            return self.switch.apply(batch, generator) if self.switch.driver is self else batch
        return self.mixed(batch, generator)

    def state_dict(self) -> dict:
        return self.draws.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draws.load_state_dict(state)

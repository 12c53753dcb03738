"""A run's random streams, all derived from its seed here and nowhere else.

Seed k gives every variant the same initial weights (where the scheme matches), the same data order
and the same dropout masks, so comparisons are paired by seed; each stream has its own generator so
that a trick drawing from one never shifts another:

- ``init``: torch's global RNG seeded with k while the model is built (PyTorch's default init
  draws from it), and a CPU generator seeded with k for an ``init_weights`` trick;
- ``order``: a CPU generator seeded with k (each epoch's order of the training images);
- dropout masks: torch's global RNG, re-seeded with k + ``DROPOUT_SEED_OFFSET`` once the model is
  built (the only draws from the global RNG during training);
- ``augment``: a generator on the training device seeded with k + ``AUGMENT_SEED_OFFSET``, for
  ``augment`` and ``augment_batch`` hooks (made only when a variant augments);
- ``step``: a generator on the device seeded with k + ``STEP_SEED_OFFSET``, for
  ``before_optimizer_step`` hooks (made only when a variant has one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DROPOUT_SEED_OFFSET = 1_000_003     # the global RNG during training: dropout masks
AUGMENT_SEED_OFFSET = 2_000_003     # the run's augmentation generator, on the training device
STEP_SEED_OFFSET = 3_000_017        # the generator given to before_optimizer_step hooks, on the device


def init_stream(seed: int) -> torch.Generator:
    """Seed torch's global RNG for the model's default init and return the ``init_weights`` generator."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class Streams:
    seed: int
    init: torch.Generator
    order: torch.Generator
    augment: torch.Generator | None
    step: torch.Generator | None

    @classmethod
    def for_run(cls, seed: int, device: torch.device, augments: bool, steps: bool) -> "Streams":
        """Seed the global RNG for the model's default init and make the run's generators."""
        return cls(seed, init_stream(seed), torch.Generator().manual_seed(seed),
                   torch.Generator(device=device).manual_seed(seed + AUGMENT_SEED_OFFSET) if augments else None,
                   torch.Generator(device=device).manual_seed(seed + STEP_SEED_OFFSET) if steps else None)

    def start_dropout(self) -> None:
        """After the model is built: the global RNG becomes the dropout masks' stream."""
        torch.manual_seed(self.seed + DROPOUT_SEED_OFFSET)

    def generators(self) -> dict[str, torch.Generator | None]:
        """The generators whose state a checkpoint keeps (the global RNG is saved beside them)."""
        return {"order": self.order, "augment": self.augment, "step": self.step}

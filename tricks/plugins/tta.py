"""Test-time augmentation: evaluate each image and its left-right mirror, and combine the two
predictions.

The two passes' log-probabilities are averaged and then renormalized (``log_softmax``). The mean
alone is the log of the *unnormalized* geometric mean of the two distributions: its classes'
probabilities sum to less than 1, so the validation and test NLL the engine records from it would
be inflated against every other variant's. Renormalized, it is the geometric-mean ensemble (the
same as averaging the two passes' logits); the predicted class is the same either way.

Choices a user must know (``tricks list`` and docs/tricks.md say them too):

- **Averaging**: the geometric mean of the two distributions (renormalized mean log-probability),
  not the arithmetic mean of the probabilities (the other common choice); the two can pick
  different classes where the passes disagree.
- **Scope**: the hook is ``predict``, which the engine applies to every evaluation: the test split
  and the validation split alike (so the validation metrics that early stopping, plateau schedules
  and ``[tuning]`` read are TTA's too), never to training steps.
- **Flip assumption**: a left-right mirror keeps an image's class. True of CIFAR-10 and CIFAR-100
  (the standard training augmentation flips them for that reason); not of a dataset whose classes
  are handed or read (digits, letters, road signs with arrows), where the mirrored pass hurts.

It draws no random numbers (the mirror is deterministic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


def mirrored_mean(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The renormalized mean of the log-probabilities of ``inputs`` (NCHW) and of their left-right
    mirror; in float32 whatever the autocast precision, so the renormalization is exact."""
    both = model(inputs).float() + model(inputs.flip(3)).float()
    return F.log_softmax(both / 2, dim=1)


@register_trick
class TTA(Trick):   # not "Test...": pytest would try to collect the class wherever a test imports it
    name = "tta"
    description = ("Evaluate each validation and test image and its left-right mirror; average the "
                   "log-probabilities, renormalized (a geometric mean); assumes mirroring keeps the class.")
    params = (
        # True: the mirror is the one view a CIFAR-10 image keeps its class under (the standard training
        # augmentation flips for that reason) and it costs a single second forward pass; False leaves the
        # trick claiming the evaluation hook as plain model(inputs), a switch for ablations.
        Param("flip", bool, True, "average the log-probabilities of the image and its left-right mirror "
              "(renormalized: the geometric mean of the two distributions), at validation and test alike; "
              "assumes a flip-symmetric dataset (CIFAR: yes; digits, text: no); false: a single pass"),
    )

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if not self.p["flip"]:
            return model(inputs)
        return mirrored_mean(model, inputs)

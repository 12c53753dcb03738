"""Test-time augmentation: evaluate each image and its left-right mirror, and combine the two
predictions.

The two passes' log-probabilities are averaged and then renormalized (``log_softmax``). The mean
alone is the log of the *unnormalized* geometric mean of the two distributions: its classes'
probabilities sum to less than 1, so the validation and test NLL the engine records from it would
be inflated against every other variant's. Renormalized, it is the geometric-mean ensemble (the
same as averaging the two passes' logits); the predicted class is the same either way.

The hook is ``predict``: the engine applies it to validation and test evaluation only, never to
training steps. It draws no random numbers (the mirror is deterministic).
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
    description = "Evaluate validation and test images and their mirrors; average the log-probabilities, renormalized."
    params = (
        # True: the mirror is the one view a CIFAR-10 image keeps its class under (the standard training
        # augmentation flips for that reason) and it costs a single second forward pass; False leaves the
        # trick claiming the evaluation hook as plain model(inputs), a switch for ablations.
        Param("flip", bool, True, "average the log-probabilities of the image and its left-right mirror "
              "(renormalized); false: a single pass"),
    )

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if not self.p["flip"]:
            return model(inputs)
        return mirrored_mean(model, inputs)

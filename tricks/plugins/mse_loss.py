"""Squared-error loss on the softmax outputs, the classic backprop objective, instead of the NLL."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..specs.base import Trick
from ..specs.registry import register_trick


def mse_on_probs(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``sum_c (softmax_c - onehot_c)**2``, summed over the classes and averaged over the batch.

    (Summed over classes, not averaged as ``F.mse_loss``'s 'mean' would: a sample's loss does not
    shrink with the number of classes.) The net outputs log-probabilities, so softmax = exp.
    """
    onehot = targets if targets.dim() == 2 else F.one_hot(targets, log_probs.shape[1]).to(log_probs.dtype)
    return (log_probs.exp() - onehot).pow(2).sum(dim=1).mean()   # soft targets (mixup): their probabilities


@register_trick
class MSELoss(Trick):
    name = "mse_loss"
    description = "Train on the squared error between softmax probabilities and one-hot targets (sum over classes)."

    def criterion(self):
        return mse_on_probs

"""Label smoothing (Szegedy et al. 2016): cross-entropy against targets mixed with the uniform distribution."""

from __future__ import annotations

import torch.nn.functional as F

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick


@register_trick
class LabelSmoothing(Trick):
    name = "label_smoothing"
    description = "Train on cross-entropy with smoothed targets: 1-eps on the true class, eps spread over all classes."
    params = (
        # 0.1: the value of the paper that introduced it (Inception v3), and the common default since.
        Param("eps", float, 0.1, "probability mass spread uniformly over the classes", low=0.0, high=1.0, high_open=True),
    )

    def criterion(self):
        eps = self.p["eps"]

        def smoothed(log_probs, targets):
            # the net outputs log-probabilities; log_softmax of them is themselves, so this is exact
            return F.cross_entropy(log_probs, targets, label_smoothing=eps)
        return smoothed

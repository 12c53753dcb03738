"""No shuffling: the lecture's "shuffle the examples" ablated, with one fixed order every epoch.

- ``order = "class_sorted"`` (default): the images in their stored order, every epoch. An image folder
  (the committed studies' data) stores them sorted by class, so each epoch ends on a long run of one
  class: the most extreme case of what the lecture warns against. This is the trick as it was before it
  had the choice (its runs, and their settings keys, are unchanged: the parameter is left out of the
  settings while at its default).
- ``order = "fixed_random"``: one random permutation, drawn once per seed and repeated every epoch: the
  lecture's actual contrast, shuffling against a fixed order, without the class runs. It is drawn from a
  fresh generator seeded like the run's data-order stream (its initial seed), so it is the shuffled
  recipe's first-epoch order, the same on a resumed run, and no draw of the run's own stream is spent.
"""

from __future__ import annotations

import torch

from ..specs.base import Trick
from ..specs.params import Param
from ..specs.registry import register_trick

ORDERS = ("class_sorted", "fixed_random")


@register_trick
class NoShuffle(Trick):
    name = "no_shuffle"
    description = ("Train on the images in one fixed order every epoch: their stored order (an image folder: "
                   "sorted by class), or one random permutation per seed.")
    params = (
        # class_sorted: the trick's behaviour before it had the choice (lecun_lecture's stored runs)
        Param("order", str, "class_sorted", "the fixed order: the stored one (class_sorted), or one random "
              "permutation per seed repeated every epoch (fixed_random)", choices=ORDERS, omit_default=True),
    )

    def data_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.p["order"] == "class_sorted":
            return torch.arange(n)
        return torch.randperm(n, generator=torch.Generator().manual_seed(generator.initial_seed()))

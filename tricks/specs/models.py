"""The model contract: a registered network and the *sites* where tricks act on it.

A model is a class with a ``name``, a one-line ``description``, ``sites`` and ``build(num_classes)``
returning a module that maps float NCHW images (3 x 32 x 32) to log-probabilities (N x classes).
Register it with ``@register_model`` in any module a spec lists under ``imports``, like a trick;
``MODELS.get(name)`` fails with the valid names. The built-ins (``tf_cnn``, the default;
``cifar10_3c3d``; ``resnet8``) are in ``tricks/training/models.py``.

Sites are dotted module paths (``model.get_submodule(path)``), so tricks work on every model:

- ``conv``: the activation after each conv block (``dropout after = ["conv"]`` goes after it);
- ``dense``: the activation after each hidden dense layer (``dropout after = ["dense"]``);
- ``norm``: the convs a ``batch_norm`` follows, before their activation; ``()`` for a model that
  normalizes already (``normalized = True``: ``batch_norm`` is refused when the spec loads);
- ``activations``: every activation module ``activation`` swaps (the names are kept).

A trick that cannot act on a model says so in ``check_model`` (a ``SpecError`` naming both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from .registry import Registry

DEFAULT_MODEL = "tf_cnn"   # the study's network; runs on it keep the settings keys they always had


@dataclass(frozen=True)
class Sites:
    conv: tuple[str, ...] = ()         # activation after each conv block
    dense: tuple[str, ...] = ()        # activation after each hidden dense layer
    norm: tuple[str, ...] = ()         # convs that a batch norm may follow
    activations: tuple[str, ...] = ()  # every activation module (swapped by the activation trick)

    def to_dict(self) -> dict[str, list[str]]:
        return {"conv": list(self.conv), "dense": list(self.dense), "norm": list(self.norm),
                "activations": list(self.activations)}


class Model:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    sites: ClassVar[Sites] = Sites()
    normalized: ClassVar[bool] = False   # True: has its own normalization layers

    def build(self, num_classes: int) -> nn.Module:
        raise NotImplementedError


MODELS: Registry = Registry("model")
register_model = MODELS.register

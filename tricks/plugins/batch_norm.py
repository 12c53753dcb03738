"""Batch normalization (Ioffe & Szegedy 2015) after each conv layer, before its activation (the
model's ``norm`` sites); refused on a model that normalizes already."""

from __future__ import annotations

from torch import nn

from ..errors import SpecError
from ..specs.base import Trick
from ..specs.models import Model, Sites
from ..specs.registry import register_trick
from ..training.models import insert_after_site


@register_trick
class BatchNorm(Trick):
    name = "batch_norm"
    description = "Insert BatchNorm2d after each conv layer, before its activation (tf_cnn: bn1, bn2, bn3)."

    def check_model(self, model: type[Model]) -> None:
        if model.normalized or not model.sites.norm:
            raise SpecError(f"trick '{self.name}' cannot apply to model '{model.name}': "
                            + ("it normalizes already" if model.normalized else "it declares no norm sites"))

    def modify_model(self, model: nn.Module, sites: Sites) -> nn.Module:
        # the convs keep their (now redundant) biases, so the rest of the net is the baseline's
        for path in sites.norm:
            conv = model.get_submodule(path)
            leaf = path.rpartition(".")[2]
            name = "bn" + leaf[len("conv"):] if leaf.startswith("conv") else f"bn_{leaf}"
            model = insert_after_site(model, path, name, nn.BatchNorm2d(conv.out_channels))
        return model

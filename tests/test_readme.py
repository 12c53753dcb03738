"""The README's trick example runs as printed: a newcomer copying it gets a working trick."""

from __future__ import annotations

import re
import textwrap
import types

import torch

from .conftest import REPO


def test_the_readme_mixup_example_registers_a_trick_that_mixes_images_and_targets():
    from tricks.specs.registry import TRICKS
    from tricks.specs.types import Batch

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# tricks/plugins/my_mixup\.py.*?)```", readme, re.S).group(1)
    module = types.ModuleType("readme_my_mixup")
    try:
        exec(compile(code, "README.md", "exec"), module.__dict__)
        trick = TRICKS.get("my_mixup")(alpha=0.4)
        assert trick.claimed_hooks() == ("augment_batch",)
        x, y = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4, 5])
        before = torch.get_rng_state()
        out = trick.augment_batch(Batch(x, y, 10), torch.Generator().manual_seed(0))
        assert torch.equal(torch.get_rng_state(), before)          # only the run's own generator drew
        assert out.targets.shape == (6, 10) and torch.allclose(out.targets.sum(1), torch.ones(6))
        assert out.images.shape == x.shape and not torch.equal(out.images, x)
    finally:
        if "my_mixup" in TRICKS.names():
            TRICKS.unregister("my_mixup")


def test_the_readme_model_example_registers_a_model_tricks_can_act_on():
    from tricks.plugins import load_plugins
    from tricks.specs.models import MODELS
    from tricks.training.recipe import build_recipe

    load_plugins()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"  ```python\n(  from collections import OrderedDict\n.*?)  ```", readme, re.S).group(1)
    code = textwrap.dedent(code)                                     # the block is indented in a list item
    module = types.ModuleType("readme_mlp")
    try:
        exec(compile(code, "README.md", "exec"), module.__dict__)
        tricks = [{"name": "dropout", "p": 0.5, "after": ["dense"]}]
        net = build_recipe("v", tricks, model="mlp").model(0, 10)
        assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 1
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    finally:
        if "mlp" in MODELS.names():
            MODELS.unregister("mlp")

"""no_shuffle's fixed order: the class-sorted default is the trick as stored (same order, same resolved form,
so the committed lecun_lecture runs keep their settings keys), and the fixed random order is one permutation
per seed, the shuffled recipe's first-epoch order, repeated every epoch and unchanged by a resume."""

import json

import pytest
import torch

from tricks.errors import SpecError
from tricks.plugins import load_plugins, load_spec
from tricks.running.settings import RunSettings
from tricks.specs.registry import TRICKS
from tricks.training.recipe import build_recipe

from .conftest import REPO

load_plugins()


def test_the_default_order_is_the_stored_one_and_leaves_the_resolved_form_as_it_was():
    assert TRICKS.get("no_shuffle")().to_spec() == {"name": "no_shuffle"}
    assert TRICKS.get("no_shuffle")(order="class_sorted").to_spec() == {"name": "no_shuffle"}
    assert TRICKS.get("no_shuffle")(order="fixed_random").to_spec() == {"name": "no_shuffle", "order": "fixed_random"}
    assert TRICKS.get("no_shuffle").version == 1
    g = torch.Generator().manual_seed(3)
    fixed = build_recipe("v", [{"name": "no_shuffle"}])
    assert torch.equal(fixed.data_order(10, g), torch.arange(10))
    with pytest.raises(SpecError, match="class_sorted, fixed_random"):
        TRICKS.get("no_shuffle")(order="sorted")


def test_the_fixed_random_order_is_the_first_shuffled_epoch_repeated():
    fixed = build_recipe("v", [{"name": "no_shuffle", "order": "fixed_random"}])
    shuffled = build_recipe("v", [])
    g, h = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    first = shuffled.data_order(100, h)
    orders = [fixed.data_order(100, g) for _ in range(3)]
    assert all(torch.equal(o, first) for o in orders)                 # every epoch: the shuffled run's first
    assert not torch.equal(first, torch.arange(100)) and sorted(first.tolist()) == list(range(100))
    assert not torch.equal(shuffled.data_order(100, h), first)        # the recipe reshuffles
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(7).get_state())   # no draw spent
    other = fixed.data_order(100, torch.Generator().manual_seed(8))
    assert not torch.equal(other, first)                              # another seed, another order
    resumed = torch.Generator().manual_seed(99)
    resumed.set_state(h.get_state())                                  # a checkpoint's restored stream
    assert torch.equal(fixed.data_order(100, resumed), first)


def test_every_stored_no_shuffle_run_keeps_its_settings_key():
    paths = [p for p in sorted(REPO.glob("results/*/runs/*.json"))
             if '"no_shuffle"' in p.read_text()]
    assert paths
    for path in paths:
        rec = json.loads(path.read_text())
        settings = dict(rec["settings"])
        settings["tricks"] = [TRICKS.get(t["name"])(**{k: v for k, v in t.items() if k != "name"}).to_spec()
                              for t in settings["tricks"]]
        assert RunSettings.from_dict(settings).key() == rec["settings_key"], path


def test_the_lecture_study_has_both_fixed_orders():
    spec = load_spec(REPO / "benchmarks" / "lecun_lecture.toml")
    orders = {v.name: t.get("order", "class_sorted") for v in spec.variants for t in v.tricks
              if t["name"] == "no_shuffle"}
    assert orders == {"no_shuffle": "class_sorted", "fixed_order": "fixed_random"}

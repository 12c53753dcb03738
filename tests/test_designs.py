"""Designs generate a spec's variants from factors (no training): sizes, orthogonality, aliasing,
names, bases, conflicts."""

import itertools
import re

import numpy as np
import pytest

from tricks.errors import SpecError
from tricks.specs.designs import Factor, generate
from tricks.plugins import parse_spec

SIX = [("norm", '{ name = "normalize_inputs" }'), ("exp_lr", '{ name = "exp_lr" }'),
       ("wd", '{ name = "weight_decay" }'), ("kaiming", '{ name = "kaiming_init" }'),
       ("dense_dropout", '{ name = "dropout", after = ["dense"] }'),
       ("conv_dropout", '{ name = "dropout", p = 0.2, after = ["conv"] }')]


def spec_text(design: str, factors=SIX, extra: str = "") -> str:
    body = "".join(f'[[factors]]\nname = "{n}"\ntricks = [{t}]\n' for n, t in factors)
    return f'name = "d"\ndesign = "{design}"\n{extra}\n{body}'


def factors(k: int) -> list[Factor]:
    return [Factor(f"f{i}", ({"name": "x"},)) for i in range(k)]


def test_a_full_factorial_over_3_factors_is_8_variants_named_by_the_factors_on():
    spec = parse_spec(spec_text("factorial", SIX[:3]))
    names = [v.name for v in spec.variants]
    assert len(names) == 8 and names[0] == "baseline" and "norm+exp_lr+wd" in names and "exp_lr+wd" in names
    assert all(v.base == "baseline" for v in spec.variants[1:])
    assert {tuple(row) for row in spec.design["matrix"]} == set(itertools.product((0, 1), repeat=3))


def test_a_resolution_iv_design_over_6_factors_is_16_orthogonal_variants_clear_of_two_factor_interactions():
    d = generate("fractional", factors(6), resolution=4)
    assert d.rows.shape == (16, 6)
    x = 2 * d.rows - 1                                     # -1/+1 coding
    assert np.array_equal(x.T @ x, 16 * np.eye(6))         # main effects orthogonal to each other
    for i, j in itertools.combinations(range(6), 2):       # ... and to every two-factor interaction
        assert not np.any(x.T @ (x[:, i] * x[:, j]))
    assert len(d.generators) == 2 and all("=" in g for g in d.generators)
    for g in d.generators:                                 # each generator holds on the matrix
        lhs, rhs = (s.strip() for s in g.split("="))
        cols = [int(n[1:]) for n in rhs.split("*")]
        assert np.array_equal(x[:, int(lhs[1:])], np.prod(x[:, cols], axis=1))
    assert any(a.startswith("f0*f1 = ") for a in d.aliases)   # two-factor interactions are aliased in pairs


def test_resolution_v_and_iii_sizes_and_a_full_fraction_has_no_aliases():
    assert generate("fractional", factors(5), resolution=5).rows.shape == (16, 5)
    assert generate("fractional", factors(7), resolution=3).rows.shape == (8, 7)
    full = generate("fractional", factors(3), resolution=4)
    assert full.rows.shape == (8, 3) and full.aliases == []


@pytest.mark.parametrize("design", ["one_at_a_time", "leave_one_out", "cumulative"])
def test_one_at_a_time_leave_one_out_and_cumulative_give_k_plus_1_variants(design):
    spec = parse_spec(spec_text(design))
    assert len(spec.variants) == 7
    names = [v.name for v in spec.variants]
    if design == "one_at_a_time":
        assert names[0] == "baseline" and names[1:] == [n for n, _ in SIX]
        assert all(len(v.tricks) == 1 and v.base == "baseline" for v in spec.variants[1:])
    elif design == "leave_one_out":
        assert names[0] == "all" and names[1] == "all_but_norm" and all(v.base == "all" for v in spec.variants[1:])
        assert "normalize_inputs" not in [t["name"] for t in spec.variants[1].tricks]
    else:
        assert [v.base for v in spec.variants] == [None] + names[:-1]
        last = spec.variants[-1].tricks[-1]
        # the same trick from two factors is one entry, list parameters united: dropout after both
        assert last == {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]}


@pytest.mark.parametrize("factor_list, extra, fragment", [
    ([("a", '{ name = "exp_lr" }'), ("b", '{ name = "cosine_lr", lr = 0.01 }')], "",
     "factors a, b conflict: variant .a\\+b.: tricks .exp_lr. and .cosine_lr. both set lr_schedule"),
    ([("a", '{ name = "dropout", p = 0.1 }'), ("b", '{ name = "dropout", p = 0.5 }')], "",
     "factors 'a' and 'b' both switch on trick 'dropout' with different p"),
    ([("a", '{ name = "exp_lr" }'), ("a", '{ name = "weight_decay" }')], "", "used twice"),
    (SIX[:3], "resolution = 4", "'resolution' applies to design = \"fractional\" only"),
])
def test_conflicting_factors_are_refused_when_the_spec_loads(factor_list, extra, fragment):
    with pytest.raises(SpecError, match=fragment if "conflict" in fragment else re.escape(fragment)):
        parse_spec(spec_text("factorial", factor_list, extra))


def test_malformed_designs_say_what_is_wrong():
    with pytest.raises(SpecError, match="unknown design 'latin'; valid: cumulative"):
        parse_spec(spec_text("latin"))
    with pytest.raises(SpecError, match="needs resolution = 3, 4 or 5"):
        parse_spec(spec_text("fractional"))
    with pytest.raises(SpecError, match="either design"):
        parse_spec(spec_text("factorial") + '[[variants]]\nname = "v"\n')
    with pytest.raises(SpecError, match="'factors' needs design"):
        parse_spec('[[factors]]\nname = "a"\ntricks = [{ name = "exp_lr" }]\n[[variants]]\nname = "v"\n')

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tricks.errors import SpecError
from tricks.plugins import load_spec, parse_spec

from .conftest import REPO, STUDY_SPEC

MINI = """
name = "mini"
[training]
epochs = 2
seeds = [0, 1]
[[variants]]
name = "baseline"
[[variants]]
name = "a"
base = "baseline"
tricks = [{ name = "normalize_inputs" }]
[[variants]]
name = "b"
base = "a"
tricks = ["kaiming_init", { name = "dropout", p = 0.5, after = "conv" }]
"""


def test_study_spec_has_the_eight_cumulative_variants():
    spec = load_spec(STUDY_SPEC)
    assert spec.variant_names() == ["baseline", "norm_inputs", "lr_schedule", "weight_decay", "init_weights",
                                    "dropout_dense", "dropout_conv", "dropout_both"]
    assert (spec.training.epochs, spec.training.batch_size, spec.training.seeds) == (10, 64, (0, 1, 2, 3, 4))
    v = {x.name: x for x in spec.variants}
    assert [t["name"] for t in v["init_weights"].tricks] == ["normalize_inputs", "exp_lr", "weight_decay",
                                                              "kaiming_init"]
    assert v["dropout_conv"].base == "init_weights"
    assert v["dropout_both"].tricks[-1] == {"name": "dropout", "p": 0.2, "after": ["conv", "dense"]}


def test_one_at_a_time_applies_each_trick_alone():
    spec = load_spec(REPO / "benchmarks" / "one_at_a_time.toml")
    for v in spec.variants[1:]:
        assert v.base == "baseline" and len(v.tricks) == 1


def test_inheritance_and_string_shorthand():
    spec = parse_spec(MINI)
    b = spec.variants[2]
    assert [t["name"] for t in b.tricks] == ["normalize_inputs", "kaiming_init", "dropout"]
    assert b.tricks[2]["after"] == ["conv"]


@pytest.mark.parametrize("text,fragment", [
    ('name = "x"\n[[variants]\nname="a"', "not valid TOML"),
    ('name = "x"\nepochs = 3\n[[variants]]\nname="a"', "unknown key(s) 'epochs'"),
    ('name = "x"', "at least one [[variants]]"),
    ('[[variants]]\nname="a"\nbase="zzz"', "base 'zzz' must be a variant defined above"),
    ('[[variants]]\nname="a"\n[[variants]]\nname="a"', "defined twice"),
    ('[training]\nseeds=[1,1]\n[[variants]]\nname="a"', "more than once"),
    ('[training]\nseeds=[-1]\n[[variants]]\nname="a"', "seeds: each seed"),
    ('[training]\nepochs=0\n[[variants]]\nname="a"', "epochs must be an integer in [1,"),
    ('[[variants]]\nname="a"\ntricks=[{name="nope"}]', "unknown trick 'nope'; valid: "),
    ('[[variants]]\nname="a"\ntricks=[{name="dropout", p=2}]', "variant 'a': trick 'dropout': parameter 'p'"),
    ('[[variants]]\nname="a b"', "needs a 'name'"),
    ('imports=["no_such_module_xyz"]\n[[variants]]\nname="a"', "cannot import trick module"),
])
def test_malformed_specs_say_what_is_wrong(text, fragment):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "t.toml")
    assert fragment in str(e.value)


def test_toml_errors_name_the_line():
    with pytest.raises(SpecError, match=r"line 3"):
        parse_spec('name = "x"\n\n[[variants]\n', "t.toml")


def test_missing_spec_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_unknown_variant_selection_lists_valid_names():
    with pytest.raises(SpecError, match="valid: baseline, a, b"):
        parse_spec(MINI).select(["baseline", "c"])


toml_values = st.recursive(
    st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["name", "p", "lr", "after", "gamma", "x"]), inner,
                                            max_size=3)),
    max_leaves=8)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').encode("unicode_escape").decode() + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trick=st.sampled_from(["dropout", "exp_lr", "weight_decay", "kaiming_init", "normalize_inputs", "zzz"]),
       params=st.dictionaries(st.sampled_from(["p", "after", "lr", "gamma", "weight_decay", "mode", "bogus"]),
                              toml_values, max_size=3),
       seeds=toml_values, epochs=toml_values)
def test_any_spec_loads_or_fails_with_spec_error(trick, params, seeds, epochs):
    table = {"name": trick, **params}
    text = (f"[training]\nseeds = {_toml(seeds)}\nepochs = {_toml(epochs)}\n"
            f"[[variants]]\nname = \"v\"\ntricks = [{_toml(table)}]\n")
    try:
        spec = parse_spec(text)
    except SpecError:
        return
    assert spec.variants[0].tricks[0]["name"] == trick


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_fails_with_spec_error(text):
    try:
        spec = parse_spec(text)
    except SpecError:
        return
    # text that parses is a spec with at least one variant; without a 'name' it is called "spec"
    assert spec.variants and spec.name == (tomllib.loads(text).get("name") or "spec")


def test_a_spec_given_as_text_without_a_name_is_called_spec():
    spec = parse_spec('[[variants]]\nname = "v"\ntricks = [{ name = "dropout" }]\n')
    assert spec.name == "spec" and spec.variants[0].tricks[0] == {"name": "dropout", "p": 0.2, "after": ["dense"]}
    assert parse_spec('[[variants]]\nname = "v"\n', "benchmarks/my_study.toml").name == "my_study"

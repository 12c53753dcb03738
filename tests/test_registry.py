import pytest

from tricks.specs.base import Trick
from tricks.errors import SpecError
from tricks.specs.params import Param
from tricks.plugins import BUILTIN_MODULES, load_plugins
from tricks.specs.registry import TRICKS, Registry

load_plugins()
BY_MODULE = {m: sorted(cls.name for cls in TRICKS if cls.__module__ == f"tricks.plugins.{m}")
             for m in BUILTIN_MODULES}
BUILTIN = sorted(n for names in BY_MODULE.values() for n in names)


def test_builtin_tricks_are_registered_with_descriptions():
    assert all(BY_MODULE[m] for m in BUILTIN_MODULES), f"modules registering no trick: {BY_MODULE}"
    assert [n for n in TRICKS.names() if TRICKS.get(n).__module__.startswith("tricks.plugins.")] == BUILTIN
    assert {"dropout", "exp_lr", "kaiming_init", "normalize_inputs", "weight_decay"} <= set(BUILTIN)
    assert all(cls.description and isinstance(cls.version, int) and cls.version >= 1 for cls in TRICKS)


def test_unknown_trick_lists_the_valid_names():
    with pytest.raises(SpecError) as e:
        TRICKS.get("dropuot")
    assert "unknown trick 'dropuot'" in str(e.value)
    for name in BUILTIN:
        assert name in str(e.value)


def test_duplicate_registration_is_refused():
    reg = Registry("trick")

    class A(Trick):
        name = "toy"
        description = "a toy"

    class B(Trick):
        name = "toy"
        description = "another toy"

    reg.register(A)
    reg.register(A)  # the same class again is harmless (module re-import)
    with pytest.raises(ValueError, match="already registered"):
        reg.register(B)


def test_registration_needs_a_name_and_description():
    reg = Registry("trick")

    class NoDesc(Trick):
        name = "nodesc"

    with pytest.raises(ValueError, match="description"):
        reg.register(NoDesc)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(SpecError) as e:
        TRICKS.get("dropout")(prob=0.3)
    assert "unknown parameter(s) 'prob'" in str(e.value) and "after, p" in str(e.value)


@pytest.mark.parametrize("name,params,fragment", [
    ("dropout", {"p": 1.0}, "in [0, 1)"),
    ("dropout", {"p": -0.1}, "in [0, 1)"),
    ("dropout", {"after": ["convs"]}, "valid: conv, dense"),
    ("exp_lr", {"lr": 0.0}, "in (0,"),
    ("exp_lr", {"gamma": 0.0}, "in (0, 1]"),
    ("exp_lr", {"gamma": 1.5}, "in (0, 1]"),
    ("weight_decay", {"weight_decay": -1e-4}, "in [0, 1]"),
    ("kaiming_init", {"mode": "fan_avg"}, "one of fan_in, fan_out"),
    ("exp_lr", {"lr": "fast"}, "must be a number"),
    ("exp_lr", {"lr": True}, "must be a number"),
])
def test_out_of_range_parameters_are_refused(name, params, fragment):
    with pytest.raises(SpecError) as e:
        TRICKS.get(name)(**params)
    assert fragment in str(e.value)


def test_params_fill_defaults_and_coerce_ints_to_floats():
    t = TRICKS.get("exp_lr")(lr=1)
    assert t.p == {"lr": 1.0, "gamma": 0.8} and isinstance(t.p["lr"], float)
    assert Param("x", float, 0.0, "").validate(3, "o") == 3.0


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

any_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=6), st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(BUILTIN), key=st.sampled_from(["p", "after", "lr", "gamma", "weight_decay",
                                                           "distribution", "mode", "other"]), value=any_value)
def test_any_parameter_value_is_accepted_in_range_or_refused_with_spec_error(name, key, value):
    cls = TRICKS.get(name)
    try:
        t = cls(**{key: value})
    except SpecError:
        return
    declared = {p.name: p for p in cls.params}
    p = declared[key]
    v = t.p[key]
    if p.kind is float and v is None:
        assert value is None and p.default is None      # "unset" is only accepted where it is the default
    elif p.kind is float:
        assert isinstance(v, float) and (p.low is None or v >= p.low) and (p.high is None or v <= p.high)
        assert not (p.low_open and v == p.low) and not (p.high_open and v == p.high)
    elif p.kind is list:
        assert v and all(item in p.choices for item in v)
    else:
        assert v in p.choices

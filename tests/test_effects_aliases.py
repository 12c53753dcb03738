"""Findings of aliased designs on scripted effects tables: a significant alias chain is named as a chain,
never as one pair, no conditional effect is derived from it, and no factor in a significant chain is
said to do nothing."""

import pandas as pd

from tricks.analysis.effects import EFFECT_COLUMNS, effects
from tricks.analysis.report import effect_findings
from tricks.specs.designs import Factor, generate

from .test_effects import synthetic

LEAD = ("Effect verdicts: each effect's deciding p is the larger of its pooled least-squares p (error pooled over "
        "all terms and seeds) and its per-seed p (a t-test over its estimates in the 3 seeds that ran the whole "
        "design: its own seed-to-seed spread as its error), Holm-adjusted over the {n} effects; the per-seed p "
        "decided {k} of the {n}. Each interval below is the deciding one (95%, not adjusted).")
CHAIN_NOTE = ("A chain `x = y` is one estimate of the sum of effects this design cannot tell apart: it is not "
              "attributed to any one of them, and no effect of one factor at a level of another follows from it.")
QUIET = ("No detectable effect as a main effect or in any two-factor chain this design estimates (each within "
         "noise, its interval covering zero even before Holm): {}.")


def table(rows) -> pd.DataFrame:
    """Rows of (term, kind, effect, pooled low, high, p, per-seed low, high, p, decided_by, p_holm, verdict,
    aliases), 3 complete seeds; order, family and family_size filled in."""
    t = pd.DataFrame([r[:9] + (3,) + r[9:] for r in rows], columns=EFFECT_COLUMNS[:EFFECT_COLUMNS.index("aliases") + 1])
    order = [len(term.split("*")) for term in t["term"]]
    return t.assign(order=order, family="effects", family_size=len(t))[EFFECT_COLUMNS]


# shaped like the committed factorial study: norm (a) and kaiming (d) with weight decay (c), dense (e) and
# conv dropout (f), exp_lr (b); three interaction chains beyond noise, one only nominally off zero
SIX = table([
    ("a", "main", 0.0286, 0.0234, 0.0338, 1e-12, 0.0172, 0.0400, 0.0008, "per-seed", 0.01, "improvement", ""),
    ("b", "main", -0.0075, -0.0127, -0.0023, 0.006, -0.0158, 0.0008, 0.06, "per-seed", 0.54, "within noise", ""),
    ("c", "main", 0.0032, -0.0020, 0.0085, 0.22, -0.0018, 0.0083, 0.11, "pooled", 1.0, "within noise", ""),
    ("d", "main", 0.0194, 0.0142, 0.0246, 1e-8, 0.0130, 0.0258, 0.001, "per-seed", 0.011, "improvement", ""),
    ("e", "main", -0.0048, -0.0100, 0.0005, 0.07, -0.0197, 0.0101, 0.30, "per-seed", 1.0, "within noise", ""),
    ("a*b", "interaction", 0.0162, 0.0110, 0.0214, 5e-7, 0.0120, 0.0204, 0.001, "per-seed", 0.011, "improvement",
     "c*e = d*f"),
    ("a*d", "interaction", -0.0253, -0.0305, -0.0200, 3e-11, -0.0300, -0.0206, 0.0009, "per-seed", 0.01,
     "regression", "b*f"),
    ("a*f", "interaction", 0.0163, 0.0110, 0.0215, 4e-7, 0.0067, 0.0258, 0.018, "per-seed", 0.19, "within noise",
     "b*d"),
    ("a*c", "interaction", 0.0002, -0.0050, 0.0054, 0.94, -0.0095, 0.0099, 0.93, "pooled", 1.0, "within noise",
     "b*e"),
    ("f", "main", -0.0044, -0.0097, 0.0008, 0.09, -0.0158, 0.0069, 0.23, "per-seed", 1.0, "within noise", ""),
])


def test_a_significant_alias_chain_is_named_whole_and_its_factors_are_never_called_inert():
    out = effect_findings(SIX)
    assert out == [
        LEAD.format(n=10, k=8),
        "Main effects beyond seed noise: **a** +2.86 pts [+1.72, +4.00] per-seed; "
        "**d** +1.94 pts [+1.30, +2.58] per-seed.",
        "Main effects within noise: b (-0.75 pts [-1.58, +0.08] per-seed), c (+0.32 pts [-0.20, +0.85] pooled), "
        "e (-0.48 pts [-1.97, +1.01] per-seed), f (-0.44 pts [-1.58, +0.69] per-seed).",
        "Two-factor interactions beyond seed noise: **a*b = c*e = d*f** +1.62 pts [+1.20, +2.04] per-seed; "
        "**a*d = b*f** -2.53 pts [-3.00, -2.06] per-seed.",
        "Two-factor interactions within noise: a*f = b*d (+1.63 pts [+0.67, +2.58] per-seed), "
        "a*c = b*e (+0.02 pts [-0.50, +0.54] pooled).",
        CHAIN_NOTE,
        "b: no detectable main effect; appears in the significant chains `a*b = c*e = d*f` and `a*d = b*f`.",
        "c: no detectable main effect; appears in the significant chain `a*b = c*e = d*f`.",
        "e: no detectable main effect; appears in the significant chain `a*b = c*e = d*f`.",
        "f: no detectable main effect; appears in the significant chains `a*b = c*e = d*f` and `a*d = b*f`."]
    text = " ".join(out)
    for pair in ("**a*b**", "**c*e**", "**a*d**", "**b*f**"):    # never one pair of a chain on its own
        assert pair not in text
    for conditional in ("without", "only with", " adds ", "on normalized", " at its "):
        assert conditional not in text
    assert "No detectable effect" not in text      # every factor is in a significant chain


def test_only_factors_outside_every_chain_that_might_be_real_are_called_undetectable():
    # resolution III: a main effect aliased with an interaction; g's only chain is off zero before Holm
    t = table([
        ("a", "main", 0.02, 0.015, 0.025, 1e-6, 0.012, 0.028, 0.002, "per-seed", 0.01, "improvement", "b*c"),
        ("b", "main", 0.001, -0.004, 0.006, 0.6, -0.006, 0.008, 0.7, "per-seed", 1.0, "within noise", "a*c"),
        ("c", "main", -0.002, -0.007, 0.003, 0.4, -0.009, 0.005, 0.5, "per-seed", 1.0, "within noise", "a*b"),
        ("d", "main", 0.000, -0.005, 0.005, 0.9, -0.007, 0.007, 0.95, "per-seed", 1.0, "within noise", ""),
        ("g", "main", 0.001, -0.004, 0.006, 0.7, -0.006, 0.008, 0.8, "per-seed", 1.0, "within noise", ""),
        ("d*g", "interaction", 0.008, 0.003, 0.013, 0.002, 0.001, 0.015, 0.03, "per-seed", 0.15, "within noise",
         ""),
        ("a*d", "interaction", 0.001, -0.004, 0.006, 0.7, -0.006, 0.008, 0.8, "per-seed", 1.0, "within noise", ""),
    ])
    out = effect_findings(t)
    assert out == [
        LEAD.format(n=7, k=7),
        "Main effects beyond seed noise: **a = b*c** +2.00 pts [+1.20, +2.80] per-seed.",
        "Main effects within noise: b = a*c (+0.10 pts [-0.60, +0.80] per-seed), "
        "c = a*b (-0.20 pts [-0.90, +0.50] per-seed), d (+0.00 pts [-0.70, +0.70] per-seed), "
        "g (+0.10 pts [-0.60, +0.80] per-seed).",
        "Two-factor interactions within noise: d*g (+0.80 pts [+0.10, +1.50] per-seed), "
        "a*d (+0.10 pts [-0.60, +0.80] per-seed).",
        CHAIN_NOTE,
        "b: no detectable main effect; appears in the significant chain `a = b*c`.",
        "c: no detectable main effect; appears in the significant chain `a = b*c`."]
    # d and g: every chain within noise, but d*g's interval misses zero, so neither is called undetectable
    t.loc[t["term"] == "d*g", ["robust_low", "robust_high"]] = [-0.001, 0.017]
    assert effect_findings(t)[-1] == QUIET.format("d, g")


def test_the_findings_of_a_fitted_fractional_design_name_its_whole_chain():
    d = generate("fractional", [Factor(f"f{i}", ()) for i in range(6)], resolution=4).to_dict()
    e = effects(synthetic(d, seeds=range(5)), d)       # true f0*f2 = +1 point, aliased with f1*f4
    out = effect_findings(e)
    hits = next(s for s in out if s.startswith("Two-factor interactions beyond seed noise"))
    # the whole chain, its four-factor words included: the estimate is their sum
    assert hits.startswith("Two-factor interactions beyond seed noise: **f0*f2 = f1*f4 = f0*f3*f4*f5 = f1*f2*f3*f5** "
                           "+0.9")
    f1 = next(s for s in out if s.startswith("f1: no detectable main effect; appears in the significant chains"))
    assert "`f0*f2 = f1*f4 = f0*f3*f4*f5 = f1*f2*f3*f5`" in f1
    assert "f4" not in [s.split(":")[0] for s in out]     # f4 has a main effect of its own (-2 points)
    # f3 and f5 appear in words of significant chains (f0 = f1*f3*f5 = ...): not called undetectable, since
    # the design cannot tell those three-factor interactions from the main effects they are aliased with
    assert not any(s.startswith("No detectable effect") for s in out)


def test_an_unaliased_interaction_of_a_full_factorial_is_called_an_interaction_not_a_chain():
    full = SIX.assign(aliases="")                     # a full factorial: every term stands alone
    out = effect_findings(full)
    assert "b: no detectable main effect; appears in the significant interaction `a*b`." in out
    assert not any("significant chain" in line for line in out)

"""``tricks list tricks --spec FILE`` and ``tricks list models --spec FILE``: the tricks and models a
spec's ``imports`` register (the user's own), with their parameters, hooks and sizes, and which of them
the spec uses; ``tricks list --spec FILE`` lists the spec's variants (``commands.cmd_list``)."""

from __future__ import annotations


def _own(cls, imports: tuple[str, ...]) -> bool:
    """Whether a registered class comes from one of the spec's imported modules (or a submodule)."""
    return any(cls.__module__ == m or cls.__module__.startswith(m + ".") for m in imports)


def print_trick(cls, used: bool = False) -> None:
    print(f"{cls.name}: {cls.description}" + ("  [used by the spec]" if used else ""))
    print(f"    hooks: {', '.join(cls.claimed_hooks())}; version {cls.version}"
          + ("; needs a validation split (--validation N)" if cls.needs_validation else ""))
    for p in cls.params:
        print(f"    {p.name} = {p.default!r}  ({p.describe_range()}) {p.help}"
              + ("; an LR: [tuning] rescales it" if p.is_lr else ""))


def print_model(cls, used: bool = False) -> None:
    from ..training.models import describe

    d = describe(cls.name)
    print(f"{cls.name}: {cls.description}" + ("  [used by the spec]" if used else ""))
    print(f"    {d['parameters']:,} parameters (10 classes); {d['flops_per_image'] / 1e6:.1f} MFLOP forward per "
          f"32x32 image" + ("; normalizes already (batch_norm refused)" if cls.normalized else ""))
    for kind, paths in d["sites"].items():
        print(f"    sites {kind}: {', '.join(paths) or '(none)'}")


def cmd_list_spec_code(what: str, spec_path: str) -> int:
    """The spec's own tricks (``what`` = "tricks") or models ("models"), as ``tricks list`` prints the built-ins."""
    from ..plugins import load_spec
    from ..specs.models import MODELS
    from ..specs.registry import TRICKS

    spec = load_spec(spec_path)
    imports = spec.imports
    origin = f"spec {spec.name} imports {', '.join(imports)}" if imports else f"spec {spec.name} imports no module"
    if what == "tricks":
        used = {t["name"] for v in spec.variants for t in v.tricks}
        own = [cls for cls in TRICKS if _own(cls, imports)]
        print(f"{origin}: {len(own)} trick(s) of its own" + (f"; its variants also use the built-in "
              f"{', '.join(sorted(n for n in used if not _own(TRICKS.get(n), imports)))}"
              if any(not _own(TRICKS.get(n), imports) for n in used) else ""))
        for cls in own:
            print_trick(cls, cls.name in used)
    else:
        used = {w.model for w in spec.workloads if w.entry is None}
        own = [cls for cls in MODELS if _own(cls, imports) or cls.name in used]
        print(f"{origin}: {sum(_own(c, imports) for c in own)} model(s) of its own; the models its workloads use "
              "are listed too")
        for cls in own:
            print_model(cls, cls.name in used)
        for w in spec.workloads:
            if w.entry:
                print(f"workload {w.name or '(the only one)'}: entry point {w.entry} (your own training function: "
                      "its model is its own)")
    print("(the built-ins: tricks list tricks, tricks list models)")
    return 0

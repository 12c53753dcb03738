"""User code that cannot silently do nothing or silently change.

- ``check_trick_class``: a trick class is refused when it registers if it claims no hook at all, or
  defines a name that is close to one of the contract's names but is not one (``before_optimiser_step``,
  ``lr_scheduler``, ``needs_validaton``): such a method would never be called, and the variant would
  equal its base. The message names the closest contract name.
- ``check_model_sites``: every site a model declares is a layer of the network it builds, checked when
  a spec that trains on it loads (not when the first trick acts on the site, after other runs trained).
- ``module_sources``: the sha256 of each module a spec imports (and of an entry point's module), a
  setting of every run of that spec (``RunSettings.sources``): editing the code without bumping a
  trick's ``version`` no longer reuses runs made with the old code. The package's own modules
  (``tricks.*``) are left out: their ``version`` is the contract.
- ``with_root``: a spec's ``imports`` and entry modules resolve relative to the spec's folder first.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Iterable

from ..errors import SpecError

CUTOFF = 0.8        # difflib similarity above which a name counts as a near miss of a contract name


def contract_names() -> tuple[str, ...]:
    """Every public name of the trick contract (hooks, checks, class attributes)."""
    from .base import Trick

    return tuple(n for n in dir(Trick) if not n.startswith("_"))


def near_miss(name: str, names: Iterable[str]) -> str | None:
    """The contract name ``name`` is close to (but not), or None."""
    names = list(names)
    lowered = {n.lower(): n for n in names}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=CUTOFF)
    return lowered[found[0]] if found and lowered[found[0]] != name else None


def check_trick_class(cls: type) -> None:
    """Refuse a trick class that claims no hook, or defines a near miss of a contract name (SpecError)."""
    from .base import HOOKS, Trick

    label = f"trick {getattr(cls, 'name', '')!r} ({cls.__module__}.{cls.__qualname__})"
    if not (isinstance(cls, type) and issubclass(cls, Trick)):
        raise SpecError(f"{label} must subclass tricks.Trick")
    known = contract_names()
    for klass in cls.__mro__:
        if klass is Trick or not issubclass(klass, Trick):
            continue
        for name in vars(klass):
            if name.startswith("_") or name in known:
                continue
            close = near_miss(name, known)
            if close is not None:
                kind = "is not a hook" if close in HOOKS else "is not part of the trick contract"
                raise SpecError(f"{label} defines {name!r}, which {kind}, so it would never be used; "
                                f"did you mean {close!r}? (hooks: tricks list tricks, or tricks/specs/base.py)")
    if not cls.claimed_hooks():
        raise SpecError(f"{label} overrides no hook, so a variant with it would equal one without it; "
                        f"define at least one of: {', '.join(HOOKS)}")


_SITES_CHECKED: dict[type, None] = {}


def check_model_sites(cls: type) -> None:
    """Every site of the model class ``cls`` names a layer of the network it builds (SpecError naming the
    site and the layers); checked once per class and process."""
    if cls in _SITES_CHECKED:
        return
    try:
        net = cls().build(10)
    except Exception as exc:   # the user's model fails to build: say so now, not in the first run
        raise SpecError(f"model {cls.name!r}: build(10) failed: {type(exc).__name__}: {exc}") from None
    layers = [n for n, _ in net.named_modules() if n]
    for kind, paths in cls.sites.to_dict().items():
        missing = [p for p in paths if p not in layers]
        if missing:
            raise SpecError(f"model {cls.name!r}: {kind} site(s) {', '.join(map(repr, missing))} name no layer of "
                            f"the network it builds; its layers: {', '.join(layers)}")
    _SITES_CHECKED[cls] = None


# ---------------------------------------------------------------------------------------------
# where user modules are, and their sources

def spec_root(spec_path: str | None) -> str | None:
    """The absolute folder of a spec file (None for a spec given as text)."""
    if not spec_path or spec_path == "<string>":
        return None
    return str(Path(spec_path).expanduser().resolve().parent)


def with_root(root: str | None) -> None:
    """Put ``root`` first on ``sys.path`` (once), so that modules beside the spec win over others."""
    if root is None:
        return
    if sys.path[:1] != [root]:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
        importlib.invalidate_caches()


def module_file(name: str) -> Path:
    """The source file of module ``name`` (imported already, or found on ``sys.path``)."""
    mod = sys.modules.get(name)
    origin = getattr(mod, "__file__", None) if mod is not None else None
    if origin is None:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        origin = found.origin if found is not None and found.has_location else None
    if origin is None:
        raise SpecError(f"cannot find the source of module {name!r} (listed under 'imports' or as an entry); "
                        "put it beside the spec or on PYTHONPATH")
    return Path(origin)


def source_sha256(name: str) -> str:
    """sha256 of a module's source: its file, or every ``.py`` file of a package (by relative path)."""
    path = module_file(name)
    h = hashlib.sha256()
    if path.name == "__init__.py":
        for p in sorted(path.parent.rglob("*.py")):
            h.update(str(p.relative_to(path.parent)).encode() + b"\0" + p.read_bytes() + b"\0")
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def module_sources(modules: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """((module, sha256 of its source), ...) for the user's modules among ``modules``, in order, once."""
    names = [m for m in dict.fromkeys(modules) if m != "tricks" and not m.startswith("tricks.")]
    return tuple((m, source_sha256(m)) for m in names)


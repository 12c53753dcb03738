"""The package's structure: no module imports a layer above its own (not even lazily inside a
function), and no module is over 300 lines. Layers, lowest first: errors, files and predictions, specs (the
contract), training, plugins, running, analysis, cli."""

from __future__ import annotations

import ast
from pathlib import Path

import tricks

ROOT = Path(tricks.__file__).parent
LAYERS = {"errors": 0, "files": 0, "predictions": 0, "specs": 1, "training": 2, "plugins": 3, "running": 4, "analysis": 5, "cli": 6}
EXEMPT = {"__init__", "__main__"}     # the package's lazy public names and `python -m tricks`
MAX_LINES = 300


def layer_of(parts: tuple[str, ...]) -> int | None:
    return LAYERS.get(parts[0].removesuffix(".py")) if parts else None


def imported_layers(path: Path, here: tuple[str, ...] | None = None) -> list[tuple[int, str]]:
    """(line, 'x.y' for tricks.x.y) for every import of a tricks module in ``path``, wherever it sits
    (inside functions too); ``here``: the module's place in the package (default: from its path)."""
    here = here or path.relative_to(ROOT).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:-1])[:len(here) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [base + [a.name] for a in node.names]
            elif node.module and node.module.split(".")[0] == "tricks":
                names = [node.module.split(".")[1:]]
            else:
                continue
            found += [(node.lineno, ".".join(n)) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, ".".join(a.name.split(".")[1:])) for a in node.names
                      if a.name.split(".")[0] == "tricks"]
    return found


def modules():
    return [p for p in sorted(ROOT.rglob("*.py")) if p.stem not in EXEMPT or p.parent != ROOT]


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in modules():
        if path.parent == ROOT and path.stem in EXEMPT:
            continue
        own = layer_of(path.relative_to(ROOT).parts)
        assert own is not None, f"{path.relative_to(ROOT)} is in no layer: add it to LAYERS"
        for line, target in imported_layers(path):
            theirs = layer_of(tuple(target.split("."))) if target else None
            if theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports tricks.{target}")
    assert upward == []


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checker_sees_relative_absolute_and_lazy_imports(tmp_path):
    module = tmp_path / "spec.py"
    module.write_text("from ..errors import SpecError\nimport tricks.analysis.stats\n\n"
                      "def f():\n    from ..plugins import load_plugins\n    from . import types\n")
    found = imported_layers(module, here=("specs", "spec"))
    assert found == [(1, "errors"), (2, "analysis.stats"), (5, "plugins"), (6, "specs.types")]
    assert [layer_of(tuple(t.split("."))) for _, t in found] == [0, 5, 3, 1]

"""Run the tests marked ``cuda`` (benchmarks/gpu_check.sh): with pytest where it is installed, else with a
small stand-in for the part of pytest those tests use, so that a GPU machine without pytest still runs them.

    python benchmarks/cuda_tests.py [--stand-in] [-k SUBSTRING] [--all-marks] [TEST_FILE ...]

Default files: every ``tests/test_*.py`` that holds a test marked ``cuda``. Sets ``TRICKS_TEST_CUDA=1``
unless it is set (``tests/conftest.py``: CUDA is hidden from a test session otherwise). ``--stand-in``
uses the stand-in even where pytest is installed (how the stand-in is tested on the CPU); ``--all-marks``
runs the files' other tests too (with ``-k``, to try the stand-in on tests that do not skip). The
stand-in knows: ``mark.<name>`` and ``mark.parametrize``, ``fixture`` (plain and generator fixtures,
``autouse``, fixtures of ``tests/conftest.py`` and of the module), the fixtures ``tmp_path``,
``tmp_path_factory`` and ``monkeypatch``, ``skip``, ``raises``, ``importorskip`` and ``approx``.
Exit status 0 when nothing failed; the last line counts passed, failed and skipped tests, as pytest's does.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import traceback
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Skipped(Exception):
    pass


class _Mark:
    def __init__(self, name: str, args=(), kwargs=None, configured=False):
        self.name, self.args, self.kwargs, self.configured = name, args, kwargs or {}, configured

    def __call__(self, *args, **kwargs):
        if self.configured or (len(args) == 1 and inspect.isfunction(args[0]) and not kwargs):
            func = args[0]
            func.pytestmark = [*getattr(func, "pytestmark", []), self]
            return func
        return _Mark(self.name, args, kwargs, configured=True)


class _MarkGenerator:
    def __getattr__(self, name: str) -> _Mark:
        return _Mark(name)


def _fixture(func=None, *, autouse=False, scope="function", **_):
    def tag(f):
        f._fixture = {"autouse": autouse, "scope": scope}
        return f
    return tag(func) if func is not None else tag


def _skip(reason: str = "", **_):
    raise Skipped(reason)


@contextlib.contextmanager
def _raises(exc, match=None):
    try:
        yield
    except exc as e:
        if match is not None and not re.search(match, str(e)):
            raise AssertionError(f"{type(e).__name__}({e}) does not match {match!r}") from None
    else:
        raise AssertionError(f"did not raise {exc}")


def _importorskip(name: str, reason: str | None = None, **_):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Skipped(reason or f"could not import {name!r}") from None


class _Approx:
    def __init__(self, expected, rel=1e-6, abs=1e-12):
        self.expected, self.rel, self.abs = expected, rel, abs

    def __eq__(self, other):
        def eq(a, b):
            return abs(a - b) <= max(self.rel * abs(b), self.abs)
        if isinstance(self.expected, (list, tuple)):
            return len(other) == len(self.expected) and all(eq(a, b) for a, b in zip(other, self.expected))
        return eq(other, self.expected)


class MonkeyPatch:
    def __init__(self):
        self._undo = []

    def setattr(self, target, name, value=None, raising=True):
        old = getattr(target, name)
        self._undo.append(lambda: setattr(target, name, old))
        setattr(target, name, value)

    def setenv(self, name, value, prepend=None):
        old = os.environ.get(name)
        self._undo.append(lambda: os.environ.pop(name, None) if old is None else os.environ.__setitem__(name, old))
        os.environ[name] = str(value)

    def delenv(self, name, raising=True):
        old = os.environ.get(name)
        if old is not None:
            self._undo.append(lambda: os.environ.__setitem__(name, old))
            del os.environ[name]

    def syspath_prepend(self, path):
        sys.path.insert(0, str(path))
        self._undo.append(lambda: sys.path.remove(str(path)))
        importlib.invalidate_caches()

    def undo(self):
        while self._undo:
            self._undo.pop()()


def stand_in() -> types.ModuleType:
    """A module that stands in for ``pytest`` in ``sys.modules``."""
    mod = types.ModuleType("pytest")
    mod.mark, mod.fixture, mod.skip, mod.raises = _MarkGenerator(), _fixture, _skip, _raises
    mod.importorskip, mod.approx, mod.MonkeyPatch = _importorskip, _Approx, MonkeyPatch
    mod.skip.Exception = Skipped
    return mod


class _Factory:
    def __init__(self, base: Path):
        self.base, self.n = base, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        p = self.base / f"{name}{self.n}"
        p.mkdir(parents=True)
        return p


def _marks(func) -> list[_Mark]:
    return list(getattr(func, "pytestmark", []))


def _cases(func) -> list[tuple[str, dict]]:
    """(id, parameters) for each case of a (parametrized) test."""
    cases = [("", {})]
    for m in reversed([m for m in _marks(func) if m.name == "parametrize"]):
        names = [n.strip() for n in m.args[0].split(",")] if isinstance(m.args[0], str) else list(m.args[0])
        more = []
        for cid, params in cases:
            for value in m.args[1]:
                values = value if len(names) > 1 else (value,)
                more.append((f"{cid}-{values[0] if len(names) == 1 else '-'.join(map(str, values))}".strip("-"),
                             {**params, **dict(zip(names, values))}))
        cases = more
    return cases


class Session:
    def __init__(self, tmp: Path):
        self.factory = _Factory(tmp)
        self.session_values: dict[str, object] = {}
        self.teardowns: list = []

    def resolve(self, name: str, fixtures: dict, values: dict, finals: list):
        if name in values:
            return values[name]
        if name == "tmp_path":
            value = self.factory.mktemp("test")
        elif name == "tmp_path_factory":
            value = self.factory
        elif name == "monkeypatch":
            value = MonkeyPatch()
            finals.append(value.undo)
        elif name in fixtures:
            f = fixtures[name]
            session = f._fixture["scope"] == "session"
            if session and name in self.session_values:
                return self.session_values[name]
            args = {p: self.resolve(p, fixtures, values, finals) for p in inspect.signature(f).parameters}
            value = f(**args)
            if inspect.isgenerator(value):
                gen, value = value, next(value)
                (self.teardowns if session else finals).append(lambda gen=gen: next(gen, None))
            if session:
                self.session_values[name] = value
        else:
            raise LookupError(f"fixture {name!r} not found")
        values[name] = value
        return value


def run_stand_in(files: list[Path], keyword: str | None, only_cuda: bool) -> int:
    sys.modules["pytest"] = stand_in()
    sys.path.insert(0, str(REPO))
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    with tempfile.TemporaryDirectory(prefix="cuda-tests-") as tmp:
        session = Session(Path(tmp))
        conftest = importlib.import_module("tests.conftest")
        for path in files:
            module = importlib.import_module(f"tests.{path.stem}")
            fixtures = {n: f for src in (conftest, module) for n, f in vars(src).items()
                        if callable(f) and hasattr(f, "_fixture")}
            autouse = [n for n, f in fixtures.items() if f._fixture["autouse"]]
            for name, func in vars(module).items():
                if not (name.startswith("test") and inspect.isfunction(func)):
                    continue
                if only_cuda and not any(m.name == "cuda" for m in _marks(func)):
                    continue
                for cid, params in _cases(func):
                    test_id = f"{path.name}::{name}" + (f"[{cid}]" if cid else "")
                    if keyword and keyword not in test_id:
                        continue
                    outcome = _run_one(session, func, fixtures, autouse, params)
                    counts[outcome[0]] += 1
                    print(f"{test_id} {outcome[0].upper()}" + (f": {outcome[1]}" if outcome[1] else ""), flush=True)
        for teardown in reversed(session.teardowns):
            teardown()
    print(", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests ran")
    return 1 if counts["failed"] else 0


def _run_one(session: Session, func, fixtures: dict, autouse: list[str], params: dict) -> tuple[str, str]:
    finals: list = []
    try:
        for m in _marks(func):
            if m.name == "skipif" and m.args and m.args[0]:
                raise Skipped(m.kwargs.get("reason", ""))
        values = dict(params)
        for name in autouse:
            session.resolve(name, fixtures, values, finals)
        args = {p: session.resolve(p, fixtures, values, finals) for p in inspect.signature(func).parameters}
        func(**args)
        return "passed", ""
    except Skipped as exc:
        return "skipped", str(exc)
    except Exception:
        return "failed", "\n" + traceback.format_exc()
    finally:
        for final in reversed(finals):
            with contextlib.suppress(Exception):
                final()


def default_files() -> list[Path]:
    return sorted(p for p in (REPO / "tests").glob("test_*.py") if "mark.cuda" in p.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--stand-in", action="store_true", help="never pytest, even where it is installed")
    ap.add_argument("-k", dest="keyword", help="only tests whose id contains this")
    ap.add_argument("--all-marks", action="store_true", help="not only the tests marked cuda")
    args = ap.parse_args(argv)
    os.environ.setdefault("TRICKS_TEST_CUDA", "1")
    files = [p.resolve() for p in args.files] or default_files()
    os.chdir(REPO)
    if not args.stand_in and importlib.util.find_spec("pytest") is not None:
        import pytest

        return pytest.main(["-q", "-p", "no:cacheprovider", "-rs", *([] if args.all_marks else ["-m", "cuda"]),
                            *(["-k", args.keyword] if args.keyword else []), *map(str, files)])
    return run_stand_in(files, args.keyword, not args.all_marks)


if __name__ == "__main__":
    sys.exit(main())

"""A name -> class registry that refuses duplicates and lists the valid names on a miss."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from ..errors import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: register ``cls`` under ``cls.name``. A second class with the same name is refused."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{cls.__qualname__} needs a class attribute 'name' that is an identifier, got {name!r}")
        if not getattr(cls, "description", ""):
            raise ValueError(f"{self.kind} {name!r} needs a one-line 'description'")
        existing = self._entries.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"{self.kind} {name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        self._entries[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> type[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise SpecError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[type[T]]:
        return iter(self._entries[n] for n in self.names())


TRICKS: Registry = Registry("trick")


def register_trick(cls: type[T]) -> type[T]:
    """Class decorator: register a trick, refused (``SpecError``) when it claims no hook or defines a near
    miss of a hook's name (``specs.user_code.check_trick_class``): it would silently do nothing."""
    from .user_code import check_trick_class

    check_trick_class(cls)
    return TRICKS.register(cls)

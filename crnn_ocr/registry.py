"""Named things registered once: architectures of both networks, dataset readers. A plain dict in registration
order, with a decorator that refuses a second registration and a lookup that names what is known.

>>> from crnn_ocr.errors import ConfigError
>>> colours = Registry("colour", ConfigError)
>>> _ = colours.register("red")(0xFF0000)
>>> colours.get("red"), colours.names()
(16711680, ['red'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """`register(name)` decorates what to register; `get(name)` returns it or raises `error` naming the known."""

    def __init__(self, kind: str, error: type[Exception]):
        super().__init__()
        self.kind, self.error = kind, error

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(thing: T) -> T:
            if name in self:
                raise self.error(f"{self.kind} {name!r} is already registered")
            self[name] = thing
            return thing

        return decorator

    def get(self, name: str) -> T:  # type: ignore[override]
        try:
            return self[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}") from None

    def names(self) -> list[str]:
        return sorted(self)

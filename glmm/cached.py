"""Attributes computed on first use and kept: :func:`functools.cached_property` as Python
3.12 has it.

Python 3.11's takes a lock (one per property, shared by every instance) at each first use,
which costs more than most of a fit's cached values take to compute (~1 µs against ~0.3; a
small fit makes some twenty of them).  3.12 removed the lock (two threads may then both
compute a value; the last one's stays), and this is that version for 3.11: the value goes
into the instance's ``__dict__`` (so frozen dataclasses take it, and it pickles with them),
where later reads find it without calling the descriptor.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["cached_property"]

T = TypeVar("T")

if sys.version_info >= (3, 12):
    cached_property = functools.cached_property
else:
    class cached_property(Generic[T]):
        """A read-only attribute computed by ``func`` on first use and kept."""

        def __init__(self, func: Callable[[Any], T]) -> None:
            self.func = func
            self.attrname: str | None = None
            self.__doc__ = func.__doc__
            self.__module__ = func.__module__

        def __set_name__(self, owner: type, name: str) -> None:
            if self.attrname is None:
                self.attrname = name
            elif name != self.attrname:
                raise TypeError(f"cannot assign the same cached_property to two names "
                                f"({self.attrname!r} and {name!r})")

        def __get__(self, instance: Any, owner: type | None = None) -> Any:
            if instance is None:
                return self
            if self.attrname is None:
                raise TypeError("cannot use a cached_property without calling __set_name__")
            value = self.func(instance)
            instance.__dict__[self.attrname] = value
            return value

"""Every process-wide cache of the product, named and resettable in one place.

Heavy things (models, synthesizers, loaded checkpoints, per-library learners) are built
once per process and reused. Each such cache registers here under a name, so a test, an
operator or the service can see what is held (:func:`cache_names`) and drop it
(:func:`clear_caches`) without restarting the process, e.g. the feedback learner after a
user's data is deleted.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[[], None]] = {}


def _register(name: str, clear: Callable[[], None]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"a cache named {name!r} is already registered")
    _REGISTRY[name] = clear


def cached(name: str, *, maxsize: int | None = 4) -> Callable[[F], F]:
    """``functools.lru_cache`` that registers itself as ``name`` and builds each entry once.

    Calls hold a per-function lock, so two threads asking for the same model at once (the
    speech lane and the subtitles source both want the text model) load it once, not twice.
    """

    def wrap(fn: F) -> F:
        inner = functools.lru_cache(maxsize=maxsize)(fn)
        lock = threading.RLock()

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return inner(*args, **kwargs)

        call.cache_clear = inner.cache_clear  # type: ignore[attr-defined]
        call.cache_info = inner.cache_info  # type: ignore[attr-defined]
        _register(name, inner.cache_clear)
        return call  # type: ignore[return-value]

    return wrap


class Cache:
    """A named, thread-safe key -> object map for objects built by a factory on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        _register(name, self.clear)

    def get(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """The object under ``key``, built by ``factory()`` the first time."""
        with self._lock:
            if key not in self._items:
                self._items[key] = factory()
            return self._items[key]

    def pop(self, key: Hashable) -> Any:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._items))


def cache_names() -> tuple[str, ...]:
    """The names of every cache registered so far (modules register when imported)."""
    return tuple(sorted(_REGISTRY))


def clear_caches(*names: str) -> None:
    """Drop the named caches (all of them when no name is given)."""
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise KeyError(f"no cache named {unknown[0]!r} (known: {', '.join(cache_names())})")
    for name in names or tuple(_REGISTRY):
        _REGISTRY[name]()

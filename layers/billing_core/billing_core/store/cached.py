"""Values read from the table and kept per execution environment for BILLING_CONFIG_CACHE_SECONDS
(5 s in production, 0 locally and in tests): the billing config and the plan catalogue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from billing_core.kernel import settings

T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._entry: tuple[float, T] | None = None

    def get(self) -> T:
        ttl = settings.get().config_cache_seconds
        if self._entry is not None and ttl > 0 and time.monotonic() - self._entry[0] < ttl:
            return self._entry[1]
        value = self._load()
        self._entry = (time.monotonic(), value)
        return value

    def invalidate(self) -> None:
        """The instance that wrote a change sees it at once."""
        self._entry = None

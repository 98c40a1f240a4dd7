"""Calling a compiled kernel without numba's per-call argument typing.

A numba dispatcher types every argument on every call; for the zone set, a named tuple
of some forty arrays, that costs about 8 us, most of a single-fix evaluation. Where the
caller guarantees the argument types (the evaluator normalises dtypes and layouts at
the door, and a zone set's arrays never change), the compiled entry point can be
called directly: it only unboxes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numba


def direct_call(dispatcher: Any, cache: dict[Hashable, Callable[..., Any]], key: Hashable, *args: Any) -> Any:
    """``dispatcher(*args)``; the first call per ``key`` goes through the dispatcher (which
    compiles or loads the kernel) and remembers the entry point of the arguments' exact
    types. Every later call with the same key must pass arguments of those same types."""
    entry = cache.get(key)
    if entry is not None:
        return entry(*args)
    result = dispatcher(*args)
    signature = tuple(numba.typeof(a) for a in args)  # type: ignore[no-untyped-call]
    overload = dispatcher.overloads.get(signature)
    if overload is not None:
        cache[key] = overload.entry_point
    return result


__all__ = ["direct_call"]

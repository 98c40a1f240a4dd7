"""numba's on-disk kernel cache, kept in step with all of this package's sources.

``cache=True`` keys a kernel's cache entry on the file that defines it (its size and
modification time), not on the files it calls into (numba/numba#8396, an open pull
request). After an edit of ``projection.py``, the batch kernels of ``_kernels.py`` went on
running the old projection from the cache (seen here, and found only because a timing
did not move). An upgrade that changes a helper module would do the same to a user.

So every cached kernel of the package gets a source stamp that also holds a digest of
all the package's ``.py`` files: an entry written by other sources no longer matches
and is compiled afresh (and overwritten), while entries of the current sources load as
before. This sets one private attribute of numba's cache (``IndexDataCacheFile``
compares the stamp it holds with the one saved in the index); should a numba release
rename it, the kernels are compiled at start rather than loaded (a warning says so),
never run stale.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numba
from numba.core.caching import NullCache
from numba.core.dispatcher import Dispatcher

_PACKAGE = "geofence"


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over the names and contents of the package's Python files."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def cached_kernels() -> list[Any]:
    """Every numba dispatcher with an on-disk cache in the package's loaded modules."""
    seen: dict[int, Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == _PACKAGE or name.startswith(_PACKAGE + ".")):
            continue
        for value in vars(module).values():
            if isinstance(value, Dispatcher):
                seen[id(value)] = value
    return [d for d in seen.values() if not isinstance(d._cache, NullCache)]


def stamp(dispatchers: list[Any], digest: str) -> int:
    """Add ``digest`` to the cache stamp of each dispatcher not stamped yet; returns how
    many were stamped now. Where numba's cache does not look as expected (a numba
    release that renamed its internals), the dispatcher's disk cache is switched off
    with a warning: compiling at start is slow, running a stale kernel is wrong."""
    stamped = 0
    for dispatcher in dispatchers:
        cache_file = getattr(dispatcher._cache, "_cache_file", None)
        original = getattr(cache_file, "_source_stamp", None)
        if cache_file is None or original is None:
            dispatcher._cache = NullCache()
            warnings.warn(f"numba {numba.__version__}: unknown cache internals, so {dispatcher.py_func.__name__} "
                          "is compiled at start instead of loaded from the disk cache", RuntimeWarning, stacklevel=2)
            continue
        if isinstance(original, tuple) and len(original) == 3 and original[1] == _PACKAGE:
            continue  # stamped already
        cache_file._source_stamp = (original, _PACKAGE, digest)
        stamped += 1
    return stamped


def stamp_kernel_caches() -> int:
    """Stamp every cached kernel of the package with its source digest. Call before any
    kernel runs: one loaded from the cache before its stamp is set could be stale."""
    return stamp(cached_kernels(), source_digest())


__all__ = ["cached_kernels", "source_digest", "stamp", "stamp_kernel_caches"]

"""The kernel cache follows every source file of the package, not only the kernel's own
(geofence._cache): an entry written under other sources is compiled afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba import njit
from numba.core.caching import NullCache

import geofence
from geofence import _cache

_MODULE = '''
from numba import njit

@njit(cache=True)
def twice(v):
    return 2 * v
'''

_SCRIPT = '''
import sys
sys.path.insert(0, sys.argv[1])
import kernel_mod
from geofence._cache import stamp
stamp([kernel_mod.twice], sys.argv[2])
assert kernel_mod.twice(21) == 42
'''


def _run(tmp_path: Path, digest: str) -> str:
    env = {**os.environ, "NUMBA_DEBUG_CACHE": "1", "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), digest], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout + done.stderr


def test_every_cached_kernel_of_the_package_carries_the_source_digest() -> None:
    kernels = _cache.cached_kernels()
    assert any(k.py_func.__name__ == "fill_groups" for k in kernels)
    assert any(k.py_func.__name__ == "project_into" for k in kernels)
    for k in kernels:
        assert k._cache._cache_file._source_stamp[1:] == ("geofence", _cache.source_digest())
    assert geofence._cache.stamp_kernel_caches() == 0  # idempotent


def test_an_entry_cached_under_other_sources_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "kernel_mod.py").write_text(_MODULE)
    assert "data saved" in _run(tmp_path, "sources-a")  # first compile, saved
    again = _run(tmp_path, "sources-a")
    assert "data loaded" in again and "data saved" not in again  # same sources: loaded
    other = _run(tmp_path, "sources-b")
    assert "data loaded" not in other and "data saved" in other  # a helper changed: compiled afresh


def test_a_cache_of_unknown_shape_is_switched_off_not_trusted() -> None:
    """Fault injected: numba's cache without the stamp attribute (a future release)."""

    @njit(cache=False)
    def thrice(v: int) -> int:
        return 3 * v

    class Renamed:
        _cache_file = object()  # no _source_stamp

    thrice._cache = Renamed()
    with pytest.warns(RuntimeWarning, match="compiled at start"):
        assert _cache.stamp([thrice], "sources-a") == 0
    assert isinstance(thrice._cache, NullCache)
    assert thrice(3) == 9

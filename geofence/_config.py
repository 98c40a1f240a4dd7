"""Numba compilation flags for every kernel, kept in one place (stumpy's habit).

``fastmath`` stays off: the kernels must reproduce IEEE-754 results operation for
operation so that they agree exactly with the GEOS reference, and fast-math would
let LLVM reorder or contract (FMA) the arithmetic.
"""

from __future__ import annotations

from typing import Any

NJIT: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
NJIT_PARALLEL: dict[str, Any] = {**NJIT, "parallel": True}

__all__ = ["NJIT", "NJIT_PARALLEL"]

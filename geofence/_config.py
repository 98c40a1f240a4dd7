"""Numba compilation flags for every kernel, kept in one place (stumpy's habit).

``fastmath`` stays off: the kernels must reproduce IEEE-754 results operation for
operation so that they agree exactly with the GEOS reference, and fast-math would
let LLVM reorder or contract (FMA) the arithmetic.
"""

from __future__ import annotations

from typing import Any

NJIT: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
NJIT_PARALLEL: dict[str, Any] = {**NJIT, "parallel": True}
# Helpers that take arrays and allocate nothing are compiled without numba's reference
# counting: with it, every array argument is increfed and decrefed per call (atomic
# operations), which measured 35x slower on the schedule check (134 ms vs 3.8 ms per
# million calls) and dominated the evaluator. Such helpers must never return an array.
NJIT_NO_NRT: dict[str, Any] = {**NJIT, "_nrt": False}

__all__ = ["NJIT", "NJIT_NO_NRT", "NJIT_PARALLEL"]

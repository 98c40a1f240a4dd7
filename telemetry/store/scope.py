"""What a caller may see, as a filter on subjects, written once for every query.

``all`` (admin), ``unit:U`` (a supervisor: subjects of unit U), ``caseload:ID`` (an
officer: subjects whose officer is account ID), ``subject:S`` (an appellant: the one
linked subject), ``none`` (an auditor: no subject data at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ScopeKind = Literal["all", "unit", "caseload", "subject", "none"]


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    value: str | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"

    @property
    def everything(self) -> bool:
        return self.kind == "all"


ALL = Scope("all")
NONE = Scope("none")


def subject_filter(scope: Scope | None, column: str) -> tuple[str, list[Any]]:
    """A SQL condition (positional parameters) that holds for rows whose subject id in
    ``column`` the scope may see. ``None`` means unrestricted (internal callers)."""
    if scope is None or scope.kind == "all":
        return "TRUE", []
    if scope.kind == "unit":
        return f"{column} IN (SELECT id FROM subjects WHERE unit_id = %s)", [scope.value]
    if scope.kind == "caseload":
        if scope.value is None or not scope.value.isdigit():
            return "FALSE", []  # an officer without an account has no caseload
        return f"{column} IN (SELECT id FROM subjects WHERE officer_id = %s)", [int(scope.value)]
    if scope.kind == "subject":
        return f"{column} = %s", [scope.value]
    return "FALSE", []


__all__ = ["ALL", "NONE", "Scope", "ScopeKind", "subject_filter"]

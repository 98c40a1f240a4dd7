"""Masking of victim-sensitive locations and the audit of every read that returns
coordinates. The routes call these; the rule of who may see what is ``deps.may_see_victims``."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from api.deps import Principal, may_see_victims
from telemetry.store import registry

Row = dict[str, Any]
# keys of alert details that hold a location: lat, lon, from_lat, victim_lon, coordinates, ...
_LOCATION_KEY = re.compile(r"(^|_)(lat|lon|lng|latitude|longitude|coordinates|geometry|position|point|location)(_|$)")


def _mask_details(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_details(v) for k, v in value.items() if not _LOCATION_KEY.search(str(k).lower())}
    if isinstance(value, list):
        return [_mask_details(v) for v in value]
    return value


def alert_view(row: Row, principal: Principal) -> Row:
    """An alert as this caller may see it: the location members of a victim-sensitive
    alert's ``details`` are removed unless the role may see victims."""
    sensitive = bool(row.pop("victim_sensitive", False))
    if sensitive and not may_see_victims(principal):
        return {**row, "details": _mask_details(row.get("details") or {}), "masked": True}
    return {**row, "masked": False}


def zone_view(row: Row, principal: Principal) -> Row:
    """A zone as this caller may see it: a victim-sensitive zone's geometry is null."""
    if row.get("victim_sensitive") and not may_see_victims(principal):
        return {**row, "geometry": None, "masked": True}
    return {**row, "masked": False}


#: the personal fields of a subject each role may see (others are null); see docs/registry.md
PERSONAL_FIELDS = ("pinfl", "address", "phone", "has_photo")
_SEES_PERSONAL = {"supervisor": PERSONAL_FIELDS, "officer": PERSONAL_FIELDS}


def may_see_personal(principal: Principal, name: str) -> bool:
    return name in _SEES_PERSONAL.get(principal.role, ())


def subject_view(row: Row, principal: Principal) -> Row:
    """A subject as this caller may see it: personal fields its role does not need are
    null (``has_photo`` false) and listed in ``masked``."""
    hidden = [f for f in PERSONAL_FIELDS if not may_see_personal(principal, f) and row.get(f)]
    out = {**row, **{f: (False if f == "has_photo" else None) for f in hidden}, "masked": hidden}
    return out


async def audit_read(db: psycopg.AsyncConnection[Any], principal: Principal, action: str, *, rows: int,
                     masked: int = 0, subject_id: str | None = None, target: str | None = None,
                     **details: Any) -> None:
    """The audit record of a read that returned coordinates (who, what, from where, under
    which role, how many rows, how many masked)."""
    await registry.audit(db, actor=principal.name, action=action, subject_id=subject_id, target=target,
                         remote_addr=principal.remote_addr,
                         details={"role": principal.role, "rows": rows, "masked": masked, **details})


__all__ = ["PERSONAL_FIELDS", "alert_view", "audit_read", "may_see_personal", "subject_view", "zone_view"]

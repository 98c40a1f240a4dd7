"""Devices' identity, state and assignment history (async, for the API).

An assignment is [fitted_at, removed_at) of one device on one subject, with who fitted
and who removed it. ``devices.subject_id`` is the current wearer and always agrees with
the open assignment (written together here). A fix belongs to the subject whose
assignment covers the fix's *device* time (``telemetry.snapshot.RegistrySnapshot.subject_at``).

Fitting rule: a female subject's device is fitted by a female officer. The fitter is
recorded (name and account). When both the subject's and the fitter's sex are recorded
and the fitter is not female, the fitting is refused (ConflictError, a 409); when either
is not recorded, it is allowed and the record says who fitted it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.store.sql import REGISTRY_CHANNEL

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
STATES = ("in_stock", "fitted", "lost", "retired")
DEVICE_COLS = "id, kind, subject_id, serial, imei, model, firmware, profile, state, created_at"
_ASSIGNMENT_COLS = ("id, device_id, subject_id, fitted_at, fitted_by, fitter_account_id, removed_at, removed_by,"
                    " reason, created_at")
_EDITABLE = ("serial", "imei", "model", "firmware", "profile", "state")


async def _one(conn: Conn, sql: str, params: Any) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchone()


async def last_status(conn: Conn, device_id: str) -> Row | None:
    """The device's latest status report by device time (battery, charging, strap, case,
    online), or None when it has sent none."""
    return await _one(conn, "SELECT device_time, battery_pct, charging, strap, case_open, online FROM device_status"
                      " WHERE device_id = %s ORDER BY device_time DESC LIMIT 1", (device_id,))


async def get_device(conn: Conn, device_id: str, *, lock: bool = False) -> Row:
    row = await _one(conn, f"SELECT {DEVICE_COLS} FROM devices WHERE id = %s{' FOR UPDATE' if lock else ''}",
                     (device_id,))
    if row is None:
        raise NotFoundError("device", device_id)
    return row


async def update_device(conn: Conn, device_id: str, changes: Row) -> tuple[Row, Row]:
    """Change identity fields, the profile or the state; returns (before, after). A
    fitted device's state changes by fitting and removal only; ``fitted`` is not set here."""
    async with conn.transaction():
        before = await get_device(conn, device_id, lock=True)
        merged = {**before, **{k: v for k, v in changes.items() if k in _EDITABLE}}
        if merged["state"] != before["state"] and "fitted" in (merged["state"], before["state"]):
            raise InvalidInputError("state", "a device becomes fitted or stops being fitted by "
                                             "POST /devices/{id}/fit and /devices/{id}/remove")
        try:
            after = await _one(
                conn, "UPDATE devices SET serial = %(serial)s, imei = %(imei)s, model = %(model)s,"
                      " firmware = %(firmware)s, profile = %(profile)s, state = %(state)s WHERE id = %(id)s"
                      f" RETURNING {DEVICE_COLS}", merged)
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError("device", device_id, "another device has this serial or IMEI") from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError("device profile", str(merged["profile"])) from exc
        assert after is not None
        await conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")
    return before, after


async def fit(conn: Conn, device_id: str, subject_id: str, *, at: datetime | None, by: str,
              fitter_account_id: int | None, reason: str | None) -> Row:
    """Fit the device on the subject from ``at`` (device time; default now). A device
    worn by someone else is removed from them at the same instant. Returns the new
    assignment with ``before`` (the device row before)."""
    async with conn.transaction():
        device = await get_device(conn, device_id, lock=True)
        if device["kind"] != "ankle_monitor":
            raise InvalidInputError("device_id", "only an ankle monitor is fitted (a victim's phone is linked)")
        if device["state"] in ("lost", "retired"):
            raise ConflictError("device", device_id, f"is {device['state']}: it cannot be fitted")
        subject = await _one(conn, "SELECT id, sex FROM subjects WHERE id = %s", (subject_id,))
        if subject is None:
            raise NotFoundError("subject", subject_id)
        fitter_sex = None
        if fitter_account_id is not None:
            fitter = await _one(conn, "SELECT sex FROM accounts WHERE id = %s", (fitter_account_id,))
            if fitter is None:
                raise NotFoundError("account", str(fitter_account_id))
            fitter_sex = fitter["sex"]
        if subject["sex"] == "F" and fitter_sex is not None and fitter_sex != "F":
            raise ConflictError("device", device_id, "a female subject's device is fitted by a female officer")
        when = await _one(conn, "SELECT coalesce(%s::timestamptz, now()) AS t", (at,))
        assert when is not None
        t = when["t"]
        last = await _one(conn, "SELECT max(removed_at) AS t FROM device_assignments WHERE device_id = %s",
                          (device_id,))
        if last and last["t"] is not None and t < last["t"]:
            raise ConflictError("device", device_id, f"was worn by someone until {last['t'].isoformat()}: "
                                                     "a fitting cannot start before that")
        current = await _one(conn, "SELECT id, subject_id, fitted_at FROM device_assignments"
                                   " WHERE device_id = %s AND removed_at IS NULL", (device_id,))
        if current is not None:
            if current["fitted_at"] is not None and t <= current["fitted_at"]:
                raise ConflictError("device", device_id, "a fitting must start after the current one")
            if current["subject_id"] == subject_id:
                raise ConflictError("device", device_id, f"is already fitted on {subject_id}")
            await conn.execute("UPDATE device_assignments SET removed_at = %s, removed_by = %s WHERE id = %s",
                               (t, by, current["id"]))
        row = await _one(
            conn, "INSERT INTO device_assignments (device_id, subject_id, fitted_at, fitted_by, fitter_account_id,"
                  f" reason) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ASSIGNMENT_COLS}",
            (device_id, subject_id, t, by, fitter_account_id, reason))
        assert row is not None
        await conn.execute("UPDATE devices SET subject_id = %s, state = 'fitted' WHERE id = %s", (subject_id, device_id))
        await conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")
    row["before"] = device
    return row


async def remove(conn: Conn, device_id: str, *, at: datetime | None, by: str, reason: str | None,
                 state: str = "in_stock") -> Row:
    """End the device's current assignment at ``at`` (default now); the device goes to
    ``state`` (in_stock, lost, retired) and its open ``remove_device`` task is done."""
    if state == "fitted":
        raise InvalidInputError("state", "a removed device is in_stock, lost or retired")
    async with conn.transaction():
        device = await get_device(conn, device_id, lock=True)
        current = await _one(conn, "SELECT id, fitted_at FROM device_assignments"
                                   " WHERE device_id = %s AND removed_at IS NULL", (device_id,))
        if current is None:
            raise ConflictError("device", device_id, "is not fitted")
        when = await _one(conn, "SELECT coalesce(%s::timestamptz, now()) AS t", (at,))
        assert when is not None
        if current["fitted_at"] is not None and when["t"] <= current["fitted_at"]:
            raise InvalidInputError("at", "must be after the fitting")
        row = await _one(conn, "UPDATE device_assignments SET removed_at = %s, removed_by = %s,"
                               " reason = coalesce(reason || '; ', '') || coalesce(%s, 'removed')"
                               f" WHERE id = %s RETURNING {_ASSIGNMENT_COLS}", (when["t"], by, reason, current["id"]))
        assert row is not None
        await conn.execute("UPDATE devices SET subject_id = NULL, state = %s WHERE id = %s", (state, device_id))
        await conn.execute("UPDATE registry_tasks SET done_at = now(), done_by = %s"
                           " WHERE device_id = %s AND kind = 'remove_device' AND done_at IS NULL", (by, device_id))
        await conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")
    row["before"] = device
    return row


async def assignments(conn: Conn, device_id: str) -> list[Row]:
    await get_device(conn, device_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_ASSIGNMENT_COLS} FROM device_assignments WHERE device_id = %s ORDER BY id",
                          (device_id,))
        return await cur.fetchall()


__all__ = ["DEVICE_COLS", "STATES", "assignments", "fit", "get_device", "remove", "update_device"]

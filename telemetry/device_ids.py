"""What may name a device: one rule for the registry (the API) and the broker's credential
store (the CLI).

A device id is also the device's broker login and a topic level, so besides the wire
format's characters it must not contain ``:`` (Mosquitto's password file is
``user:hash``), must not be ``.`` or ``..``, and must not start with ``nazorat-`` (any
case): the engine's service accounts log in as ``nazorat-engine[-worker]``, and a device
with such an id would share, and could overwrite, their credentials.
"""

from __future__ import annotations

import re

RESERVED_DEVICE_PREFIX = "nazorat-"
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def device_id_problem(device_id: str) -> str | None:
    """Why ``device_id`` cannot name a device, or None when it can."""
    if not _DEVICE_ID.match(device_id):
        return "a device id is 1-64 letters, digits, '_', '.' or '-'"
    if set(device_id) == {"."}:
        return "'.' and '..' are not device ids"
    if device_id.lower().startswith(RESERVED_DEVICE_PREFIX):
        return f"ids starting with {RESERVED_DEVICE_PREFIX!r} are reserved for the engine's service accounts"
    return None


__all__ = ["RESERVED_DEVICE_PREFIX", "device_id_problem"]

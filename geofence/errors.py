"""Errors raised by the geofence package. Each builds its own message and carries context."""

from __future__ import annotations


class GeofenceError(Exception):
    """Base class for geofence errors."""


class ZoneGeometryError(GeofenceError):
    """A zone's geometry is invalid or unsupported."""

    def __init__(self, zone_id: str, reason: str) -> None:
        self.zone_id = zone_id
        self.reason = reason
        super().__init__(f"zone {zone_id!r}: {reason}")


class EvaluationInputError(GeofenceError):
    """Arrays handed to the evaluator have the wrong dtype, shape or values."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


__all__ = ["EvaluationInputError", "GeofenceError", "ZoneGeometryError"]

"""Errors of the telemetry package: decoding, registry and storage."""

from __future__ import annotations


class TelemetryError(Exception):
    """Base class."""


class DecodeError(TelemetryError):
    """A message could not be decoded; ``reason`` is what goes to the dead-letter record."""

    def __init__(self, reason: str, *, topic: str | None = None) -> None:
        self.reason = reason
        self.topic = topic
        super().__init__(reason if topic is None else f"{topic}: {reason}")


class NotFoundError(TelemetryError):
    def __init__(self, entity: str, key: str) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {key!r} not found")


class ConflictError(TelemetryError):
    def __init__(self, entity: str, key: str, reason: str) -> None:
        self.entity = entity
        self.key = key
        self.reason = reason
        super().__init__(f"{entity} {key!r}: {reason}")


class InvalidInputError(TelemetryError):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class StorageError(TelemetryError):
    """The database could not be reached or refused a write; the batch may be retried."""


__all__ = ["ConflictError", "DecodeError", "InvalidInputError", "NotFoundError", "StorageError", "TelemetryError"]

"""Errors of the ingest adapter."""

from __future__ import annotations


class IngestError(Exception):
    """Base class."""


class BrokerUrlError(IngestError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"bad MQTT URL {url!r}: {reason}")


__all__ = ["BrokerUrlError", "IngestError"]

"""Errors of the ingest adapter."""

from __future__ import annotations


class IngestError(Exception):
    """Base class."""


class BrokerUrlError(IngestError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"bad broker URL {url!r}: {reason}")


class BrokerConnectionError(IngestError):
    """The AMQP connection to the broker is lost or refused (the MQTT side raises
    ``aiomqtt.MqttError``); the worker reconnects, to the next node."""


__all__ = ["BrokerConnectionError", "BrokerUrlError", "IngestError"]

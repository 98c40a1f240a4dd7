"""Errors of the embedded services and the broker's credential store."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class."""


class AccountNameError(ServiceError, ValueError):
    """A device id or service account name the credential store refuses."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"refused MQTT account {name!r}: {reason}")


__all__ = ["AccountNameError", "ServiceError"]

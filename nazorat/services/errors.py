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


class DatabaseSetupError(ServiceError):
    """The embedded PostgreSQL could not be initialised or secured."""

    def __init__(self, data_dir: str, reason: str) -> None:
        self.data_dir = data_dir
        self.reason = reason
        super().__init__(f"embedded PostgreSQL in {data_dir}: {reason}")


class MigrationPrivilegeError(ServiceError):
    """Migrations are pending but the URL's role may not apply them (the run-time role)."""

    def __init__(self, role: str, pending: list[str]) -> None:
        self.role = role
        self.pending = pending
        super().__init__(f"migrations {', '.join(pending)} are pending and role {role!r} may not apply them:"
                         " run `nazorat db upgrade` with the owner role's URL")


__all__ = ["AccountNameError", "DatabaseSetupError", "MigrationPrivilegeError", "ServiceError"]

"""Local infrastructure the project starts when none is configured: PostgreSQL and an MQTT broker."""

from nazorat.services.broker import AmqttBroker, MosquittoBroker, start_broker
from nazorat.services.credentials import ENGINE_USER, CredentialStore, check_device_id, check_service_account
from nazorat.services.errors import AccountNameError, DatabaseSetupError, MigrationPrivilegeError, ServiceError
from nazorat.services.net import free_port, wait_for_port
from nazorat.services.postgres import EmbeddedPostgres

__all__ = [
    "ENGINE_USER",
    "AccountNameError",
    "AmqttBroker",
    "CredentialStore",
    "DatabaseSetupError",
    "EmbeddedPostgres",
    "MigrationPrivilegeError",
    "MosquittoBroker",
    "ServiceError",
    "check_device_id",
    "check_service_account",
    "free_port",
    "start_broker",
    "wait_for_port",
]

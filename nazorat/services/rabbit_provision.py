"""``nazorat broker provision``: the RabbitMQ topology, the engine's account and the
devices' accounts, declared idempotently through the management HTTP API (any node of
the cluster; the next one is tried when one does not answer).

Topology (``ingest.amqp``): the consistent-hash exchange ``nazorat.ingest`` bound to
``amq.topic`` for the devices' topics, and N partitions ``nazorat.ingest.<p>``: durable
quorum queues (replicated on every node, a majority must hold a message before the
publisher's PUBACK) with ``x-single-active-consumer``, each bound with weight 1. Run again
with the same N it changes nothing; a different N is refused (``ProvisionError``):
re-hashing moves devices between partitions, and during the move a device's fixes
could be consumed out of order (drain the queues and stop the workers first, then use
``--repartition``).

Accounts (passwords generated here, shown once, sent to RabbitMQ already hashed the way
it stores them: salted SHA-256):

- devices: username = device id; no configure or read rights, write only on
  ``amq.topic``, and a topic permission that lets it publish only its own topics,
  ``^nazorat\\.v1\\.devices\\.{username}\\.(fixes|fixes\\.mp|status)$`` (RabbitMQ refuses any
  other routing key by closing the connection). ``{client_id}`` is never used in a
  pattern: RabbitMQ 3.10 does not escape it (a client id ``.+`` wrote into another
  device's topic). Device ids with ``.`` are refused: RabbitMQ maps MQTT's ``/`` to ``.``,
  so a dot inside an id would make another topic.
- ``nazorat-engine`` (and ``nazorat-engine-<worker>``): read on the partition queues
  only, write only on ``amq.topic`` and only ``nazorat.v1.alerts.#`` (the alert outbox),
  no configure right (it declares nothing), no management tag.

Residual risk, stated in deploy/rabbitmq.md: RabbitMQ 3.10 does not bind MQTT client ids
to usernames, so a device with valid credentials that connects with another device's
client id disconnects that device (a denial of service; no fix is lost — the victim's
unacknowledged publishes are resent by it — and nothing can be published under the
other id). The engine does not use MQTT, so its session cannot be taken over.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ingest.amqp import BINDING_KEYS, INGEST_EXCHANGE, QUEUE_PREFIX, TOPIC_EXCHANGE, partition_queue
from nazorat.services.credentials import ENGINE_USER, check_device_id, check_service_account
from nazorat.services.errors import AccountNameError, ServiceError

_VHOST = "%2F"
DEVICE_TOPIC_WRITE = r"^nazorat\.v1\.devices\.{username}\.(fixes|fixes\.mp|status)$"
ENGINE_TOPIC_WRITE = r"^nazorat\.v1\.alerts\..+$"  # any subject id (a refused publish would close the channel)
ENGINE_READ = r"^nazorat\.ingest\.[0-9]+$"
_QUEUE_RE = re.compile(r"^nazorat\.ingest\.[0-9]+$")


class ProvisionError(ServiceError):
    """The cluster refused a step, or no node's HTTP API answered."""


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def check_rabbit_device_id(device_id: str) -> str:
    check_device_id(device_id)
    if "." in device_id:
        raise AccountNameError(device_id, "a '.' cannot be part of a device id on RabbitMQ (topic levels become '.')")
    return device_id


@dataclass
class RabbitAdmin:
    """A small client of the management HTTP API over the cluster's nodes."""

    http_urls: list[str]
    user: str
    password: str
    timeout_s: float = 15.0
    _current: int = field(default=0, init=False)

    def call(self, method: str, path: str, body: Any = None, *, ok_missing: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        errors = []
        for i in range(len(self.http_urls)):
            base = self.http_urls[(self._current + i) % len(self.http_urls)].rstrip("/")
            req = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Authorization": f"Basic {auth}",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    self._current = (self._current + i) % len(self.http_urls)
                    text = resp.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                if exc.code == 404 and ok_missing:
                    return None
                detail = exc.read().decode(errors="replace")[:500]
                raise ProvisionError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
            except OSError as exc:  # this node is down: the next one
                errors.append(f"{base}: {exc}")
        raise ProvisionError(f"no RabbitMQ management API answered: {'; '.join(errors)}")

    # --- pieces ---------------------------------------------------------------------------
    def user_exists(self, name: str) -> bool:
        return self.call("GET", f"/api/users/{urllib.parse.quote(name, safe='')}", ok_missing=True) is not None

    def put_user(self, name: str, password: str, tags: str = "") -> None:
        self.call("PUT", f"/api/users/{urllib.parse.quote(name, safe='')}",
                  {"password_hash": rabbit_password_hash(password),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags})

    def put_permissions(self, name: str, configure: str, write: str, read: str) -> None:
        self.call("PUT", f"/api/permissions/{_VHOST}/{urllib.parse.quote(name, safe='')}",
                  {"configure": configure, "write": write, "read": read})

    def put_topic_permission(self, name: str, write: str, read: str) -> None:
        self.call("PUT", f"/api/topic-permissions/{_VHOST}/{urllib.parse.quote(name, safe='')}",
                  {"exchange": TOPIC_EXCHANGE, "write": write, "read": read})

    def partition_queues(self) -> list[str]:
        queues = self.call("GET", f"/api/queues/{_VHOST}?columns=name") or []
        return sorted((q["name"] for q in queues if _QUEUE_RE.match(q["name"])),
                      key=lambda n: int(n[len(QUEUE_PREFIX):]))


@dataclass
class ProvisionResult:
    partitions: int
    created_queues: list[str]
    passwords: dict[str, str]  # accounts created or rotated now (shown once)


def provision(admin: RabbitAdmin, *, partitions: int, devices: list[str] | None = None,
              engine_accounts: tuple[str, ...] = (ENGINE_USER,), rotate: bool = False, repartition: bool = False,
              leader_locator: str = "balanced") -> ProvisionResult:
    """Declare topology and accounts (idempotent). New accounts (or all, with ``rotate``)
    get a password, returned once. Names are checked before anything is written."""
    if partitions < 1:
        raise ProvisionError("at least one partition")
    devices = devices or []
    for d in devices:
        check_rabbit_device_id(d)
    for e in engine_accounts:
        check_service_account(e)
    existing = admin.partition_queues()
    if existing and len(existing) != partitions and not repartition:
        raise ProvisionError(f"the cluster has {len(existing)} partitions, not {partitions}: re-hashing moves devices"
                             " between partitions (drain the queues, stop the workers, then --repartition)")
    admin.call("PUT", f"/api/exchanges/{_VHOST}/{INGEST_EXCHANGE}",
               {"type": "x-consistent-hash", "durable": True, "auto_delete": False, "internal": False,
                "arguments": {}})
    for key in BINDING_KEYS:
        admin.call("POST", f"/api/bindings/{_VHOST}/e/{TOPIC_EXCHANGE}/e/{INGEST_EXCHANGE}",
                   {"routing_key": key, "arguments": {}})
    created = []
    for p in range(partitions):
        name = partition_queue(p)
        if name not in existing:
            admin.call("PUT", f"/api/queues/{_VHOST}/{name}",
                       {"durable": True, "auto_delete": False,
                        "arguments": {"x-queue-type": "quorum", "x-single-active-consumer": True,
                                      "x-queue-leader-locator": leader_locator}})
            created.append(name)
        # the weight: equal shares of the hash ring
        admin.call("POST", f"/api/bindings/{_VHOST}/e/{INGEST_EXCHANGE}/q/{name}", {"routing_key": "1",
                                                                                  "arguments": {}})
    passwords: dict[str, str] = {}
    for account in engine_accounts:
        if rotate or not admin.user_exists(account):
            passwords[account] = secrets.token_urlsafe(24)
            admin.put_user(account, passwords[account])
        admin.put_permissions(account, configure="^$", write=rf"^{re.escape(TOPIC_EXCHANGE)}$", read=ENGINE_READ)
        admin.put_topic_permission(account, write=ENGINE_TOPIC_WRITE, read="^$")
    for device in devices:
        if rotate or not admin.user_exists(device):
            passwords[device] = secrets.token_urlsafe(18)
            admin.put_user(device, passwords[device])
        admin.put_permissions(device, configure="^$", write=rf"^{re.escape(TOPIC_EXCHANGE)}$", read="^$")
        admin.put_topic_permission(device, write=DEVICE_TOPIC_WRITE, read="^$")
    return ProvisionResult(partitions, created, passwords)


__all__ = ["DEVICE_TOPIC_WRITE", "ENGINE_READ", "ENGINE_TOPIC_WRITE", "ProvisionError", "ProvisionResult",
           "RabbitAdmin", "check_rabbit_device_id", "provision", "rabbit_password_hash"]

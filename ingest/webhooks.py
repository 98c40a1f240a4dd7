"""Signed webhooks out: the delivery loop over the transactional outbox (migration 0022).

A delivery row is written in the same transaction as its alert (a trigger on the alert
outbox of migration 0014), so nothing is lost between an alert and its webhook. This loop
leases due deliveries, POSTs each one, and records the attempt: 2xx is delivered; anything
else (an error status, a refused connection, a timeout) is retried with exponential
backoff and jitter (``backoff_base_s * 2**(attempt-1)``, at most ``backoff_max_s``) until the
subscription's ``max_attempts``, then the delivery is ``dead`` and shown as such in
``GET /webhooks/{id}/deliveries?status=dead``. A loop (or engine) that dies after sending
and before recording sends that delivery again once its lease ends: at-least-once, and
the receiver deduplicates on ``Idempotency-Key`` (the event id).

Every request is signed; nothing leaves unsigned:

    X-Nazorat-Timestamp: 1764151200
    X-Nazorat-Signature: v1=<hex HMAC-SHA256(secret, "1764151200." + body)>
    Idempotency-Key: alert-42
    X-Nazorat-Event: alert.exclusion_zone_entered

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
constant time, and refuses timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time

import httpx

from ingest.connection import LazyConnection
from telemetry.errors import StorageError
from telemetry.store import webhooks as store

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Nazorat-Signature"
TIMESTAMP_HEADER = "X-Nazorat-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300.0,
           now: float | None = None) -> bool:
    """What a receiver does (documented in docs/interop.md; the tests' receiver uses it)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class WebhookDispatcher:
    def __init__(self, *, database_url: str, poll_s: float = 1.0, batch: int = 50, lease_s: float = 60.0,
                 timeout_s: float = 10.0, backoff_base_s: float = 2.0, backoff_max_s: float = 3600.0) -> None:
        self._url = database_url
        self._poll_s = poll_s
        self._batch = batch
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._conn = LazyConnection(database_url, "webhook outbox")

    def backoff_s(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (jittered between 50 % and 100 %)."""
        return float(min(self._backoff_max_s, self._backoff_base_s * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``. A database outage is waited out here (logged); anything
        else propagates to the supervisor, which restarts the loop."""
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False) as client:
                while not stop.is_set():
                    try:
                        due = await asyncio.to_thread(self._conn.run, lambda c: store.claim_due(c, self._batch,
                                                                                         self._lease_s))
                    except StorageError as exc:
                        log.warning("%s; retrying", exc)
                        due = []
                    for d in due:
                        await self._deliver(client, d)
                    if len(due) < self._batch:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=self._poll_s)
        finally:
            await asyncio.to_thread(self._conn.close)

    async def _deliver(self, client: httpx.AsyncClient, d: store.Due) -> None:
        body = json.dumps(d.payload, separators=(",", ":"), default=str).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(d.secret, ts,
                                                                                                         body),
                   "Idempotency-Key": d.event_id, "X-Nazorat-Event": str(d.payload.get("type", "")),
                   "User-Agent": "nazorat-webhooks/1"}
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(d.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = round((time.perf_counter() - started) * 1000)
        retry_in = self.backoff_s(d.attempts + 1)
        try:
            outcome = await asyncio.to_thread(self._conn.run, lambda c: store.record_attempt(
                c, d, status_code=status, error=error, duration_ms=duration_ms, retry_in_s=retry_in))
        except StorageError as exc:  # the lease runs out and the delivery is sent again
            log.warning("webhook attempt not recorded (%s); delivery %d will be retried", exc, d.delivery_id)
            return
        if outcome == "dead":
            log.warning("webhook delivery %d (%s to %s) is dead after %d attempts: %s", d.delivery_id, d.event_id,
                        d.subscription, d.attempts + 1, error)


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookDispatcher", "sign", "verify"]

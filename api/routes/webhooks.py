"""Webhook subscriptions and their delivery log (admins only; docs/interop.md)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, DbConn
from api.errors import responses
from api.schemas import BIGINT_MAX
from telemetry.store import registry
from telemetry.store import webhooks as store

router = APIRouter(prefix="/webhooks", tags=["integrations"])
EVENT_PATTERN = r"^alert\.(\*|[a-z_]{1,64})$"
Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "regional-centre", "url": "https://integration.example/nazorat/hook",
         "event_types": ["alert.exclusion_zone_entered", "alert.strap_opened"], "max_attempts": 10}]})
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(max_length=2000, pattern=r"^https?://[!-~]+$", description="http(s), printable ASCII")
    event_types: list[Annotated[str, Field(pattern=EVENT_PATTERN)]] = Field(
        min_length=1, max_length=50, description="'alert.<kind>' or 'alert.*'")
    max_attempts: int = Field(10, ge=1, le=50, description="attempts before a delivery is dead")


class WebhookPublic(BaseModel):
    id: int
    name: str
    url: str
    event_types: list[str]
    max_attempts: int
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="the HMAC-SHA256 key of X-Nazorat-Signature: shown once")


class DeliveryPublic(BaseModel):
    id: int
    subscription_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptPublic(BaseModel):
    id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@router.post("", status_code=201, response_model=WebhookCreated,
             responses=responses(401, 403, 404, 409, 422, 503))
async def create_webhook(body: WebhookCreate, db: DbConn, user: Admin) -> dict[str, Any]:
    """Subscribe an integration; every later alert of these types is delivered, signed."""
    secret = secrets.token_urlsafe(32)
    row = await store.create_subscription(db, name=body.name, url=body.url, event_types=body.event_types,
                                          secret=secret, max_attempts=body.max_attempts, by=user.name)
    await registry.audit(db, actor=user.name, action="webhook.create", target=str(row["id"]),
                         remote_addr=user.remote_addr, details={"url": body.url, "event_types": body.event_types})
    return {**row, "secret": secret}


@router.get("", response_model=list[WebhookPublic], responses=responses(401, 403, 422, 503))
async def list_webhooks(db: DbConn, _user: Admin) -> list[dict[str, Any]]:
    return await store.list_subscriptions(db)


@router.delete("/{webhook_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def deactivate_webhook(webhook_id: Id, db: DbConn, user: Admin) -> Response:
    """Stop new deliveries (the log is kept; pending ones are still sent)."""
    await store.deactivate(db, webhook_id)
    await registry.audit(db, actor=user.name, action="webhook.deactivate", target=str(webhook_id),
                         remote_addr=user.remote_addr)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryPublic],
            responses=responses(401, 403, 404, 422, 503))
async def list_deliveries(webhook_id: Id, db: DbConn, _user: Admin,
                          status: Literal["pending", "delivered", "dead"] | None = None,
                          limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    """The delivery log, newest first; ``status=dead`` lists what gave up."""
    return await store.deliveries(db, webhook_id, status, limit)


@router.get("/{webhook_id}/deliveries/{delivery_id}/attempts", response_model=list[AttemptPublic],
            responses=responses(401, 403, 404, 422, 503))
async def list_attempts(webhook_id: Id, delivery_id: Id, db: DbConn, _user: Admin) -> list[dict[str, Any]]:
    return await store.attempts(db, webhook_id, delivery_id)

"""Off-the-shelf apps: OwnTracks bindings and per-device HTTP secrets (docs/interop.md).

Admins and supervisors (within their unit) manage them; a victim's phone only by the roles
that may see victims. Secrets and passwords are returned once and stored as hashes; every
change is audited.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DbConn, Principal, RegistryWriter, may_see_victims
from api.errors import responses
from api.schemas import DEVICE_ID_PATTERN
from telemetry.errors import NotFoundError
from telemetry.store import interop as store
from telemetry.store import registry

router = APIRouter(tags=["integrations"])
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
OtName = Annotated[str, Path(pattern=NAME_PATTERN, description="an OwnTracks user or device name")]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, description="a registered device's id")]
_WRITE = (401, 403, 404, 409, 422, 503)


class BindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "aziza", "device": "phone", "device_id": "victim-7", "push_zones": True}]})
    user: str = Field(pattern=NAME_PATTERN, description="OwnTracks user (the topic's {user}, the MQTT login)")
    device: str = Field(pattern=NAME_PATTERN, description="OwnTracks device id (the topic's {device})")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="the registered device it reports for")
    push_zones: bool = Field(False, description="send setWaypoints with the zones the role rules allow")


class BindingPublic(BaseModel):
    ot_user: str
    ot_device: str
    device_id: str
    push_zones: bool
    created_by: str
    created_at: datetime


class BindingCreated(BindingPublic):
    password: str = Field(description="HTTP-mode Basic-auth password: shown once, stored hashed")
    topic: str


class HttpSecret(BaseModel):
    device_id: str
    secret: str = Field(description="shown once, stored hashed")
    path: str = Field(description="the URL path to give Traccar Client: http://HOST:5055/t/{secret}")


async def _in_scope(db: DbConn, user: Principal, device_id: str) -> None:
    await store.device_in_scope(db, device_id, user.scope, victims=may_see_victims(user))


@router.post("/owntracks/bindings", status_code=201, response_model=BindingCreated, responses=responses(*_WRITE))
async def create_binding(body: BindingCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Bind an OwnTracks ``{user}/{device}`` to a registered device. Its MQTT login is made
    with ``nazorat devices credentials {user}`` (the broker lets it publish only under
    ``owntracks/{user}/#``); the password returned here is for HTTP mode."""
    await _in_scope(db, user, body.device_id)
    password = secrets.token_urlsafe(24)
    row = await store.create_binding(db, ot_user=body.user, ot_device=body.device, device_id=body.device_id,
                                     secret=password, push_zones=body.push_zones, by=user.name)
    await registry.audit(db, actor=user.name, action="owntracks.bind", target=body.device_id,
                         remote_addr=user.remote_addr, details={"user": body.user, "device": body.device,
                                                                "push_zones": body.push_zones})
    return {**row, "password": password, "topic": f"owntracks/{body.user}/{body.device}"}


@router.get("/owntracks/bindings", response_model=list[BindingPublic], responses=responses(401, 403, 422, 503))
async def list_bindings(db: DbConn, user: RegistryWriter) -> list[dict[str, Any]]:
    rows = await store.list_bindings(db, None)
    out = []
    for row in rows:
        try:
            await _in_scope(db, user, row["device_id"])
        except NotFoundError:  # out of the caller's scope: left out
            continue
        out.append(row)
    return out


@router.delete("/owntracks/bindings/{ot_user}/{ot_device}", status_code=204, responses=responses(*_WRITE))
async def delete_binding(ot_user: OtName, ot_device: OtName, db: DbConn, user: RegistryWriter) -> Response:
    device_id = await store.binding_device(db, ot_user, ot_device)
    if device_id is not None:
        await _in_scope(db, user, device_id)
    await store.delete_binding(db, ot_user, ot_device)
    await registry.audit(db, actor=user.name, action="owntracks.unbind", target=device_id,
                         remote_addr=user.remote_addr, details={"user": ot_user, "device": ot_device})
    return Response(status_code=204)


@router.post("/devices/{device_id}/http-secret", status_code=201, response_model=HttpSecret,
             responses=responses(*_WRITE))
async def rotate_http_secret(device_id: DeviceId, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Create or rotate the device's secret for the OsmAnd / Traccar Client protocol."""
    await _in_scope(db, user, device_id)
    secret = secrets.token_urlsafe(24)
    await store.set_http_secret(db, device_id, secret, user.name)
    await registry.audit(db, actor=user.name, action="device.http_secret", target=device_id,
                         remote_addr=user.remote_addr)
    return {"device_id": device_id, "secret": secret, "path": f"/t/{secret}"}

"""One device: its record, its state, fitting and removal, and its assignment history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import DbConn, Officer, Principal, RegistryReader, RegistryWriter
from api.errors import responses
from api.routes.registry import audited
from api.schemas import DEVICE_ID_PATTERN, DeviceDetail, DevicePublic
from api.schemas_registry import AssignmentPublic, DeviceFit, DeviceRemove, DeviceUpdate
from telemetry.errors import NotFoundError
from telemetry.store import devices as device_store
from telemetry.store import registry

router = APIRouter(prefix="/devices", tags=["devices"])
DeviceIdPath = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, description="a device's id")]
_ONE = (401, 403, 404, 422, 503)
_WRITE = (401, 403, 404, 409, 413, 422, 503)
_NULLABLE = frozenset({"serial", "imei", "model", "firmware"})  # null clears these; profile and state stay


async def _visible(db: DbConn, user: Principal, device_id: str) -> dict[str, Any]:
    """The device, when the caller may see it: everything for admin; otherwise a device
    in stock, or one whose current or earlier wearer is in the caller's scope (else 404)."""
    device = await device_store.get_device(db, device_id)
    if user.scope.everything:
        return device
    wearers = {a["subject_id"] for a in await device_store.assignments(db, device_id)}
    if device["subject_id"] is not None:
        wearers.add(device["subject_id"])
    if not wearers:
        return device
    for subject_id in wearers:
        try:
            await registry.get_subject(db, subject_id, scope=user.scope)
            return device
        except NotFoundError:
            continue
    raise NotFoundError("device", device_id)


@router.get("/{device_id}", response_model=DeviceDetail, responses=responses(*_ONE))
async def get_device(device_id: DeviceIdPath, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    """The device and its latest status report (battery, charging, strap, case). Officers
    and supervisors of a wearer's caseload only: an appellant gets 404."""
    device = await _visible(db, user, device_id)
    return {**device, "last_status": await device_store.last_status(db, device_id)}


@router.patch("/{device_id}", response_model=DevicePublic, responses=responses(*_WRITE))
async def update_device(device_id: DeviceIdPath, body: DeviceUpdate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Serial, IMEI (15 digits, Luhn-checked), model, firmware, profile, or the state of a
    device not fitted (``in_stock``, ``lost``, ``retired``)."""
    await _visible(db, user, device_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in _NULLABLE}
    before, after = await device_store.update_device(db, device_id, changes)
    await registry.audit(db, actor=user.name, action="device.update", subject_id=after["subject_id"], target=device_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(after)})
    return after


@router.post("/{device_id}/fit", status_code=201, response_model=AssignmentPublic, responses=responses(*_WRITE))
async def fit_device(device_id: DeviceIdPath, body: DeviceFit, db: DbConn, user: Officer) -> dict[str, Any]:
    """Fit the device on a subject from ``at`` (device time). Fixes stamped from then on are
    the subject's; a device worn by someone else is removed from them at that instant. The
    fitter is recorded; a female subject's device must be fitted by a female officer: 409
    when both sexes are recorded and the fitter is not female."""
    await registry.get_subject(db, body.subject_id, scope=user.scope)
    await _visible(db, user, device_id)
    row = await device_store.fit(db, device_id, body.subject_id, at=body.at, by=user.name,
                                 fitter_account_id=body.fitted_by_account_id or user.account_id, reason=body.reason)
    before = row.pop("before")
    await registry.audit(db, actor=user.name, action="device.fit", subject_id=body.subject_id, target=device_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(row)})
    return row


@router.post("/{device_id}/remove", response_model=AssignmentPublic, responses=responses(*_WRITE))
async def remove_device(device_id: DeviceIdPath, body: DeviceRemove, db: DbConn, user: Officer) -> dict[str, Any]:
    """End the device's current fitting at ``at`` (device time); the device goes to
    ``state``, and its open "remove device" task is done."""
    await _visible(db, user, device_id)
    row = await device_store.remove(db, device_id, at=body.at, by=user.name, reason=body.reason, state=body.state)
    before = row.pop("before")
    await registry.audit(db, actor=user.name, action="device.remove", subject_id=row["subject_id"], target=device_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(row)})
    return row


@router.get("/{device_id}/assignments", response_model=list[AssignmentPublic], responses=responses(*_ONE))
async def device_assignments(device_id: DeviceIdPath, db: DbConn, user: RegistryReader) -> list[dict[str, Any]]:
    """Who wore the device when: fitted/removed, by whom, oldest first."""
    await _visible(db, user, device_id)
    return await device_store.assignments(db, device_id)

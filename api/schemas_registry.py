"""Bodies of the registry's routes beyond create/list: supervision terms and their
amendments, tasks, device fitting and history, zone versions (Create / Update / Public)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import EntityId, Imei, Instant, OrderType, ScheduleWindow, Text

TermStatus = Literal["planned", "active", "suspended", "ended"]
_OBJ = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AuthorisedAbsenceCondition(_Strict):
    starts_at: Instant
    ends_at: Instant
    reason: str = Text(500, 1)


class TermConditions(_Strict):
    """What the order imposes (recorded with the term; zones and absences are enforced
    through their own resources, which these name)."""

    reporting_interval_s: int | None = Field(None, ge=10, le=86_400)
    zone_ids: list[EntityId] = Field(default_factory=list, max_length=100)
    curfew: list[ScheduleWindow] = Field(default_factory=list, max_length=100)
    victim_device_ids: list[EntityId] = Field(default_factory=list, max_length=20)
    authorised_absences: list[AuthorisedAbsenceCondition] = Field(default_factory=list, max_length=100)
    notes: str | None = Text(2000, default=None)


def _window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")


class TermCreate(_Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "order_type": "house_arrest", "court": "Tashkent City Criminal Court", "order_number": "1-234/2026",
        "order_date": "2026-11-20", "starts_at": "2026-12-01T00:00:00+05:00", "ends_at": "2027-06-01T00:00:00+05:00",
        "conditions": {"reporting_interval_s": 300, "zone_ids": ["home-S-1001"]}, "status": "active"}]})
    order_type: OrderType
    court: str | None = Text(200, default=None)
    order_number: str | None = Text(64, default=None)
    order_date: date | None = Field(None, ge=date(1970, 1, 1), le=date(2999, 12, 31))
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    conditions: TermConditions = Field(default_factory=lambda: TermConditions.model_validate({}))
    status: TermStatus = "active"
    reason: str | None = Text(500, default=None)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _window(self.starts_at, self.ends_at)
        return self


class TermAmend(_Strict):
    """An amendment: the fields to change and why. ``status``: suspend (``suspended``),
    resume (``active``) or end (``ended``, final: opens the "remove device" tasks)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"status": "suspended", "reason": "hospitalised, court ruling 2026-12-10"},
        {"ends_at": "2027-09-01T00:00:00+05:00", "reason": "term extended on appeal"}]})
    order_type: OrderType | None = None
    court: str | None = Text(200, default=None)
    order_number: str | None = Text(64, default=None)
    order_date: date | None = Field(None, ge=date(1970, 1, 1), le=date(2999, 12, 31))
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    conditions: TermConditions | None = None
    status: TermStatus | None = None
    reason: str = Text(500, 1)


class TermPublic(BaseModel):
    id: int
    subject_id: str
    order_type: str
    court: str | None
    order_number: str | None
    order_date: date | None
    starts_at: datetime | None
    ends_at: datetime | None
    conditions: _OBJ
    status: str
    ended_at: datetime | None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class TermAmendmentPublic(BaseModel):
    id: int
    term_id: int
    version: int
    change: str
    reason: str | None
    before: _OBJ | None
    after: _OBJ
    amended_by: str
    amended_at: datetime


class TaskPublic(BaseModel):
    id: int
    kind: str
    subject_id: str | None
    device_id: str | None
    term_id: int | None
    reason: str
    still_reporting: bool = Field(description="the device reported after its subject's last term ended")
    last_fix_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    done_by: str | None


class DeviceUpdate(_Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"firmware": "3.2.0"}, {"state": "lost"}]})
    serial: str | None = Field(None, pattern=r"^[A-Za-z0-9_./-]{1,64}$")
    imei: Imei | None = None
    model: str | None = Text(100, default=None)
    firmware: str | None = Text(64, default=None)
    profile: EntityId | None = None
    state: Literal["in_stock", "lost", "retired"] | None = None


class DeviceFit(_Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"subject_id": "S-1001", "at": "2026-12-01T10:00:00+05:00", "fitted_by_account_id": 7}]})
    subject_id: EntityId
    at: Instant | None = Field(None, description="device time from which the subject wears it (default: now)")
    fitted_by_account_id: int | None = Field(None, ge=1, le=2**63 - 1,
                                             description="the officer who fitted it (default: the caller)")
    reason: str | None = Text(500, default=None)


class DeviceRemove(_Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"at": "2027-06-01T09:00:00+05:00", "state": "in_stock", "reason": "term ended"}]})
    at: Instant | None = Field(None, description="device time from which nobody wears it (default: now)")
    state: Literal["in_stock", "lost", "retired"] = "in_stock"
    reason: str | None = Text(500, default=None)


class AssignmentPublic(BaseModel):
    id: int
    device_id: str
    subject_id: str
    fitted_at: datetime | None = Field(description="null: since the device's records began (registered fitted)")
    fitted_by: str
    fitter_account_id: int | None
    removed_at: datetime | None
    removed_by: str | None
    reason: str | None
    created_at: datetime


class ZoneVersionPublic(BaseModel):
    zone_id: str
    version: int
    name: str
    kind: str
    subject_id: str | None
    category: str | None
    geometry: _OBJ | None = Field(description="null when masked (victim-sensitive)")
    radius_m: float | None
    buffer_m: float
    schedule: list[_OBJ]
    active: bool
    dwell_open_fixes: int
    dwell_open_s: int
    dwell_close_fixes: int
    dwell_close_s: int
    victim_sensitive: bool
    change: str
    changed_by: str
    valid_from: datetime
    valid_until: datetime | None
    masked: bool = False


class PhotoPublic(BaseModel):
    subject_id: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class ZoneImportResult(BaseModel):
    created: list[str]
    updated: list[str] = Field(description="a new version was written")
    unchanged: list[str] = Field(description="the same definition: no new version")


__all__ = [
    "AssignmentPublic",
    "DeviceFit",
    "DeviceRemove",
    "DeviceUpdate",
    "PhotoPublic",
    "TaskPublic",
    "TermAmend",
    "TermAmendmentPublic",
    "TermConditions",
    "TermCreate",
    "TermPublic",
    "TermStatus",
    "ZoneImportResult",
    "ZoneVersionPublic",
]

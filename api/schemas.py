"""Request and response bodies (Create / Public), validated strictly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectCreate(_Strict):
    id: str = Field(pattern=_ID)
    full_name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(None, max_length=64)
    order_type: Literal["house_arrest", "probation", "parole", "restraining_order"] = "house_arrest"
    timezone: str = Field("Asia/Tashkent", max_length=64)
    term_start: datetime | None = None
    term_end: datetime | None = None


class SubjectPublic(SubjectCreate):
    model_config = ConfigDict(extra="ignore")
    created_at: datetime


class DeviceCreate(_Strict):
    id: str = Field(pattern=_ID)
    kind: Literal["ankle_monitor", "victim_phone"] = "ankle_monitor"
    subject_id: str | None = Field(None, pattern=_ID)


class DevicePublic(DeviceCreate):
    model_config = ConfigDict(extra="ignore")
    created_at: datetime


class ScheduleWindow(_Strict):
    days: list[Day] = Field(default_factory=lambda: list(_ALL_DAYS))
    start: str = Field(pattern=r"^\d{1,2}:\d{2}$")
    end: str = Field(pattern=r"^\d{1,2}:\d{2}$")


class ZoneCreate(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["inclusion", "exclusion"]
    subject_id: str | None = Field(None, pattern=_ID)
    category: str | None = Field(None, max_length=64)
    geometry: dict[str, Any]
    radius_m: float | None = Field(None, gt=0, le=100_000)
    buffer_m: float = Field(0.0, ge=0, le=10_000)
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    dwell_open_fixes: int = Field(1, ge=1, le=100)
    dwell_open_s: int = Field(0, ge=0, le=86400)
    dwell_close_fixes: int = Field(2, ge=1, le=100)
    dwell_close_s: int = Field(0, ge=0, le=86400)


class ZonePublic(ZoneCreate):
    model_config = ConfigDict(extra="ignore")
    active: bool
    created_at: datetime


class AbsenceCreate(_Strict):
    zone_id: str | None = Field(None, pattern=_ID)
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(min_length=1, max_length=500)


class AbsencePublic(AbsenceCreate):
    model_config = ConfigDict(extra="ignore")
    id: int
    subject_id: str
    created_by: str
    created_at: datetime


class VictimLinkCreate(_Strict):
    victim_device_id: str = Field(pattern=_ID)
    radius_m: float = Field(gt=0, le=50_000)


class VictimLinkPublic(VictimLinkCreate):
    model_config = ConfigDict(extra="ignore")
    subject_id: str
    created_at: datetime


class FeatureCollection(_Strict):
    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]] = Field(max_length=10_000)


class PositionPublic(BaseModel):
    device_id: str
    device_time: datetime
    received_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    speed_mps: float | None
    heading_deg: float | None
    source: str
    seq: int | None
    late: bool


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    subject_id: str | None
    device_id: str
    zone_id: str | None
    violation_id: int | None
    fix_time: datetime | None  # the stored fix behind the alert, or
    status_time: datetime | None  # the stored status report behind a device-condition alert
    distance_m: float | None
    details: dict[str, Any]
    status: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class AlertResolve(_Strict):
    resolution: Literal["confirmed", "false_alarm", "excused"]


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    payload_size: int
    payload_head: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody

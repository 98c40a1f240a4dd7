"""Request and response bodies (Create / Public), validated strictly at the door.

Everything a client sends is checked here before it reaches SQL or the evaluator: ids by
pattern, free text without control characters (PostgreSQL text cannot hold NUL), IANA time
zones, RFC 3339 instants with an offset inside 1970..9000, schedules within 00:00..24:00,
GeoJSON geometries with finite coordinates in range and no unknown members, every number
in a range. Public (response) models are lax on purpose: a row stored by an older version
must still be readable.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from telemetry.errors import InvalidInputError
from telemetry.identifiers import imei_problem, pinfl_problem
from telemetry.store.registry import check_device_id

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# A device id is also its broker login and a topic level: no ':' (the broker's password file
# separator); reserved names (the ``nazorat-`` service accounts, ``.``, ``..``) are refused too.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # no C0 control characters but tab/newline/CR
BIGINT_MAX = 2**63 - 1
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_PLUS_AS_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})? \d{2}:\d{2}$")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _PLUS_AS_SPACE.search(value):
        value = value[:-6] + "+" + value[-5:]  # an unencoded '+' in a query string arrives as a space
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-12-01T09:00:00+05:00")
    return value


def _in_range(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset")
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("must be between 1970-01-01 and 9000-01-01")
    return value


Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_in_range)]


def Text(max_length: int, min_length: int = 0, default: Any = ...) -> Any:  # noqa: N802 - reads like a type
    """A free-text field: bounded, without control characters (NUL cannot be stored)."""
    return Field(default, min_length=min_length, max_length=max_length, pattern=_TEXT_PATTERN)


@cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(name: str) -> str:
    known = _iana_zones()
    if known:
        if name not in known:
            raise ValueError(f"unknown IANA time zone {name!r} (e.g. Asia/Tashkent)")
        return name
    try:  # no zone list on this system: ask zoneinfo itself
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. Asia/Tashkent)") from exc
    return name


def _device_id(value: str) -> str:
    try:
        check_device_id(value)
    except InvalidInputError as exc:
        raise ValueError(exc.reason) from exc
    return value


Timezone = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"),
                     AfterValidator(_timezone)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN), AfterValidator(_device_id)]
EntityId = Annotated[str, Field(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


OrderType = Literal["house_arrest", "restriction_of_liberty", "probation", "parole", "restraining_order"]
Sex = Literal["F", "M"]
SubjectStatus = Literal["active", "suspended", "released", "wanted", "deceased"]
PHONE_PATTERN = r"^\+?[0-9 ()-]{5,32}$"


def _pinfl(value: str) -> str:
    problem = pinfl_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _imei(value: str) -> str:
    problem = imei_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Pinfl = Annotated[str, Field(min_length=1, max_length=32, description="14 digits: century/sex, DDMMYY, region, "
                                                                      "serial, check digit (docs/registry.md)",
                             examples=["31501901234566"]), AfterValidator(_pinfl)]
Imei = Annotated[str, Field(min_length=1, max_length=32, description="15 digits, Luhn-checked",
                            examples=["490154203237518"]), AfterValidator(_imei)]
BirthDate = Annotated[date, Field(ge=date(1800, 1, 1), le=date(2099, 12, 31))]


class Exemption(_Strict):
    """A standing exemption from a rule (e.g. a medical condition excusing the night curfew)."""

    kind: str = Text(64, 1)
    note: str | None = Text(500, default=None)


class _PersonalFields(_Strict):
    @model_validator(mode="after")
    def _pinfl_agrees(self) -> Self:
        pinfl = getattr(self, "pinfl", None)
        if pinfl is not None:
            problem = pinfl_problem(pinfl, date_of_birth=getattr(self, "date_of_birth", None),
                                    sex=getattr(self, "sex", None))
            if problem is not None:
                raise ValueError(problem)
        return self


class SubjectCreate(_PersonalFields):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "id": "S-1001", "full_name": "Alisher Karimov", "order_type": "house_arrest",
        "term_start": "2026-12-01T00:00:00+05:00", "term_end": "2027-06-01T00:00:00+05:00",
        "pinfl": "31501901234566", "date_of_birth": "1990-01-15", "sex": "M",
        "address": "Tashkent, Chilonzor 9-12", "phone": "+998 90 123 45 67"}]})
    id: EntityId
    full_name: str = Text(200, 1)
    category: str | None = Text(64, default=None)
    order_type: OrderType = "house_arrest"
    timezone: Timezone = "Asia/Tashkent"
    term_start: Instant | None = None
    term_end: Instant | None = None
    pinfl: Pinfl | None = None
    date_of_birth: BirthDate | None = None
    sex: Sex | None = None
    address: str | None = Text(500, default=None)
    phone: str | None = Field(None, pattern=PHONE_PATTERN)
    status: SubjectStatus = "active"
    exemptions: list[Exemption] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _term(self) -> Self:
        if self.term_start is not None and self.term_end is not None and self.term_end <= self.term_start:
            raise ValueError("term_end must be after term_start (a term that ends before it starts is never monitored)")
        return self


class SubjectUpdate(_PersonalFields):
    """The fields to change; the others keep their values."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "address": "Tashkent, Yunusobod 4-7", "phone": "+998 91 000 11 22", "status": "active"}]})
    full_name: str | None = Text(200, 1, default=None)
    category: str | None = Text(64, default=None)
    order_type: OrderType | None = None
    timezone: Timezone | None = None
    pinfl: Pinfl | None = None
    date_of_birth: BirthDate | None = None
    sex: Sex | None = None
    address: str | None = Text(500, default=None)
    phone: str | None = Field(None, pattern=PHONE_PATTERN)
    status: SubjectStatus | None = None
    exemptions: list[Exemption] | None = Field(None, max_length=50)


class SubjectPublic(BaseModel):
    id: str
    full_name: str
    category: str | None
    order_type: str
    timezone: str
    term_start: datetime | None
    term_end: datetime | None
    created_at: datetime
    pinfl: str | None = Field(None, description="null when masked for the caller's role (docs/registry.md)")
    date_of_birth: date | None = None
    sex: str | None = None
    address: str | None = Field(None, description="null when masked")
    phone: str | None = Field(None, description="null when masked")
    status: str = "active"
    exemptions: list[dict[str, Any]] = Field(default_factory=list)
    officer_id: int | None = None
    unit_id: str | None = None
    has_photo: bool = False
    masked: list[str] = Field(default_factory=list, description="the personal fields withheld from this caller")


class DeviceCreate(_Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "id": "EM-0042", "kind": "ankle_monitor", "serial": "SN-2026-0042", "imei": "490154203237518",
        "model": "BT-200", "firmware": "3.1.4"}]})
    id: DeviceId
    kind: Literal["ankle_monitor", "victim_phone"] = "ankle_monitor"
    subject_id: EntityId | None = Field(None, description="fitted on this subject since the device's records began "
                                                          "(use POST /devices/{id}/fit to record a fitting time)")
    serial: str | None = Field(None, pattern=r"^[A-Za-z0-9_./-]{1,64}$")
    imei: Imei | None = None
    model: str | None = Text(100, default=None)
    firmware: str | None = Text(64, default=None)
    profile: EntityId = "default"

    @model_validator(mode="after")
    def _victim_phone(self) -> Self:
        if self.kind == "victim_phone" and self.subject_id is not None:
            raise ValueError("a victim's phone is not assigned to a subject: link it with POST /subjects/{id}/victims")
        return self


class DevicePublic(BaseModel):
    id: str
    kind: str
    subject_id: str | None
    created_at: datetime
    serial: str | None = None
    imei: str | None = None
    model: str | None = None
    firmware: str | None = None
    profile: str = "default"
    state: str = "in_stock"


class DeviceStatusPublic(BaseModel):
    """The device's latest status report (by its own clock); a field it did not report is null."""

    model_config = {"json_schema_extra": {"examples": [
        {"device_time": "2026-12-01T08:15:00Z", "battery_pct": 64.0, "charging": False, "strap": "closed",
         "case_open": False, "online": True}]}}
    device_time: datetime
    battery_pct: float | None = None
    charging: bool | None = None
    strap: Literal["closed", "opened", "cut"] | None = None
    case_open: bool | None = None
    online: bool | None = None


class DeviceDetail(DevicePublic):
    last_status: DeviceStatusPublic | None = Field(None, description="the latest status report; null if none yet")


TimeOfDay = Annotated[str, Field(pattern=r"^(([01]?\d|2[0-3]):[0-5]\d|24:00)$",
                                 description="local time HH:MM from 00:00 to 24:00")]


class ScheduleWindow(_Strict):
    days: list[Day] = Field(default_factory=lambda: list(_ALL_DAYS), min_length=1, max_length=7)
    start: TimeOfDay
    end: TimeOfDay


# GeoJSON geometries (RFC 7946) the evaluator supports; members other than these are refused.
Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Alt = Annotated[float, Field(ge=-20_000, le=100_000)]
GeoPosition = tuple[Lon, Lat] | tuple[Lon, Lat, Alt]
MAX_RING_POSITIONS = 20_000  # the evaluator's limit per zone (geofence.zones.MAX_VERTICES_PER_ZONE)
Ring = Annotated[list[GeoPosition], Field(min_length=4, max_length=MAX_RING_POSITIONS)]


class PointGeometry(_Strict):
    type: Literal["Point"]
    coordinates: GeoPosition


class PolygonGeometry(_Strict):
    type: Literal["Polygon"]
    coordinates: list[Ring] = Field(min_length=1, max_length=1000)


class MultiPolygonGeometry(_Strict):
    type: Literal["MultiPolygon"]
    coordinates: list[Annotated[list[Ring], Field(min_length=1, max_length=1000)]] = Field(min_length=1, max_length=1000)


Geometry = Annotated[PointGeometry | PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")]


class ZoneCreate(_Strict):
    id: EntityId
    name: str = Text(200, 1)
    kind: Literal["inclusion", "exclusion"]
    subject_id: EntityId | None = None
    category: str | None = Text(64, default=None)
    geometry: Geometry
    radius_m: float | None = Field(None, gt=0, le=100_000)
    buffer_m: float = Field(0.0, ge=0, le=10_000)
    schedule: list[ScheduleWindow] = Field(default_factory=list, max_length=100)
    dwell_open_fixes: int = Field(1, ge=1, le=100)
    dwell_open_s: int = Field(0, ge=0, le=86400)
    dwell_close_fixes: int = Field(2, ge=1, le=100)
    dwell_close_s: int = Field(0, ge=0, le=86400)
    victim_sensitive: bool | None = Field(
        None, description="a zone around a victim (home, work): its geometry is masked for roles that may not see "
                          "victims. Default: true for an exclusion zone of a subject under a restraining order or "
                          "with a linked victim")


class ZonePublic(BaseModel):
    id: str
    name: str
    kind: str
    subject_id: str | None
    category: str | None
    geometry: dict[str, Any] | None = Field(description="null when masked (victim-sensitive)")
    radius_m: float | None
    buffer_m: float
    schedule: list[dict[str, Any]]
    dwell_open_fixes: int
    dwell_open_s: int
    dwell_close_fixes: int
    dwell_close_s: int
    victim_sensitive: bool
    masked: bool = False
    active: bool
    created_at: datetime
    version: int = Field(1, description="the current version (GET /zones/{id}/versions)")
    updated_at: datetime | None = None


class AbsenceCreate(_Strict):
    zone_id: EntityId | None = None
    starts_at: Instant
    ends_at: Instant
    reason: str = Text(500, 1)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class AbsencePublic(BaseModel):
    id: int
    subject_id: str
    zone_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


class VictimLinkCreate(_Strict):
    victim_device_id: EntityId
    radius_m: float = Field(gt=0, le=50_000)


class VictimLinkPublic(BaseModel):
    victim_device_id: str
    subject_id: str
    radius_m: float
    created_at: datetime


class Feature(BaseModel):
    """A GeoJSON Feature; its ``properties`` are a zone's fields (see ZoneCreate)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    type: Literal["Feature"]
    properties: dict[str, Any] | None = None
    geometry: dict[str, Any] | None = None
    id: str | int | None = None
    bbox: list[float] | None = Field(None, max_length=6)


IMPORT_MAX = 5000


class SubjectImport(_Strict):
    subjects: list[SubjectCreate] = Field(min_length=1, max_length=IMPORT_MAX)


class DeviceImport(_Strict):
    devices: list[DeviceCreate] = Field(min_length=1, max_length=IMPORT_MAX)


class FeatureCollection(_Strict):
    type: Literal["FeatureCollection"]
    features: list[Feature] = Field(max_length=10_000)
    bbox: list[float] | None = Field(None, max_length=6)
    name: str | None = Field(None, max_length=200)  # written by QGIS and ogr2ogr; ignored
    crs: dict[str, Any] | None = None  # pre-RFC 7946 exports; ignored (WGS84 is assumed)


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


class LatestPositionPublic(BaseModel):
    device_id: str
    kind: str
    subject_id: str | None
    device_time: datetime
    lat: float
    lon: float
    accuracy_m: float


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
    masked: bool = Field(False, description="true when location members of details were removed (victim-sensitive)")


class AlertResolve(_Strict):
    resolution: Literal["confirmed", "false_alarm", "excused"]


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    payload_size: int
    payload_head: str | None = Field(description="null when masked (a victim's device)")
    masked: bool = False


class FieldError(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="a URI naming the problem: urn:nazorat:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable name of the problem")
    errors: list[FieldError] | None = Field(None, description="field errors (422)")
    correlation_id: str | None = Field(None, description="500 only: quoted in the server log with the traceback")


__all__ = [
    "BIGINT_MAX",
    "DEVICE_ID_PATTERN",
    "ID_PATTERN",
    "AbsenceCreate",
    "AbsencePublic",
    "AlertPublic",
    "AlertResolve",
    "DeadLetterPublic",
    "DeviceCreate",
    "DeviceId",
    "DevicePublic",
    "EntityId",
    "Exemption",
    "Feature",
    "FeatureCollection",
    "FieldError",
    "Geometry",
    "Imei",
    "Instant",
    "LatestPositionPublic",
    "OrderType",
    "Pinfl",
    "PositionPublic",
    "Problem",
    "ScheduleWindow",
    "SubjectCreate",
    "SubjectPublic",
    "SubjectUpdate",
    "VictimLinkCreate",
    "VictimLinkPublic",
    "ZoneCreate",
    "ZonePublic",
]

"""Response bodies of the location query, the track and the subject export, with the
examples the OpenAPI document shows. Lax on purpose (see :mod:`api.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

_FIX_EXAMPLE = {"device_time": "2026-11-20T21:14:05Z", "lat": 41.31108, "lon": 69.27961, "accuracy_m": 8.0,
                "source": "gps", "flags": [], "distance_m": 23.412, "class": "certain"}
LOCATION_QUERY_EXAMPLE: dict[str, Any] = {
    "query": {"lat": 41.3111, "lon": 69.2797, "radius_m": 150.0, "since": "2026-11-20T20:00:00Z",
              "until": "2026-11-20T23:00:00Z", "max_accuracy_m": 1000.0, "include_flagged": False},
    "subjects": [
        {"subject_id": "s-0042", "class": "certain", "devices": [
            {"device_id": "am-0042", "device_kind": "ankle_monitor", "class": "certain", "certain_fixes": 3,
             "possible_fixes": 1, "first_time": "2026-11-20T21:09:05Z", "last_time": "2026-11-20T21:24:05Z",
             "fixes": [_FIX_EXAMPLE], "fixes_truncated": False}]},
        {"subject_id": "s-0107", "class": "possible", "devices": [
            {"device_id": "am-0107", "device_kind": "ankle_monitor", "class": "possible", "certain_fixes": 0,
             "possible_fixes": 1, "first_time": "2026-11-20T22:40:00Z", "last_time": "2026-11-20T22:40:00Z",
             "fixes": [{**_FIX_EXAMPLE, "device_time": "2026-11-20T22:40:00Z", "accuracy_m": 900.0, "source": "cell",
                        "distance_m": 610.0, "class": "possible"}], "fixes_truncated": False}]},
    ],
    "counts": {"subjects": 2, "certain_subjects": 1, "devices": 2, "fixes": 5},
    "victim_phones": "excluded",
}

TRACK_EXAMPLE: dict[str, Any] = {
    "type": "FeatureCollection", "subject_id": "s-0042", "since": "2026-11-20T08:00:00Z",
    "until": "2026-11-20T09:00:00Z", "truncated": False, "victim_phones": "excluded",
    "devices": [{"device_id": "am-0042", "report_interval_s": 60, "gap_threshold_s": 180.0, "fixes": 3, "gaps": 1}],
    "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [69.2797, 41.3111]},
         "properties": {"kind": "fix", "device_id": "am-0042", "device_time": "2026-11-20T08:00:00Z",
                        "accuracy_m": 6.0, "source": "gps", "speed_mps": 1.2, "heading_deg": 90.0, "flags": []}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[69.2797, 41.3111], [69.2801, 41.3112]]},
         "properties": {"kind": "stretch", "device_id": "am-0042", "start": "2026-11-20T08:00:00Z",
                        "end": "2026-11-20T08:01:00Z", "fixes": 2}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[69.2801, 41.3112], [69.2900, 41.3200]]},
         "properties": {"kind": "gap", "device_id": "am-0042", "start": "2026-11-20T08:01:00Z",
                        "end": "2026-11-20T08:30:00Z", "duration_s": 1740.0, "threshold_s": 180.0}},
    ],
}

EXPORT_EXAMPLE: dict[str, Any] = {
    "format": "nazorat.subject-export.v1", "subject_id": "s-0042", "generated_at": "2026-12-01T12:00:00+00:00",
    "generated_by": "supervisor-tashkent", "victim_sensitive": "redacted",
    "counts": {"subject": 1, "positions": 1, "alerts": 0}, "skipped": ["appeals"],
    "sections": {"subject": {"id": "s-0042", "full_name": "A. Karimov", "category": "probation"},
                 "positions": [{"device_id": "am-0042", "device_time": "2026-11-20T08:00:00+00:00", "lat": 41.3111,
                                "lon": 69.2797, "accuracy_m": 6.0, "source": "gps"}],
                 "alerts": []},
}


class _Lax(BaseModel):
    model_config = ConfigDict(extra="allow")


class LocationQueryPublic(_Lax):
    """Who was within ``radius_m`` of the point: subjects, certain first, each with its
    devices and the fixes that place it there."""

    query: dict[str, Any]
    subjects: list[dict[str, Any]]
    counts: dict[str, int]
    victim_phones: Literal["excluded", "included"]
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [LOCATION_QUERY_EXAMPLE]})


class TrackPublic(_Lax):
    """A GeoJSON FeatureCollection (RFC 7946) with foreign members naming the subject,
    the time range and each device's gap threshold."""

    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]
    subject_id: str
    since: datetime
    until: datetime
    devices: list[dict[str, Any]]
    truncated: bool
    victim_phones: Literal["excluded", "included"]
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [TRACK_EXAMPLE]})


class SubjectExportPublic(_Lax):
    """The archive: a header and one member of ``sections`` per stored table (``subject``
    an object, every other section a list of rows as stored)."""

    format: str
    subject_id: str
    generated_at: datetime
    generated_by: str
    victim_sensitive: Literal["redacted", "included"]
    counts: dict[str, int]
    skipped: list[str]
    sections: dict[str, Any]
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXPORT_EXAMPLE]})


__all__ = ["EXPORT_EXAMPLE", "LOCATION_QUERY_EXAMPLE", "TRACK_EXAMPLE", "LocationQueryPublic",
           "SubjectExportPublic", "TrackPublic"]

"""Zones the evaluation frame cannot serve exactly are refused at the door, naming the zone."""

from __future__ import annotations

import pytest

from geofence import SubjectRules, ZoneGeometryError, ZoneSpec, compile_zones, validate_zone
from geofence.zones import MAX_RADIUS_M, SUPPORTED_REGION


def _box(lon: float, lat: float, d: float = 0.01) -> list[list[float]]:
    return [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]


def _circle(zone_id: str, lon: float, lat: float, r: float) -> ZoneSpec:
    return ZoneSpec(zone_id, "exclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=r, subject_id="s")


def _polygon(zone_id: str, coordinates: list, kind: str = "Polygon") -> ZoneSpec:  # type: ignore[type-arg]
    return ZoneSpec(zone_id, "exclusion", {"type": kind, "coordinates": coordinates}, subject_id="s")


ABROAD = {"Moscow": (37.62, 55.75), "Reykjavik": (-21.94, 64.15), "Sao Paulo": (-46.63, -23.55),
          "equator": (20.0, 0.0), "cut meridian": (-115.5, 41.0), "south of the band": (69.17, 29.5)}


def _refused(zone: ZoneSpec) -> None:
    for validate in (True, False):
        with pytest.raises(ZoneGeometryError) as info:
            compile_zones([zone], [SubjectRules("s")], validate=validate)
        assert info.value.zone_id == zone.zone_id
        assert "outside the region" in info.value.reason
    with pytest.raises(ZoneGeometryError) as info:
        validate_zone(zone)
    assert info.value.zone_id == zone.zone_id


@pytest.mark.parametrize("place", sorted(ABROAD))
def test_zones_abroad_are_refused_naming_the_zone(place: str) -> None:
    lon, lat = ABROAD[place]
    _refused(_circle(f"circle-{place}", lon, lat, 200.0))
    _refused(_polygon(f"polygon-{place}", [_box(lon, lat)]))


def test_a_zone_reaching_out_of_the_region_is_refused_and_one_inside_is_not() -> None:
    la0, _la1, lo0, lo1 = SUPPORTED_REGION
    _refused(_circle("edge-circle", lo1 - 0.5, 40.0, MAX_RADIUS_M))  # centre inside, the circle reaches out
    _refused(_polygon("edge-polygon", [[[lo1 - 1, 40.0], [lo1 + 0.1, 40.0], [lo1 - 1, 41.0], [lo1 - 1, 40.0]]]))
    _refused(_polygon("multi", [[_box(69.0, 41.0)], [_box(lo0 - 1.0, 41.0)]], "MultiPolygon"))
    inside = [_circle("tashkent", 69.24, 41.3, MAX_RADIUS_M), _circle("corner", lo0 + 1.5, la0 + 1.0, MAX_RADIUS_M),
              _polygon("nukus", [_box(59.6, 42.45)]), _polygon("termez", [_box(67.28, 37.22)])]
    zs = compile_zones(inside, [SubjectRules("s")])
    assert zs.n_zones == 4
    for z in inside:
        validate_zone(z)


def test_an_rfc7946_antimeridian_split_is_refused_whichever_way_it_reads() -> None:
    """RFC 7946 3.1.9: a polygon crossing the antimeridian is cut into a MultiPolygon whose
    parts meet at +180 and -180. Neither reading (nor a raw one past 180) is served."""
    east = [[170.0, 60.0], [180.0, 60.0], [180.0, 61.0], [170.0, 61.0], [170.0, 60.0]]
    west = [[-180.0, 60.0], [-170.0, 60.0], [-170.0, 61.0], [-180.0, 61.0], [-180.0, 60.0]]
    _refused(_polygon("split", [[east], [west]], "MultiPolygon"))
    _refused(_polygon("east-half", [east]))
    _refused(_polygon("west-half", [west]))
    raw = [[170.0, 60.0], [190.0, 60.0], [190.0, 61.0], [170.0, 61.0], [170.0, 60.0]]
    with pytest.raises(ZoneGeometryError):
        validate_zone(_polygon("raw", [raw]))
    with pytest.raises(ZoneGeometryError):
        compile_zones([_polygon("raw", [raw])], [SubjectRules("s")], validate=False)

"""Which zones a bound phone may be shown (setWaypoints): the role rules of docs/interop.md."""

from __future__ import annotations

import json

import psycopg

from telemetry.store.interop import regions_for
from tests.interop.harness import CENTRE, setup_registry


def test_victim_sensitive_zones_go_to_the_victim_never_to_the_supervised_person(database_url: str) -> None:
    setup_registry(database_url)
    point = json.dumps({"type": "Point", "coordinates": list(CENTRE)})
    square = json.dumps({"type": "Polygon", "coordinates": [[[69.0, 41.0], [69.1, 41.0], [69.1, 41.1], [69.0, 41.0]]]})
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO devices (id, kind) VALUES ('victim-1', 'victim_phone')")
        conn.execute("INSERT INTO victim_links (subject_id, victim_device_id, radius_m) VALUES ('s1', 'victim-1', 500)")
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry, radius_m, victim_sensitive) VALUES"
                     " ('victim-home', 'home', 'exclusion', 's1', %s, 200, true),"
                     " ('curfew', 'curfew', 'inclusion', 's1', %s, 200, false)", (point, point))
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES"
                     " ('border', 'border', 'exclusion', 's1', %s)", (square,))
        subject = [r.zone_id for r in regions_for(conn, "d1")]
        victim = [r.zone_id for r in regions_for(conn, "victim-1")]
    assert subject == ["market-s1"]  # not the victim's home, not the inclusion zone, not the polygon
    assert victim == ["victim-home"]

"""The registry side of the integrations: OwnTracks bindings and HTTP secrets through the
API, scoped, audited, secrets shown once and stored hashed."""

from __future__ import annotations

import hashlib

import psycopg

from tests.api.conftest import LiveApi, live_api  # noqa: F401 (the fixture)
from tests.interop.harness import count, setup_registry


def test_bindings_and_secrets(live_api: LiveApi) -> None:  # noqa: F811
    url = live_api.database_url
    setup_registry(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO devices (id, kind) VALUES ('victim-1', 'victim_phone')")
        conn.execute("INSERT INTO victim_links (subject_id, victim_device_id, radius_m) VALUES ('s1', 'victim-1', 500)")
    with live_api.client() as api:
        r = api.post("/owntracks/bindings", json={"user": "bob", "device": "tab", "device_id": "d1"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["topic"] == "owntracks/bob/tab" and len(body["password"]) >= 24 and body["push_zones"] is False
        again = api.post("/owntracks/bindings", json={"user": "bob", "device": "tab", "device_id": "d2"})
        assert again.status_code == 409
        assert api.post("/owntracks/bindings", json={"user": "x", "device": "y", "device_id": "ghost"}).status_code \
            == 404
        assert api.post("/owntracks/bindings", json={"user": "a/b", "device": "y", "device_id": "d1"}).status_code \
            == 422
        listed = api.get("/owntracks/bindings").json()
        assert {(b["ot_user"], b["ot_device"]) for b in listed} >= {("bob", "tab"), ("aziza", "phone")}
        assert all("password" not in b and "secret_hash" not in b for b in listed)
        secret = api.post("/devices/d1/http-secret")
        assert secret.status_code == 201 and secret.json()["path"] == f"/t/{secret.json()['secret']}"
        with live_api.acting_as("supervisor", "sup-1"):
            # a victim's phone is managed only by roles that may see victims: it reads as absent
            assert api.post("/devices/victim-1/http-secret").status_code == 404
            assert api.post("/owntracks/bindings", json={"user": "v", "device": "p",
                                                         "device_id": "victim-1"}).status_code == 404
        with live_api.acting_as("officer"):
            assert api.get("/owntracks/bindings").status_code == 403
        assert api.post("/devices/victim-1/http-secret").status_code == 201  # the admin may
        assert api.delete("/owntracks/bindings/bob/tab").status_code == 204
        assert api.delete("/owntracks/bindings/bob/tab").status_code == 404
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT secret_hash FROM device_http_secrets WHERE device_id = 'd1'").fetchone()
    assert row is not None and bytes(row[0]) == hashlib.sha256(secret.json()["secret"].encode()).digest()
    assert count(url, "SELECT count(*) FROM audit_log WHERE action IN ('owntracks.bind', 'owntracks.unbind',"
                      " 'device.http_secret')") == 4

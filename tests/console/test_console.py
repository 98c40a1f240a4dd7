"""The officers' console and the appellants' page in a real browser (Debian's chromium)
against the real stack: a fix published over MQTT becomes an alert the officer sees live,
acknowledges and resolves; the feed loses nothing across a cut connection; a zone drawn
on the map is saved and evaluated; an appellant files a contest at 360 px and officers
decide it in the appeals queue; a track is replayed and seeked, and from an alert; the
subject card; a zone's buffer and schedule edited, with its versions; a supervisor's
escalations and officer filter. Screenshots go to test-artifacts/console/ (printed); no
request leaves 127.0.0.1 (page_factory)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import paho.mqtt.publish as mqtt_publish
import psycopg
import pytest

from telemetry.wire import fixes_topic, status_topic
from tests.conftest import Stack
from tests.console.conftest import ARTIFACTS, CutProxy
from tests.e2e.test_fix_to_alert import HOME, VICTIM, wait_for
from tests.geofence.workloads import rect_ring

PASSWORD = "correct horse battery"
DROP_SUBJECTS = ("s-d1", "s-d2", "s-d3")


@dataclass
class World:
    stack: Stack
    officer_id: int
    t0: int

    def api(self) -> httpx.Client:
        return self.stack.client()

    def publish(self, device: str, lon: float, lat: float, t_ms: int, acc: float = 8.0) -> None:
        host, port = self.stack.mqtt_url.removeprefix("mqtt://").split(":")
        payload = json.dumps({"t": t_ms, "lat": lat, "lon": lon, "acc": acc, "src": "gps"})
        mqtt_publish.single(fixes_topic(device), payload, qos=1, hostname=host, port=int(port))

    def publish_status(self, device: str, report: dict[str, Any]) -> None:
        host, port = self.stack.mqtt_url.removeprefix("mqtt://").split(":")
        mqtt_publish.single(status_topic(device), json.dumps(report), qos=1, hostname=host, port=int(port))

    def get(self, path: str, **params: Any) -> Any:
        with self.api() as c:
            r = c.get(path, params=params)
            assert r.status_code == 200, r.text
            return r.json()

    def alerts(self, subject: str) -> list[dict[str, Any]]:
        return self.get("/alerts", subject_id=subject)  # type: ignore[no-any-return]


def _account(c: httpx.Client, username: str, role: str, subject: str | None = None) -> int:
    r = c.post("/accounts", json={"username": username, "role": role, "unit_id": "hq", "subject_id": subject,
                                  "password": PASSWORD})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _subject(c: httpx.Client, sid: str, officer: int, *, home: bool = True, exclusion: bool = True,
             victim_zone: bool = False, **fields: Any) -> None:
    assert c.post("/subjects", json={"id": sid, "full_name": f"Person {sid}", **fields}).status_code == 201
    assert c.post("/devices", json={"id": f"{sid}-dev", "subject_id": sid}).status_code == 201
    assert c.put(f"/subjects/{sid}/assignment", json={"officer_id": officer, "unit_id": "hq"}).status_code == 200
    zones = []
    if home:
        zones.append({"id": f"{sid}-home", "name": "home", "kind": "inclusion", "subject_id": sid,
                      "geometry": {"type": "Polygon", "coordinates": [rect_ring(*HOME, 400, 300)]}})
    if exclusion:
        zones.append({"id": f"{sid}-school", "name": "school", "kind": "exclusion", "subject_id": sid,
                      "radius_m": 150, "victim_sensitive": False,
                      "geometry": {"type": "Point", "coordinates": list(VICTIM)}})
    if victim_zone:
        zones.append({"id": f"{sid}-victim", "name": "victim's home", "kind": "exclusion", "subject_id": sid,
                      "radius_m": 100, "victim_sensitive": True,
                      "geometry": {"type": "Point", "coordinates": [VICTIM[0] + 0.01, VICTIM[1] + 0.004]}})
    for z in zones:
        r = c.post("/zones", json=z)
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def world(console_stack: Stack) -> World:
    with console_stack.client() as c:
        officer = _account(c, "ofc", "officer")
        _account(c, "sup", "supervisor")
        _account(c, "adm", "admin")
        _subject(c, "s-main", officer, victim_zone=True)
        for sid in DROP_SUBJECTS:
            _subject(c, sid, officer, home=False)
        _subject(c, "s-zone", officer, exclusion=False)
        _subject(c, "s-app", officer, home=False)
        _subject(c, "s-replay", officer, exclusion=False, pinfl="31501901234566", date_of_birth="1990-01-15", sex="M",
                 address="Tashkent, Chilonzor 9-12", term_start="2026-01-01T00:00:00+05:00",
                 term_end="2036-01-01T00:00:00+05:00")
        _subject(c, "s-edit", officer, exclusion=False)
        _account(c, "app", "appellant", subject="s-app")
    return World(console_stack, officer, int(time.time() * 1000) - 3_600_000)


def sign_in(page: Any, base: str, username: str, path: str = "/") -> None:
    page.goto(base + path)
    page.select_option("#lang", "en")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signin button[type=submit]")


def row(page: Any, alert_id: int) -> Any:
    return page.locator(f'#alert-list li[data-id="{alert_id}"]')


def test_officer_sees_a_live_alert_acknowledges_and_resolves_it(world: World, proxy: CutProxy,
                                                                page_factory: Any) -> None:
    page = page_factory(viewport={"width": 1400, "height": 900})
    sign_in(page, proxy.url, "ofc")
    page.wait_for_selector('#feed-state[data-state="live"]')
    assert page.locator("header").inner_text().count("Sign out") == 1  # English chosen
    # a walk at home (the track), then into the exclusion circle
    for i in range(8):
        world.publish("s-main-dev", HOME[0] - 0.0012 + i * 0.0003, HOME[1] + (i % 3) * 0.0002, world.t0 + i * 60_000,
                      acc=6 + 3 * i)
    wait_for(lambda: len(world.get("/subjects/s-main/positions")), lambda n: n == 8)
    published = time.monotonic()
    world.publish("s-main-dev", *VICTIM, world.t0 + 9 * 60_000, acc=12)
    page.wait_for_selector("#alert-list li.sev-high:has-text('exclusion zone entered')")
    seen_after_s = time.monotonic() - published  # MQTT -> pipeline -> store -> feed -> page
    print(f"\nalert on the officer's screen {seen_after_s:.2f} s after the fix was published")
    alert = next(a for a in world.alerts("s-main") if a["kind"] == "exclusion_zone_entered")

    row(page, alert["id"]).click()
    page.wait_for_selector(f'#map[data-loaded="s-main:{alert["id"]}"]')
    legend = page.locator(".legend").inner_text()
    assert "Inclusion zone" in legend and "1 zones hidden for your role" in legend  # the victim's zone is masked
    assert page.locator("#map path.leaflet-interactive").count() >= 8  # zones, track, accuracy circles, evidence
    assert page.locator("#map path.track-stretch").count() == 1  # from GET /subjects/{id}/track
    page.screenshot(path=str(ARTIFACTS / "console-officer-track-zones.png"), full_page=True)

    page.click("#ack-form button")
    page.wait_for_selector(f'#alert-list li[data-id="{alert["id"]}"][data-status="acknowledged"]')
    page.select_option("#resolve-form [name=outcome]", "confirmed_violation")
    page.click("#resolve-form button")  # no note: refused in the form
    assert page.locator("#action-error").inner_text() == "A note is required."
    page.fill("#resolve-form [name=note]", "seen at the school gate by the patrol")
    page.click("#resolve-form button")
    page.wait_for_selector(f'#alert-list li[data-id="{alert["id"]}"][data-status="resolved"]')
    with world.api() as c:
        stored = c.get(f"/alerts/{alert['id']}").json()
        history = [h["action"] for h in c.get(f"/alerts/{alert['id']}/history").json()]
    assert (stored["status"], stored["resolution"], stored["resolution_note"], stored["acknowledged_by"]) == (
        "resolved", "confirmed_violation", "seen at the school gate by the patrol", "ofc")
    assert history[-2:] == ["acknowledged", "resolved"]
    # an action the server refuses is shown, not swallowed: the alert is already resolved
    page.evaluate("document.querySelector('#resolve-form button').disabled = false")
    page.fill("#resolve-form [name=note]", "again")
    page.click("#resolve-form button")
    page.wait_for_selector("#action-error:has-text('409')")
    # a critical alert (the strap cut) is announced; the page in Uzbek
    page.select_option("#lang", "uz")
    world.publish_status("s-main-dev", {"t": world.t0 + 10 * 60_000, "strap": "cut", "bat": 80})
    page.wait_for_selector("#critical-banner:not([hidden]):has-text('strap cut')")
    page.wait_for_selector("#alert-list li.sev-critical:has-text('strap cut')")
    assert page.locator("#ack-form button").inner_text() == "Qabul qilish"
    assert page.locator("#subject-card").inner_text().startswith("Shaxs: s-main")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "console-officer-critical-uz.png"))
    assert page.js_errors == []


def test_the_feed_loses_no_alert_across_a_cut_connection(world: World, proxy: CutProxy, page_factory: Any) -> None:
    page = page_factory(viewport={"width": 1200, "height": 800})
    sign_in(page, proxy.url, "ofc")
    page.wait_for_selector('#feed-state[data-state="live"]')
    proxy.cut()  # the network goes: the stream and every new connection fail
    page.wait_for_selector('#feed-state[data-state="reconnecting"]')
    for i, sid in enumerate(DROP_SUBJECTS):
        world.publish(f"{sid}-dev", *VICTIM, world.t0 + i * 1000)
    stored = wait_for(lambda: [a for sid in DROP_SUBJECTS for a in world.alerts(sid)], lambda a: len(a) == 3)
    assert page.locator("#alert-list li[data-id]").filter(has_text="s-d").count() == 0  # not yet: offline
    proxy.restore()
    for a in stored:
        row(page, a["id"]).wait_for()
    assert page.get_attribute("#feed-state", "data-state") == "live"
    assert page.js_errors == []


def test_a_zone_drawn_on_the_map_is_saved_and_evaluated(world: World, proxy: CutProxy, page_factory: Any) -> None:
    page = page_factory(viewport={"width": 1400, "height": 900})
    sign_in(page, proxy.url, "sup")
    page.wait_for_selector('#feed-state[data-state="live"]')
    page.select_option("#filters [name=subject_id]", "s-zone")
    page.click("#filters button[type=submit]")
    page.wait_for_selector('#map[data-loaded="s-zone:"]')
    page.click("#zone-editor summary")
    target = (HOME[0] + 0.0008, HOME[1] + 0.0004)  # inside the home rectangle
    x, y = page.evaluate("([lat, lon]) => { const p = nazoratConsole.map.map.latLngToContainerPoint([lat, lon]);"
                         " return [p.x, p.y]; }", [target[1], target[0]])
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function("nazoratConsole.draft.points.length === 1")  # the click made the draft's centre
    page.fill("#zone-form [name=id]", "s-zone-kiosk")
    page.fill("#zone-form [name=name]", "kiosk")
    page.select_option("#zone-form [name=kind]", "exclusion")
    page.fill("#zone-form [name=radius]", "60")
    page.click("#zone-form button[type=submit]")
    try:
        page.wait_for_selector('#zone-message[data-saved="s-zone-kiosk"]')
    except Exception as exc:  # say what the page said instead
        page.screenshot(path=str(ARTIFACTS / "console-zone-editor-failed.png"), full_page=True)
        raise AssertionError(f"zone not saved: {page.inner_text('#zone-message')!r}, "
                             f"errors {page.js_errors}") from exc
    with world.api() as c:
        zone = next(z for z in c.get("/zones", params={"subject_id": "s-zone"}).json() if z["id"] == "s-zone-kiosk")
    lon, lat = zone["geometry"]["coordinates"]
    assert zone["kind"] == "exclusion" and zone["radius_m"] == 60
    assert abs(lon - target[0]) < 2e-5 and abs(lat - target[1]) < 2e-5  # where it was clicked (a pixel is ~1e-5°)
    world.publish("s-zone-dev", *target, world.t0 + 30 * 60_000)  # the new zone is evaluated
    page.wait_for_selector("#alert-list li:has-text('s-zone-kiosk')")
    assert [a["zone_id"] for a in world.alerts("s-zone")] == ["s-zone-kiosk"]
    assert page.locator("#charts svg.chart").count() == 3  # the supervisor's statistics
    page.screenshot(path=str(ARTIFACTS / "console-supervisor-zone-editor.png"), full_page=True)
    assert page.js_errors == []


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)  # recognised by its first bytes, as the API does


def test_an_appellant_contests_at_phone_width_and_officers_decide_it(world: World, proxy: CutProxy,
                                                                     page_factory: Any) -> None:
    world.publish("s-app-dev", *VICTIM, world.t0 + 40 * 60_000)
    alert = wait_for(lambda: world.alerts("s-app"), lambda a: len(a) == 1)[0]
    with world.api() as c:  # resolved by the admin: the officer may review it
        assert c.post(f"/alerts/{alert['id']}/resolve", json={"outcome": "confirmed_violation",
                                                                "note": "confirmed"}).status_code == 200
    # the appellant, on a phone: the contestable alert, no coordinates; a contest with a file
    phone = page_factory(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(phone, proxy.url, "app", path="/console/appeal.html")
    card = phone.locator(f'.alert-card[data-id="{alert["id"]}"]')
    card.wait_for()
    assert "exclusion zone entered" in card.inner_text() and "confirmed violation" in card.inner_text()
    assert "69.2" not in phone.content()  # no coordinates on the page
    assert phone.locator("#appeals-closed").is_hidden()
    card.locator(".contest summary").click()
    assert "at most 5 MiB" in card.locator(".hint").inner_text()  # the upload limits are stated
    card.locator("textarea").fill("I was at the hospital with my mother; the paper is attached.")
    card.locator("input[type=file]").set_input_files(files=[{"name": "discharge.png", "mimeType": "image/png",
                                                             "buffer": PNG}])
    card.locator("button[type=submit]").click()
    mine = phone.locator(".appeal-card[data-state=submitted]")
    mine.wait_for()
    with world.api() as c:
        appeal = next(a for a in c.get("/appeals", params={"track": "contest"}).json() if a["alert_id"] == alert["id"])
    assert mine.get_attribute("data-id") == str(appeal["id"])
    received = f"Your appeal has been received. It will be decided by {appeal['due_on']}."
    assert mine.locator(".status-text").inner_text() == received
    assert mine.locator(".due").inner_text() == appeal["due_on"]
    phone.wait_for_selector(".appeal-card .files li:has-text('discharge.png')")
    assert phone.locator(f'.alert-card[data-id="{alert["id"]}"] .contest-open').is_visible()  # one open contest
    # a general appeal whose file the API refuses (not PDF, JPEG or PNG): the appeal is filed, the refusal shown
    general = phone.locator("#general-appeal form")
    general.locator("[name=kind]").select_option("complaint")
    general.locator("textarea").fill("The strap hurts my ankle.")
    general.locator("input[type=file]").set_input_files(files=[{"name": "note.txt", "mimeType": "text/plain",
                                                                "buffer": b"just text"}])
    general.locator("button[type=submit]").click()
    phone.wait_for_selector("#general-appeal .error:has-text('the file was refused')")
    phone.wait_for_selector(".appeal-card[data-state=submitted] h3:has-text('Complaint')")
    assert phone.locator(".appeal-card").count() == 2
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    phone.screenshot(path=str(ARTIFACTS / "appellant-360px-filed.png"), full_page=True)

    # the supervisor: the queue with the deadline, nothing overdue; assigns the officer as reviewer
    sup = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(sup, proxy.url, "sup")
    entry = sup.locator(f'#appeal-list li[data-id="{appeal["id"]}"]')
    entry.wait_for()
    assert appeal["due_on"] in entry.inner_text()
    sup.wait_for_selector("#overdue-list li.empty:has-text('Nothing overdue')")
    entry.click()
    sup.wait_for_selector(f'#appeals-pane[data-selected="{appeal["id"]}"]')
    sup.fill("#reviewer-form [name=reviewer_id]", str(world.officer_id))
    sup.click("#reviewer-form button[type=submit]")
    sup.wait_for_selector(f'#appeal-list li[data-id="{appeal["id"]}"][data-state="under_review"]')
    assert sup.locator("#decide-form").is_hidden()  # only the assigned reviewer decides
    # the complaint's term extended once, with the reason (ZRU-445); a contest offers no extension
    assert sup.locator("#extend-form").is_hidden()
    complaint = sup.locator("#appeal-list li[data-id]").filter(has_text="Complaint")
    complaint_id = int(complaint.get_attribute("data-id"))
    complaint.click()
    sup.wait_for_selector(f'#appeals-pane[data-selected="{complaint_id}"]')
    assert sup.locator("#appeal-map").is_hidden()  # a general appeal has no evidence bundle
    sup.click("#extend-form button[type=submit]")  # no reason: refused in the form
    assert sup.locator("#appeal-error").inner_text() == "A reasoned text is required."
    sup.fill("#extend-form [name=reason]", "The device maker's report on the strap is awaited.")
    sup.click("#extend-form button[type=submit]")
    sup.wait_for_selector("#appeal-detail .steps li:has-text('report on the strap')")
    assert sup.locator("#extend-form button[type=submit]").is_hidden()  # once only

    # the officer reviews: the evidence captured at filing beside the appeal, a reasoned decision
    ofc = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(ofc, proxy.url, "ofc")
    ofc.locator(f'#appeal-list li[data-id="{appeal["id"]}"]').click()
    ofc.wait_for_selector(f'#appeals-pane[data-selected="{appeal["id"]}"]')
    assert ofc.locator("#appeal-evidence li.alert-fix").count() == 1
    assert ofc.locator("#appeal-map path.leaflet-interactive").count() >= 2  # the zone and the alert's fix
    assert "I was at the hospital" in ofc.locator("#appeal-detail").inner_text()
    assert "discharge.png" in ofc.locator("#appeal-detail").inner_text()
    ofc.locator("#appeals-pane").scroll_into_view_if_needed()
    ofc.screenshot(path=str(ARTIFACTS / "console-appeals-queue.png"), full_page=True)
    ofc.select_option("#decide-form [name=decision]", "upheld")
    ofc.click("#decide-form button[type=submit]")  # no reasons: refused in the form
    assert ofc.locator("#appeal-error").inner_text() == "A reasoned text is required."
    ofc.fill("#decide-form [name=reason]", "The hospital confirms the visit; the absence is excused.")
    ofc.click("#decide-form button[type=submit]")
    ofc.wait_for_selector("#appeal-status:has-text('upheld')")
    with world.api() as c:
        stored = c.get(f"/alerts/{alert['id']}").json()
        decided = c.get(f"/appeals/{appeal['id']}").json()
    assert (stored["status"], stored["resolution"]) == ("resolved", "excused")
    assert decided["state"] == "upheld" and decided["reviewer_id"] == world.officer_id

    # the appellant reads the decision and its notice, in Uzbek too
    phone.reload()
    done = phone.locator(f'.appeal-card[data-id="{appeal["id"]}"][data-state=upheld]')
    done.wait_for()
    assert "Your appeal was upheld. Reasons: The hospital confirms the visit" in done.inner_text()
    assert "Dear appellant, your appeal has been decided" in done.locator(".notices").inner_text()
    extended = phone.locator(f'.appeal-card[data-id="{complaint_id}"] .notice-extension')
    assert "Dear appellant, the time to decide your appeal has been extended to" in extended.inner_text()
    assert "report on the strap is awaited" in extended.inner_text()
    phone.screenshot(path=str(ARTIFACTS / "appellant-360px-decided.png"), full_page=True)
    phone.select_option("#lang", "uz")
    phone.wait_for_selector(f'.appeal-card[data-id="{appeal["id"]}"] .status-text:has-text("qanoatlantirildi")')
    assert "Men haqimdagi ogohlantirishlar" in phone.locator("#app h2").first.inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    for page in (phone, sup, ofc):
        assert page.js_errors == []


def test_an_expired_session_refreshes_then_returns_to_sign_in(world: World, proxy: CutProxy,
                                                              page_factory: Any) -> None:
    page = page_factory(viewport={"width": 1200, "height": 800})
    sign_in(page, proxy.url, "ofc")
    page.wait_for_selector('#feed-state[data-state="live"]')
    session = page.evaluate("JSON.parse(sessionStorage.getItem('nazorat.session'))")
    assert set(session) == {"access", "refresh", "expires"} and session["access"] not in page.url
    # the access token is no longer accepted: one refresh, and the officer stays signed in
    page.evaluate("s => sessionStorage.setItem('nazorat.session', JSON.stringify({...s, access: 'x.y.z'}))", session)
    page.reload()
    page.wait_for_selector('#feed-state[data-state="live"]')
    assert page.locator("#whoami").inner_text() == "ofc · officer"
    # a spent refresh token (single use): back to the sign-in form, saying why
    page.evaluate("s => sessionStorage.setItem('nazorat.session', JSON.stringify({...s, access: 'x.y.z'}))", session)
    page.reload()
    page.wait_for_selector("#signin-view:not([hidden])")
    assert page.locator("#signin-message").inner_text() == "Your session has expired. Please sign in again."
    assert page.evaluate("sessionStorage.getItem('nazorat.session')") is None


def test_replay_seeks_along_the_track_and_jumps_to_an_alert(world: World, proxy: CutProxy,
                                                            page_factory: Any) -> None:
    times = [world.t0 + i * 60_000 for i in range(6)]
    for i, t_ms in enumerate(times):  # a walk at home, then out of it (the alert)
        world.publish("s-replay-dev", HOME[0] - 0.001 + i * 0.0004, HOME[1], t_ms)
    wait_for(lambda: len(world.get("/subjects/s-replay/positions")), lambda n: n == 6)
    world.publish("s-replay-dev", *VICTIM, world.t0 + 20 * 60_000)
    wait_for(lambda: world.alerts("s-replay"), lambda alerts: len(alerts) == 1)
    alert = world.alerts("s-replay")[0]

    page = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(page, proxy.url, "ofc")
    page.wait_for_selector('#feed-state[data-state="live"]')
    page.select_option("#filters [name=subject_id]", "s-replay")
    page.wait_for_selector('#map[data-loaded="s-replay:"]')
    page.click("#replay summary")
    page.click("#replay-form button[type=submit]")  # the last 24 h in the subject's zone
    page.wait_for_selector('#replay-form[data-loaded="s-replay:7"]')
    text = page.locator("#replay-time")
    first = text.inner_text()
    assert first.startswith("Fix 1/7: ") and "(Asia/Tashkent)" in first
    assert page.locator("#map path.replay-marker").count() == 1
    page.focus("#replay-slider")
    page.keyboard.press("End")  # seek to the end of the range: the last fix
    page.wait_for_selector('#replay-time:has-text("Fix 7/7")')
    assert text.inner_text() != first
    # playing moves the replay clock (64x simulated)
    page.keyboard.press("Home")
    clock = text.inner_text()
    page.click("#replay-play")
    page.wait_for_function("t => document.querySelector('#replay-time').textContent !== t", arg=clock)
    page.click("#replay-play")
    assert page.locator("#replay-play").get_attribute("data-playing") == "false"
    # "Replay" on the alert's row: the range around its fix, seeked to it
    row(page, alert["id"]).locator("button.jump").click()
    page.wait_for_function("ms => Date.parse(document.querySelector('#replay-time').dataset.fix) === ms",
                           arg=_ms(alert["fix_time"]))
    assert page.locator("#replay-slider").get_attribute("max") == "3600"  # 30 min either side of the fix
    assert page.locator("#replay-time").inner_text().startswith("Fix 7/7: ")
    # the subject card: identity (the officer sees PINFL and address), term, device, open alert
    page.wait_for_selector('#subject-info[data-loaded="s-replay"]')
    card = page.locator("#subject-info").inner_text()
    print(f"\nsubject card:\n{card}")
    assert "31501901234566" in card and "Tashkent, Chilonzor 9-12" in card and "masked" not in card
    assert "s-replay-dev" in card and "no status report yet" in card  # GET /devices/{id}: last_status null
    open_alerts = page.locator("#card-devices dt:has-text('Open alerts') + dd").inner_text()
    assert open_alerts == "1"
    assert page.locator("#card-term").inner_text().count("2036-01-01") == 1
    page.locator("#replay").screenshot(path=str(ARTIFACTS / "console-replay.png"))
    page.locator("#detail-pane").screenshot(path=str(ARTIFACTS / "console-replay-map-card.png"))
    assert page.js_errors == []


def _ms(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def test_a_zone_edited_gets_a_new_version_in_its_history(world: World, proxy: CutProxy, page_factory: Any) -> None:
    page = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(page, proxy.url, "sup")
    page.wait_for_selector('#feed-state[data-state="live"]')
    page.select_option("#filters [name=subject_id]", "s-edit")
    page.wait_for_selector('#map[data-loaded="s-edit:"]')
    page.click("#zone-edit summary")
    page.select_option("#zone-pick", "s-edit-home")
    page.wait_for_selector('#zone-versions[data-count="1"]')
    page.fill("#zone-edit-form [name=buffer_m]", "25")
    page.click("#zone-add-window")  # weekdays 22:00-24:00 by default
    page.click("#zone-edit-form button[type=submit]")
    page.wait_for_selector('#zone-edit-message[data-version="2"]')
    page.wait_for_selector('#zone-versions li[data-version="2"]')
    assert "Buffer (m): 25" in page.locator('#zone-versions li[data-version="2"]').inner_text()
    versions = world.get("/zones/s-edit-home/versions")
    assert [v["version"] for v in versions] == [1, 2]
    assert (versions[0]["buffer_m"], versions[1]["buffer_m"]) == (0, 25)
    assert versions[1]["schedule"] == [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "24:00"}]
    assert versions[1]["geometry"] == versions[0]["geometry"] and versions[1]["change"] == "update"
    page.locator("#zone-edit").screenshot(path=str(ARTIFACTS / "console-zone-versions.png"))
    assert page.js_errors == []


def test_the_subject_card_shows_what_the_api_masks_for_an_admin(world: World, proxy: CutProxy,
                                                               page_factory: Any) -> None:
    world.publish_status("s-replay-dev", {"t": world.t0 + 50 * 60_000, "strap": "closed", "bat": 63, "chg": True,
                                           "case": "closed"})
    wait_for(lambda: world.get("/devices/s-replay-dev")["last_status"], lambda st: st and st["battery_pct"] == 63)
    page = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(page, proxy.url, "adm")
    page.wait_for_selector('#feed-state[data-state="live"]')
    page.select_option("#filters [name=subject_id]", "s-replay")
    page.wait_for_selector('#subject-info[data-loaded="s-replay"]')
    field = lambda name: page.locator(f"#card-identity dt:text-is('{name}') + dd").inner_text()  # noqa: E731
    assert field("Name") == "Person s-replay" and field("Date of birth") == "1990-01-15"
    assert [field(f) for f in ("PINFL", "Address", "Phone", "Photo")] == [
        "masked for your role", "masked for your role", "—", "none"]  # phone and photo: none on file
    with world.api() as c:
        masked = set(c.get("/subjects/s-replay").json()["masked"])  # the bootstrap token: an admin too
    assert masked == {"pinfl", "address"}
    status = page.locator("#card-devices dt:text-is('Status') + dd").inner_text()  # GET /devices/{id}'s last_status
    assert status.startswith("battery: 63 % (charging) · strap: closed · case open: no · "), status
    page.locator("#subject-details").screenshot(path=str(ARTIFACTS / "console-subject-card-admin.png"))
    assert page.js_errors == []


def test_a_supervisor_sees_escalations_and_filters_by_officer(world: World, proxy: CutProxy,
                                                              page_factory: Any) -> None:
    with world.api() as c:
        _subject(c, "s-esc", world.officer_id, home=False)
        sup = next(a["id"] for a in c.get("/accounts").json() if a["username"] == "sup")
    world.publish("s-esc-dev", *VICTIM, world.t0 + 40 * 60_000)  # inside the exclusion zone
    (alert,) = wait_for(lambda: world.alerts("s-esc"), lambda rows: len(rows) == 1)
    with psycopg.connect(world.stack.database_url) as conn:  # as the escalation job leaves it
        conn.execute("UPDATE alerts SET escalation_level = 1, escalated_at = now(), escalated_to = %s, assigned_to = %s,"
                     " created_at = now() - interval '25 minutes' WHERE id = %s", (sup, world.officer_id, alert["id"]))
    page = page_factory(viewport={"width": 1400, "height": 1000})
    sign_in(page, proxy.url, "sup")
    page.wait_for_selector('#feed-state[data-state="live"]')
    item = page.locator(f'#escalation-list li[data-id="{alert["id"]}"]')
    item.wait_for()
    assert "escalation level 1" in item.inner_text()
    assert "25 min" in item.inner_text() or "26 min" in item.inner_text()  # unacknowledged for
    item.click()
    page.wait_for_selector('#subject-info[data-loaded="s-esc"]')
    assert world.get(f"/alerts/{alert['id']}")["id"] == alert["id"]
    # the officer filter: the unit's officers by name, from GET /units/hq/officers
    options = page.locator("#filters [name=officer] option").all_inner_texts()
    assert options == ["any", "ofc", "sup"]
    page.select_option("#filters [name=officer]", label="ofc")
    page.click("#filters button[type=submit]")
    page.wait_for_function(f"nazoratConsole.filter.assigned_to === {world.officer_id}")
    page.wait_for_selector("#alert-list:not([data-loading])")  # the filtered page is in
    page.wait_for_selector(f'#alert-list li[data-id="{alert["id"]}"]')
    shown = page.evaluate("[...document.querySelectorAll('#alert-list li[data-id]')].map((li) => +li.dataset.id)")
    assigned = {a["id"] for a in world.get("/alerts", assigned_to=world.officer_id, limit=1000)}
    assert shown and set(shown) <= assigned
    page.locator("#escalations-pane").screenshot(path=str(ARTIFACTS / "console-escalations.png"))
    page.screenshot(path=str(ARTIFACTS / "console-supervisor-escalations.png"), full_page=True)
    assert page.js_errors == []

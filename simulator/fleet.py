"""A simulated device fleet: supervised persons walking around their homes, some of them
wandering out of home or into a victim's exclusion zone.

It talks to Nazorat only through its public interfaces: the registry is set up through
the HTTP API, and devices publish wire-format v1 fixes over MQTT. It imports nothing of
the engine but ``telemetry.wire``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiomqtt

from telemetry.wire import encode_fix, encode_payload, fixes_topic, status_topic

TASHKENT = (69.2401, 41.2995)
M_PER_DEG_LAT = 111_320.0


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))), lat + north_m / M_PER_DEG_LAT)


def _square(lon: float, lat: float, half_m: float) -> list[list[float]]:
    corners = [(-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m), (-half_m, -half_m)]
    return [list(_offset(lon, lat, e, n)) for e, n in corners]


@dataclass
class SimDevice:
    device_id: str
    subject_id: str
    home: tuple[float, float]
    behaviour: str  # "compliant", "wanders_out", "enters_exclusion"
    target: tuple[float, float]
    seq: int = 0
    pos: tuple[float, float] = (0.0, 0.0)


@dataclass
class Fleet:
    devices: list[SimDevice]
    subjects: list[dict[str, Any]]
    zones: list[dict[str, Any]]


def build_fleet(n_devices: int, *, seed: int = 1, prefix: str = "sim") -> Fleet:
    """Deterministic fleet: every 5th subject wanders out of home, every 7th heads into
    its exclusion zone (a victim's home 300 m away), the rest stay home."""
    rng = random.Random(seed)
    devices, subjects, zones = [], [], []
    for i in range(n_devices):
        sid = f"{prefix}-subject-{i:04d}"
        home = _offset(*TASHKENT, rng.uniform(-8000, 8000), rng.uniform(-8000, 8000))
        victim = _offset(*home, 300.0, 0.0)
        behaviour = "enters_exclusion" if i % 7 == 3 else ("wanders_out" if i % 5 == 1 else "compliant")
        target = victim if behaviour == "enters_exclusion" else (
            _offset(*home, 0.0, 400.0) if behaviour == "wanders_out" else home)
        subjects.append({"id": sid, "full_name": f"Simulated person {i}", "order_type": "house_arrest"})
        zones.append({"id": f"{sid}-home", "name": "home", "kind": "inclusion", "subject_id": sid,
                      "geometry": {"type": "Polygon", "coordinates": [_square(*home, 60.0)]}, "buffer_m": 5.0})
        zones.append({"id": f"{sid}-victim", "name": "victim's home", "kind": "exclusion", "subject_id": sid,
                      "geometry": {"type": "Point", "coordinates": list(victim)}, "radius_m": 100.0})
        devices.append(SimDevice(f"{prefix}-dev-{i:04d}", sid, home, behaviour, target, pos=home))
    return Fleet(devices, subjects, zones)


def _post(api_url: str, token: str, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        api_url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already there from an earlier run: fine
            raise


def register_fleet(api_url: str, token: str, fleet: Fleet) -> None:
    """Create the fleet's subjects, devices and zones through the public API (idempotent)."""
    for s in fleet.subjects:
        _post(api_url, token, "/subjects", s)
    for d in fleet.devices:
        _post(api_url, token, "/devices", {"id": d.device_id, "subject_id": d.subject_id})
    for z in fleet.zones:
        _post(api_url, token, "/zones", z)


def step(dev: SimDevice, rng: random.Random, dt_s: float) -> tuple[float, float]:
    """Walk toward the target at ~1.4 m/s with jitter; compliant devices jitter at home."""
    lon, lat = dev.pos
    tlon, tlat = dev.target
    m_lon = M_PER_DEG_LAT * math.cos(math.radians(lat))
    de, dn = (tlon - lon) * m_lon, (tlat - lat) * M_PER_DEG_LAT
    dist = math.hypot(de, dn)
    speed = 1.4 * dt_s * 5  # accelerated walk so the demo shows alerts within seconds
    if dist > speed:
        de, dn = de / dist * speed, dn / dist * speed
    de += rng.gauss(0, 2.0)
    dn += rng.gauss(0, 2.0)
    dev.pos = _offset(lon, lat, de, dn)
    return dev.pos


async def publish(mqtt_url: str, fleet: Fleet, *, interval_s: float = 1.0, duration_s: float | None = None,
                  stop: asyncio.Event | None = None, seed: int = 2, batch: int = 1,
                  credentials: dict[str, str] | None = None) -> int:
    """Publish one fix per device every ``interval_s`` (``batch`` fixes per message, as a
    device uploading buffered fixes would). With ``credentials`` (device id -> password)
    every device has its own connection and login, as on a broker that enforces
    per-device ACLs; otherwise one shared connection. Returns the number of fixes sent."""
    u = urlparse(mqtt_url)
    host, port = u.hostname or "127.0.0.1", u.port or 1883
    rng = random.Random(seed)
    sent = 0
    started = time.monotonic()
    buffers: dict[str, list[dict[str, Any]]] = {d.device_id: [] for d in fleet.devices}
    async with contextlib.AsyncExitStack() as stack:
        if credentials is None:
            shared = await stack.enter_async_context(aiomqtt.Client(
                host, port, username=u.username, password=u.password,
                identifier=f"nazorat-sim-{rng.getrandbits(32):08x}"))
            clients = {d.device_id: shared for d in fleet.devices}
        else:
            # each device's last will tells the engine at once when its connection dies
            clients = {d.device_id: await stack.enter_async_context(aiomqtt.Client(
                host, port, username=d.device_id, password=credentials[d.device_id], identifier=d.device_id,
                will=aiomqtt.Will(status_topic(d.device_id),
                                  json.dumps({"t": int(time.time() * 1000), "online": False}).encode(), qos=1)))
                for d in fleet.devices}
        tick = 0
        while not (stop is not None and stop.is_set()):
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            now_ms = int(time.time() * 1000)
            if tick % 10 == 0:  # status reports; one device in 13 opens its strap after a while
                for k, d in enumerate(fleet.devices):
                    strap = "opened" if k % 13 == 5 and tick >= 20 else "closed"
                    body = {"t": now_ms, "bat": max(1.0, 95.0 - tick * 0.05 - k % 7), "chg": False, "strap": strap,
                            "case": "closed", "gps": True}
                    await clients[d.device_id].publish(status_topic(d.device_id), json.dumps(body).encode(), qos=1)
            tick += 1
            for d in fleet.devices:
                lon, lat = step(d, rng, interval_s)
                d.seq += 1
                buffers[d.device_id].append(encode_fix(t_ms=now_ms, lat=lat, lon=lon, acc=rng.uniform(4, 12),
                                                       spd=1.4, src="gps", seq=d.seq))
                if len(buffers[d.device_id]) >= batch:
                    await clients[d.device_id].publish(fixes_topic(d.device_id), encode_payload(buffers[d.device_id]),
                                                       qos=1)
                    sent += len(buffers[d.device_id])
                    buffers[d.device_id] = []
            await asyncio.sleep(interval_s)
    return sent


__all__ = ["Fleet", "SimDevice", "build_fleet", "publish", "register_fleet"]

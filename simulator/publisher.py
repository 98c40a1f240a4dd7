"""Replaying a plan's messages over MQTT (QoS 1), paced by simulated time.

A message planned at simulated second ``s`` is published at ``start + s / compression``
(wall clock). Status reports are stamped with the device's clock when sent (wall time
plus the device's skew); a last will carries the connect time, as the broker's would.
A message with ``repeat`` 2 is published twice (a device resending after a lost PUBACK).

Connections: with ``credentials`` (device id -> password) every device logs in as
itself, with its own client id and a last will, as on a broker that enforces
per-device ACLs; without, ``connections`` shared anonymous connections carry the fleet
(each device always on the same one, so its messages stay in order). One process
publishes some 20k messages/s at best; ``processes`` > 1 splits the devices over
several processes (spawned), each pacing its share against the same start time.

A background fleet (``simulator.background``) is never a list: each publisher process
generates its share's messages as it sends them, merged in time order with its share
of the plan's.
"""

from __future__ import annotations

import heapq
import json
import math
import multiprocessing
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulator.background import BackgroundConfig
from simulator.background import messages as background_messages
from simulator.scenarios import Message
from telemetry.wire import status_topic


@dataclass
class PublishResult:
    messages: int = 0  # publishes, repeats included
    fixes: int = 0  # fixes in them, repeats included
    acked: int = 0
    started_ms: int = 0
    ended_ms: int = 0
    max_lag_s: float = 0.0  # the furthest behind schedule a publish ran
    published: dict[tuple[str, int], int] = field(default_factory=dict)  # (device, device time) -> wall ms
    # wall second -> [messages published (repeats included), distinct fixes in them (a
    # resend counted once: the backlog of stored vs offered compares like with like)]
    per_second: dict[int, list[int]] = field(default_factory=dict)

    def merge(self, other: PublishResult) -> None:
        self.messages += other.messages
        self.fixes += other.fixes
        self.acked += other.acked
        self.started_ms = min(self.started_ms or other.started_ms, other.started_ms)
        self.ended_ms = max(self.ended_ms, other.ended_ms)
        self.max_lag_s = max(self.max_lag_s, other.max_lag_s)
        for k, v in other.published.items():
            self.published.setdefault(k, v)
        for sec, (n, f) in other.per_second.items():
            mine = self.per_second.setdefault(sec, [0, 0])
            mine[0] += n
            mine[1] += f


_MAX_QUEUED = 2000


def ramped(offset_s: float, ramp_s: float) -> float:
    """The wall offset of a message due ``offset_s`` after the start unramped, when the
    rate rises linearly from 0 to full over ``ramp_s``: the first ``ramp_s / 2`` s of the
    schedule are spread over the ramp (offset = t^2 / (2 ramp)), the rest shifted by
    ``ramp_s / 2``."""
    if ramp_s <= 0:
        return offset_s
    if offset_s < ramp_s / 2:
        return math.sqrt(2.0 * ramp_s * offset_s)
    return offset_s + ramp_s / 2
Progress = Callable[[int, int, float], None]  # (messages sent, messages planned, lag seconds)


class _Conn:
    def __init__(self, host: str, port: int, client_id: str, *, username: str | None, password: str | None,
                 will_topic: str | None = None, connect_ms: int = 0) -> None:
        self.acked = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.refused: str | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                        clean_session=True)
        if username is not None:
            c.username_pw_set(username, password)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        if will_topic is not None:
            c.will_set(will_topic, json.dumps({"t": connect_ms, "online": False}), qos=1)
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        c.connect(host, port, keepalive=60)
        c.loop_start()
        self.client = c

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.refused = str(rc) if rc.is_failure else None
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, _rc: Any = None, _p: Any = None) -> None:
        with self._lock:
            self.acked += 1

    def wait_connected(self, timeout_s: float) -> None:
        if not self._connected.wait(timeout_s):
            raise ConnectionError(f"MQTT connection {self.client._client_id!r}: no CONNACK in {timeout_s:g} s")
        if self.refused is not None:
            self.client.loop_stop()
            raise ConnectionError(f"MQTT connection {self.client._client_id!r} refused: {self.refused}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stream(messages: Sequence[Message], background: BackgroundConfig | None, share: int, shares: int,
            start_wall: float, compression: float, ramp_s: float) -> Iterable[Message]:
    """The shard's plan messages, merged in time order with its share of the background
    fleet's (generated as they are sent)."""
    if background is None:
        return messages
    extra = background_messages(background, share, shares, int(start_wall * 1000),
                                wall_offset=lambda t: ramped(t, ramp_s), compression=compression)
    return heapq.merge(messages, extra, key=lambda m: m.sim_s)


def _replay(messages: Iterable[Message], mqtt_url: str, start_wall: float, compression: float, *,
            connections: int, credentials: dict[str, str] | None, progress: Progress | None,
            ack_timeout_s: float | None = None, ramp_s: float = 0.0, planned: int | None = None) -> PublishResult:
    if credentials is not None and not isinstance(messages, Sequence):
        raise ValueError("per-device logins need the devices up front: a background fleet uses shared connections")
    total = planned if planned is not None else len(messages) if isinstance(messages, Sequence) else 0
    u = urlparse(mqtt_url)
    host, port = u.hostname or "127.0.0.1", u.port or 1883
    connect_ms = int(time.time() * 1000)
    conns: dict[str, _Conn] = {}
    shared: list[_Conn] = []
    try:
        if credentials is None:
            shared = [_Conn(host, port, f"nazorat-sim-{uuid.uuid4().hex[:10]}", username=u.username,
                            password=u.password) for _ in range(max(1, connections))]
        else:
            assert isinstance(messages, Sequence)
            for d in sorted({m.device_id for m in messages}):
                conns[d] = _Conn(host, port, d, username=d, password=credentials[d], will_topic=status_topic(d),
                                 connect_ms=connect_ms)
        for c in shared or list(conns.values()):
            c.wait_connected(15.0)
    except BaseException:
        for c in shared or list(conns.values()):
            c.close()
        raise

    def conn_of(device: str) -> _Conn:
        if credentials is not None:
            return conns[device]
        return shared[zlib.crc32(device.encode()) % len(shared)]

    out = PublishResult(started_ms=int(time.time() * 1000))
    next_report = time.monotonic() + 1.0
    for i, m in enumerate(messages):
        due = start_wall + ramped(m.sim_s / compression, ramp_s)
        now = time.time()
        while due - now > 0.001:
            time.sleep(min(due - now, 0.05))
            now = time.time()
        out.max_lag_s = max(out.max_lag_s, now - due)
        now_ms = int(now * 1000)
        if m.payload is not None:
            payload = m.payload
            keys = m.fix_times
        else:
            assert m.status is not None
            t = (connect_ms if m.status.get("online") is False else now_ms) + m.skew_ms
            payload = json.dumps({"t": t, **m.status}, separators=(",", ":")).encode()
            keys = (t,)
        client = conn_of(m.device_id).client
        for _ in range(m.repeat):
            client.publish(m.topic, payload, qos=1)
        # paho rescans its whole outgoing queue on every PUBACK: a long queue (an unpaced
        # replay, a slow broker) makes publishing quadratic, so keep it short
        while len(client._out_messages) > _MAX_QUEUED:
            time.sleep(0.0005)
        out.messages += m.repeat
        out.fixes += m.n_fixes * m.repeat
        sec = out.per_second.setdefault(now_ms // 1000, [0, 0])
        sec[0] += m.repeat
        sec[1] += m.n_fixes
        if m.track:
            for k in keys:
                out.published.setdefault((m.device_id, k), now_ms)
        if progress is not None and time.monotonic() >= next_report:
            progress(i + 1, max(total, i + 1), now - due)
            next_report = time.monotonic() + 1.0
    everyone = shared or list(conns.values())
    deadline = time.monotonic() + (ack_timeout_s if ack_timeout_s is not None else 60.0 + out.messages / 1000.0)
    while sum(c.acked for c in everyone) < out.messages and time.monotonic() < deadline:
        time.sleep(0.02)
    out.acked = sum(c.acked for c in everyone)
    out.ended_ms = int(time.time() * 1000)
    for c in everyone:
        c.close()
    return out


def _child(q: Any, messages: Sequence[Message], mqtt_url: str, start_wall: float, compression: float,
           connections: int, credentials: dict[str, str] | None, ramp_s: float,
           background: BackgroundConfig | None = None, share: int = 0, shares: int = 1) -> None:
    try:
        stream = _stream(messages, background, share, shares, start_wall, compression, ramp_s)
        q.put(("ok", _replay(stream, mqtt_url, start_wall, compression, connections=connections,
                             credentials=credentials, progress=None, ramp_s=ramp_s)))
    except BaseException as exc:  # reported to the parent, which raises
        q.put(("error", f"{type(exc).__name__}: {exc}"))


def publish(messages: Sequence[Message], mqtt_url: str, *, compression: float = 1.0, processes: int = 1,
            connections: int = 2, credentials: dict[str, str] | None = None, progress: Progress | None = None,
            start_delay_s: float = 0.5, ramp_s: float = 0.0, background: BackgroundConfig | None = None
            ) -> PublishResult:
    """Publish ``messages`` (sorted by ``sim_s``) on schedule; returns what was sent, when
    the tracked messages went out, and the PUBACK count. ``ramp_s``: the rate rises
    linearly to full over this many seconds (``ramped``). ``background``: a compliant
    fleet in real time beside the plan, each publisher process generating its share as
    it goes (shared connections only)."""
    start_wall = time.time() + start_delay_s
    if processes <= 1:
        return _replay(_stream(messages, background, 0, 1, start_wall, compression, ramp_s), mqtt_url, start_wall,
                       compression, connections=connections, credentials=credentials, progress=progress,
                       ramp_s=ramp_s, planned=len(messages) + (background.estimated_messages if background else 0))
    shards: list[list[Message]] = [[] for _ in range(processes)]
    for m in messages:
        shards[zlib.crc32(m.device_id.encode()) % processes].append(m)
    ctx = multiprocessing.get_context("spawn")  # fork would copy a parent's threads' locks (the alert watcher)
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(q, shard, mqtt_url, start_wall, compression,
                                                max(1, connections // processes), credentials, ramp_s,
                                                background, k, processes),
                         daemon=True)
             for k, shard in enumerate(shards)]
    for p in procs:
        p.start()
    total = PublishResult()
    errors = []
    for _ in procs:
        status, value = q.get()
        if status == "ok":
            total.merge(value)
        else:
            errors.append(value)
    for p in procs:
        p.join(10)
    if errors:
        raise RuntimeError(f"publisher processes failed: {errors}")
    return total


__all__ = ["Progress", "PublishResult", "publish", "ramped"]

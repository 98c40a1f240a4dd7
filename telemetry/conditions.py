"""Device conditions from status reports: what an officer must hear about the device
itself. Pure: previous state and a new report in, alerts and new state out.

Alerts (each raised on the change, not on every report):
- ``strap_opened`` / ``strap_cut``: the strap left ``closed``
- ``case_tamper``: the case was opened
- ``battery_low`` / ``battery_critical``: the level fell below the profile's thresholds
- ``gps_fix_lost``: reports say "no GPS fix" for longer than the profile allows
- ``device_clock_off``: device time differs from the report's arrival by more than
  allowed. Arrival is when the engine's MQTT client read the report, not when the batch
  is processed, so the engine's own backlog never looks like a skewed clock. Reports
  that may have waited in the broker's queue (taken while more was queued: the engine was
  behind, or catching up after a restart) are judged against their arrival less the
  batch's estimated wait (the median lag of its fix messages,
  ``telemetry.pipeline.delivery_delay_ms``; the estimate only excuses lateness, it never
  makes a report look ahead, and a report it excuses leaves the condition as it was: an
  overestimate, say a batch of store-and-forward uploads, must not clear a clock found
  off, or the next live report alerts it again); without enough fix messages to estimate it,
  only when ahead of their arrival (queueing can only delay a report): one behind it
  then leaves the condition as it was, and the next report taken live decides.
- ``device_offline``: the device's last will (``online: false``), whatever time it
  carries (``is_news``)
``communication_loss`` (nothing heard at all) is found by a periodic check in the
pipeline, since no report arrives to trigger it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from telemetry.model import Status


@dataclass(frozen=True, slots=True)
class Profile:
    battery_low: int = 20
    battery_critical: int = 5
    report_interval_s: int = 300
    grace_s: int = 120
    gps_loss_s: int = 600
    clock_skew_s: int = 120


@dataclass(frozen=True, slots=True)
class DeviceCondition:
    last: Status
    gps_lost_since_ms: int | None = None
    gps_alerted: bool = False
    clock_off: bool = False


def is_news(prev: DeviceCondition | None, status: Status) -> bool:
    """Whether a (newly stored) report can change the device's condition. A last will
    (``online: false``) is news whenever it arrives: the broker publishes it when the
    connection drops, carrying the time the device set at connect, which is usually
    older than the reports sent since. Any other report is news only when it is newer
    than the last one assessed; an older one is stored and changes nothing."""
    if status.online is False or prev is None:
        return True
    return status.time_ms > prev.last.time_ms


def assess(prev: DeviceCondition | None, status: Status, profile: Profile, received_ms: int,
           live: bool = True, waited_ms: int = 0) -> tuple[list[tuple[str, dict[str, object]]], DeviceCondition]:
    """``received_ms``: the report's arrival; ``live``: it was taken with nothing queued
    behind it, so its arrival is its delivery by the broker (see the module docstring);
    ``waited_ms``: the batch's estimated wait in the broker's queue (taken from a
    backlog). A report late by more than allowed is judged against its arrival less that
    wait: still too late, the clock is off; explained by the wait, it is undecided (the
    condition stays as it was: an estimate may excuse a late report, never clear a clock
    found off)."""
    alerts: list[tuple[str, dict[str, object]]] = []
    last = prev.last if prev is not None else None
    if status.online is False:
        alerts.append(("device_offline", {}))
        # keep what the device last said about itself; only "offline" is new. A will
        # carries its connect time, often older than the last report: time never moves back
        merged = (dataclasses.replace(last, time_ms=max(last.time_ms, status.time_ms), online=False)
                  if last else status)
        return alerts, DeviceCondition(merged, prev.gps_lost_since_ms if prev else None,
                                       prev.gps_alerted if prev else False, prev.clock_off if prev else False)
    if status.strap in ("opened", "cut") and (last is None or last.strap != status.strap):
        alerts.append((f"strap_{status.strap}", {"strap": status.strap}))
    if status.case_open and (last is None or not last.case_open):
        alerts.append(("case_tamper", {}))
    if status.battery_pct is not None:
        before = last.battery_pct if last is not None and last.battery_pct is not None else 101.0
        if status.battery_pct < profile.battery_critical <= before:
            alerts.append(("battery_critical", {"battery_pct": status.battery_pct}))
        elif status.battery_pct < profile.battery_low <= before:
            alerts.append(("battery_low", {"battery_pct": status.battery_pct}))
    skew_s = abs(status.time_ms - received_ms) / 1000.0
    clock_off = skew_s > profile.clock_skew_s
    if clock_off and status.time_ms < received_ms:
        undecided = not live  # maybe queued, for how long unknown
        if live and waited_ms:
            # the wait excuses lateness only: it never makes a report look ahead
            judged_ms = max(status.time_ms, received_ms - waited_ms)
            skew_s = (judged_ms - status.time_ms) / 1000.0
            undecided = skew_s <= profile.clock_skew_s
        if undecided:
            clock_off = prev.clock_off if prev is not None else False
    if clock_off and not (prev is not None and prev.clock_off):
        alerts.append(("device_clock_off", {"skew_s": round(skew_s, 1)}))
    since = prev.gps_lost_since_ms if prev is not None else None
    alerted = prev.gps_alerted if prev is not None else False
    if status.gps_fix is False:
        since = status.time_ms if since is None else since
        if not alerted and status.time_ms - since >= profile.gps_loss_s * 1000:
            alerts.append(("gps_fix_lost", {"since_ms": since}))
            alerted = True
    elif status.gps_fix is True:
        since, alerted = None, False
    return alerts, DeviceCondition(status, since, alerted, clock_off)


__all__ = ["DeviceCondition", "Profile", "assess", "is_news"]

"""One simulated run end to end: build the plan, register the fleet through the API,
write the ground truth, replay the messages, and (optionally) verify."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulator.background import BackgroundConfig
from simulator.publisher import Progress, PublishResult, publish
from simulator.registry import Api, register, register_background
from simulator.scenarios import Plan, SimConfig, build
from simulator.truth import RunInfo, write_truth
from simulator.verify import AlertWatcher, Report, wait_for_truth

log = logging.getLogger("simulator")


@dataclass
class RunResult:
    plan: Plan
    run: RunInfo
    published: PublishResult
    report: Report | None
    alert_first_seen: dict[int, int]
    # wall seconds of each step: build, register, before_publish, publish, verify
    phases_s: dict[str, float] = field(default_factory=dict)


def simulate(config: SimConfig, *, api_url: str, token: str, mqtt_url: str, truth_path: str | Path | None = None,
             credentials: Callable[[list[str]], dict[str, str] | None] | dict[str, str] | None = None,
             register_fleet: bool = True, before_publish: Callable[[Plan], None] | None = None,
             processes: int = 1, connections: int = 2, progress: Progress | None = None,
             verify: bool = True, verify_timeout_s: float = 120.0, watch: bool = True,
             ramp_s: float = 0.0, background: BackgroundConfig | None = None) -> RunResult:
    """Run ``config`` against a stack. ``credentials``: per-device MQTT passwords (a
    mapping, or a function of the device ids that returns one; None: anonymous).
    ``before_publish``: a hook after registration (e.g. the device profiles a compressed
    replay needs, see ``Plan.profiles_needed``). With ``verify``, waits up to
    ``verify_timeout_s`` for every injected event to be reported and scores the run.
    ``background``: a compliant fleet reporting in real time beside the plan
    (``simulator.background``; registered with the plan, published with shared
    connections): any alert of one of its devices is false."""
    phases: dict[str, float] = {}
    clock = [time.monotonic()]

    def done(phase: str, what: str) -> None:
        now = time.monotonic()
        phases[phase] = round(now - clock[0], 2)
        clock[0] = now
        log.info("%s in %.1f s", what, phases[phase])

    plan = build(config)
    done("build", f"plan built: {len(plan.devices)} devices, {len(plan.messages)} messages")
    api = Api(api_url, token)
    if register_fleet:
        register(api, plan)
        if background is not None:
            register_background(api, background)
        done("register", "fleet registered through the API")
    if before_publish is not None:
        before_publish(plan)
        done("before_publish", "before-publish hook done")
    run = plan.run_info()
    if background is not None:
        run.background, run.background_s = background.device_ids, background.duration_s
    if truth_path is not None:
        write_truth(truth_path, run, plan.events)
    passwords = credentials([d["id"] for d in plan.devices]) if callable(credentials) else credentials
    watcher = AlertWatcher(api) if watch else None
    if watcher is not None:
        watcher.__enter__()
    try:
        result = publish(plan.messages, mqtt_url, compression=config.compression, processes=processes,
                         connections=connections, credentials=passwords, progress=progress, ramp_s=ramp_s,
                         background=background)
        done("publish", f"published {result.messages} messages")
        run.started_wall_ms = result.started_ms
        run.ended_wall_ms = result.ended_ms
        if truth_path is not None:
            write_truth(truth_path, run, plan.events)
        report = None
        if verify:
            report = wait_for_truth(api, run, plan.events, timeout_s=verify_timeout_s, published=result.published,
                                    first_seen=watcher.first_seen if watcher is not None else None)
            done("verify", "verified")
    finally:
        if watcher is not None:
            time.sleep(0.2)
            watcher.__exit__(None, None, None)
        api.close()
    return RunResult(plan, run, result, report, dict(watcher.first_seen) if watcher is not None else {}, phases)


__all__ = ["RunResult", "simulate"]

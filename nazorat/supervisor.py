"""One owner of a process's tasks: each task restarts with backoff or ends the process.

``Supervisor`` is an async context manager over an ``asyncio.TaskGroup``. Every task runs
inside a wrapper that catches what the task raises (``SystemExit`` too: uvicorn calls
``sys.exit`` when it cannot start), so nothing stops silently:

- the failure is logged with its traceback (``ERROR`` when the task restarts,
  ``CRITICAL`` when it ends the process) and counted in
  ``nazorat_task_failures_total{task}``; ``nazorat_task_up{task}`` is 0 until the task
  runs again, and ``nazorat_task_restarts_total{task}`` counts each restart;
- the task's part ``task.<name>`` in ``telemetry.health.Health`` fails while the task
  waits to restart (a critical task makes ``/readyz`` answer 503) and after a fatal
  failure;
- a task that *returns* while the process is running counts as a failure too.

What each task of ``nazorat serve``/``run`` does on failure (``nazorat.stack.serve``):

============  =============================================================================
task          policy
============  =============================================================================
api           fatal: the process ends non-zero. uvicorn that failed to bind or start, or
              stopped serving, is not restarted in place; the orchestrator restarts the
              process, and a port that cannot be bound should be seen at once.
probes        fatal, as api: the probe port of ``--health-port`` (``nazorat.probes``).
ingest        restart with backoff: the worker closes the pipeline's connection (the
              batch's transaction rolls back) and never acks the failed batch, so the
              broker redelivers it on reconnect (persistent session): nothing is lost. A
              message that fails every time keeps ingest restarting, visible in metrics,
              the log and ``/readyz`` (503), until it is fixed.
fleet         restart with backoff (the demo publisher of ``nazorat run``; registering the
              fleet is idempotent). Not critical for readiness.
readiness     restart with backoff: the watch that evaluates ``Health`` every few seconds,
              sets ``nazorat_ready`` and logs each change. Not critical.
silence_check run inside ingest's loop, between batches (they share the pipeline's database
retention     connection): a failure is logged, counted and shown as ``job.<name>``; the job
              runs at its next turn and ingest goes on (``ingest/worker.py``).
============  =============================================================================

Backoff: 0.5 s doubling to 30 s, with +-50 % jitter, back to 0.5 s after a run that lasted
60 s. Stopping (SIGTERM/SIGINT, or a fatal failure): the ``stop`` event is set, each task's
``on_stop`` hook runs (uvicorn's ``should_exit``), tasks get ``grace_s`` to return, the rest
are cancelled; then ``FatalTaskError`` is raised if a fatal task failed (exit status 1),
else the block ends normally (exit status 0).

A process without the API (``serve --no-api``) has no HTTP port unless it is given
``--health-port N``, which serves ``/healthz`` and ``/readyz`` alone (``nazorat.probes``).
Without it, readiness is seen in the log (the readiness task logs ``not ready: broker
(...), task.ingest (...)`` at WARNING and ``ready`` at INFO at each change; every failure
is logged with its traceback) and in the exit status; its Prometheus metrics are then not
exposed (they are served by the API's ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from nazorat.errors import FatalTaskError
from telemetry import metrics
from telemetry.health import Health

log = logging.getLogger("nazorat.supervisor")


class Policy(enum.Enum):
    RESTART = "restart"
    FATAL = "fatal"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # one of telemetry.metrics.TASKS (a closed set of label values)
    run: Callable[[], Awaitable[None]]  # a fresh coroutine per (re)start
    policy: Policy
    critical: bool = True  # does its failure make the process not ready?
    on_stop: Callable[[], None] | None = None  # asks the task to return (called once, on stop)


class Supervisor:
    def __init__(self, *, stop: asyncio.Event, health: Health, grace_s: float = 20.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0, healthy_after_s: float = 60.0) -> None:
        self._stop = stop
        self._health = health
        self._grace_s = grace_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._healthy_after_s = healthy_after_s
        self._tg: asyncio.TaskGroup | None = None
        self._specs: list[TaskSpec] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._fatal: tuple[str, str] | None = None

    @property
    def fatal(self) -> tuple[str, str] | None:
        """(task, reason) of the fatal failure that stopped the process, if any."""
        return self._fatal

    def start(self, spec: TaskSpec) -> None:
        if self._tg is None:
            raise RuntimeError("start tasks inside 'async with Supervisor(...)'")
        if spec.name not in metrics.TASKS:
            raise ValueError(f"task name {spec.name!r} is not in telemetry.metrics.TASKS")
        self._specs.append(spec)
        self._tasks.append(self._tg.create_task(self._supervise(spec), name=spec.name))

    async def __aenter__(self) -> Supervisor:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._tg is not None
        self._stop.set()
        for spec in self._specs:
            if spec.on_stop is not None:
                try:
                    spec.on_stop()
                except Exception:
                    log.exception("stopping task %s failed", spec.name)
        running = [t for t in self._tasks if not t.done()]
        if running and (et is None or not issubclass(et, asyncio.CancelledError)):
            _, late = await asyncio.wait(running, timeout=self._grace_s)
            for t in late:
                log.error("task %s did not stop within %.0f s; cancelled", t.get_name(), self._grace_s)
        for t in self._tasks:
            t.cancel()  # no-op for those that are done
        # every task is done or cancelled, and the wrappers raise nothing but their own
        # cancellation: the group only waits. The body's own exception propagates unchanged.
        await self._tg.__aexit__(None, None, None)
        if et is None and self._fatal is not None:
            raise FatalTaskError(*self._fatal)

    async def _supervise(self, spec: TaskSpec) -> None:
        name, part = spec.name, f"task.{spec.name}"
        delay = self._backoff_initial_s
        restarts = 0
        while not self._stop.is_set():
            started = time.monotonic()
            metrics.TASK_UP.labels(name).set(1)
            self._health.ok(part, "running", critical=spec.critical, restarts=restarts)
            error: BaseException | None = None
            try:
                await spec.run()
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    metrics.TASK_UP.labels(name).set(0)
                    raise  # we are being cancelled (stopping)
                error = exc  # the task raised CancelledError of its own accord
            except (Exception, SystemExit) as exc:
                error = exc
            if error is None and self._stop.is_set():
                break
            metrics.TASK_UP.labels(name).set(0)
            metrics.TASK_FAILURES.labels(name).inc()
            reason = type(error).__name__ if error is not None else "returned while the process was running"
            if spec.policy is Policy.FATAL:
                log.critical("task %s failed (%s): ending the process", name, reason, exc_info=error)
                self._health.failing(part, f"failed: {reason}", critical=spec.critical, restarts=restarts)
                if self._fatal is None:
                    self._fatal = (name, reason if error is None else f"{reason}: {error}")
                self._stop.set()
                return
            if time.monotonic() - started >= self._healthy_after_s:
                delay = self._backoff_initial_s
            wait = delay * random.uniform(0.5, 1.5)
            delay = min(delay * 2, self._backoff_max_s)
            log.error("task %s failed (%s); restarting in %.1f s", name, reason, wait, exc_info=error)
            self._health.failing(part, f"restarting in {wait:.1f} s after {reason}", critical=spec.critical,
                                 restarts=restarts)
            await _sleep_or_stop(self._stop, wait)
            if self._stop.is_set():
                break
            restarts += 1
            metrics.TASK_RESTARTS.labels(name).inc()
            log.info("task %s restarting (restart %d)", name, restarts)
        metrics.TASK_UP.labels(name).set(0)


async def watch_readiness(health: Health, stop: asyncio.Event, *, every_s: float = 2.0) -> None:
    """Evaluate readiness every ``every_s``: set ``nazorat_ready`` and log each change."""
    was: tuple[bool, tuple[str, ...]] | None = None
    while not stop.is_set():
        r = health.readiness()
        metrics.READY.set(1 if r.ready else 0)
        now = (r.ready, tuple(r.failing))
        if now != was:
            why = ", ".join(f"{n} ({r.parts[n].detail})" for n in r.failing)
            if r.ready:
                log.info("ready")
            elif was is None:
                log.info("not ready yet: %s", why)  # starting
            else:
                log.warning("not ready: %s", why)
            was = now
        await _sleep_or_stop(stop, every_s)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


__all__ = ["Policy", "Supervisor", "TaskSpec", "watch_readiness"]

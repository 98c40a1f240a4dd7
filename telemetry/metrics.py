"""Prometheus metrics of the ingest path (exposed by the API's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter("nazorat_mqtt_messages_received_total", "MQTT messages received by ingest")
FIXES_STORED = Counter("nazorat_fixes_stored_total", "Fixes newly stored in positions")
FIXES_DUPLICATE = Counter("nazorat_fixes_duplicate_total", "Fixes already stored (replays), ignored")
FIXES_LATE = Counter("nazorat_fixes_late_total", "Fixes older than the device's latest evaluated fix")
FIXES_IMPLAUSIBLE = Counter("nazorat_fixes_implausible_total", "Stored fixes flagged implausible", ["flag"])
DEAD_LETTERS = Counter("nazorat_dead_letters_total", "Rejected messages or fixes, by reason code (closed set:"
                       " telemetry.dead_letters.REASON_CODES)", ["reason"])
ALERTS_RAISED = Counter("nazorat_alerts_raised_total", "Alerts stored", ["kind"])
BATCH_SECONDS = Histogram(
    "nazorat_ingest_batch_seconds", "Time to store and evaluate one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_FIXES = Histogram("nazorat_ingest_batch_fixes", "Fixes per batch", buckets=(1, 10, 50, 100, 500, 1000, 5000))
DB_ERRORS = Counter("nazorat_db_errors_total", "Failed batch writes (retried)")
DB_UP = Gauge("nazorat_db_up", "1 while the ingest database connection works")
OPEN_VIOLATIONS = Gauge("nazorat_open_violations", "Violations currently open")
ZONE_COMPILE_ERRORS = Gauge("nazorat_zone_compile_errors", "Zones left out of evaluation because they do not compile")
RULE_ERRORS = Counter("nazorat_rule_errors_total", "Stored fixes whose rule evaluation raised (set aside, recorded)")

# supervision: the closed set of task names (label values) and what happens to each task
TASKS = ("api", "probes", "ingest", "http_ingest", "webhooks", "fleet", "readiness", "silence_check", "retention",
         "outbox", "owntracks_cmd")
TASK_FAILURES = Counter("nazorat_task_failures_total", "Unexpected task failures (logged with a traceback)", ["task"])
TASK_RESTARTS = Counter("nazorat_task_restarts_total", "Task restarts after a failure", ["task"])
TASK_UP = Gauge("nazorat_task_up", "1 while the task runs, 0 while it waits to restart or has ended", ["task"])
INGEST_BACKLOG = Gauge("nazorat_ingest_backlog", "MQTT messages received and not yet stored and acknowledged")
INGEST_LAST_BATCH = Gauge("nazorat_ingest_last_batch_timestamp_seconds", "Unix time of the last committed batch")
MQTT_CONNECTED = Gauge("nazorat_mqtt_connected", "1 while the ingest MQTT session is connected")
READY = Gauge("nazorat_ready", "1 while /readyz would answer 200 (as last evaluated)")
for _task in TASKS:  # every series exists from the start, so rate() and alerts see the first failure
    TASK_FAILURES.labels(_task)
    TASK_RESTARTS.labels(_task)

__all__ = [
    "ALERTS_RAISED",
    "BATCH_FIXES",
    "BATCH_SECONDS",
    "DB_ERRORS",
    "DB_UP",
    "DEAD_LETTERS",
    "FIXES_DUPLICATE",
    "FIXES_IMPLAUSIBLE",
    "FIXES_LATE",
    "FIXES_STORED",
    "INGEST_BACKLOG",
    "INGEST_LAST_BATCH",
    "MESSAGES_RECEIVED",
    "MQTT_CONNECTED",
    "OPEN_VIOLATIONS",
    "READY",
    "RULE_ERRORS",
    "TASKS",
    "TASK_FAILURES",
    "TASK_RESTARTS",
    "TASK_UP",
    "ZONE_COMPILE_ERRORS",
]

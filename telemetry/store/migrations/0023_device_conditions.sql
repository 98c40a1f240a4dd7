-- What the engine knows about a device's condition beyond its last report
-- (telemetry/conditions.py: DeviceCondition): whether its clock is judged off, and since
-- when it has reported "no GPS fix" and whether that was alerted. Kept in the batch's
-- transaction whenever it changes, so an engine that reconnects or restarts resumes it:
-- before, it started again from "clock fine, GPS never lost", and every device whose
-- clock was off raised device_clock_off once more after each reconnect.
CREATE TABLE device_conditions (
    device_id          text PRIMARY KEY,
    clock_off          boolean NOT NULL DEFAULT false,
    gps_lost_since_ms  bigint,
    gps_alerted        boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

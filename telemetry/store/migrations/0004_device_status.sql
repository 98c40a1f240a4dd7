-- Device status reports (battery, strap, case, signal, GPS) and device-condition alerts.
CREATE TABLE device_profiles (
    name               text PRIMARY KEY,
    battery_low        integer NOT NULL DEFAULT 20 CHECK (battery_low BETWEEN 0 AND 100),
    battery_critical   integer NOT NULL DEFAULT 5 CHECK (battery_critical BETWEEN 0 AND 100),
    report_interval_s  integer NOT NULL DEFAULT 300 CHECK (report_interval_s > 0),
    grace_s            integer NOT NULL DEFAULT 120 CHECK (grace_s >= 0),
    gps_loss_s         integer NOT NULL DEFAULT 600 CHECK (gps_loss_s > 0),
    clock_skew_s       integer NOT NULL DEFAULT 120 CHECK (clock_skew_s > 0)
);
INSERT INTO device_profiles (name) VALUES ('default');
ALTER TABLE devices ADD COLUMN profile text NOT NULL DEFAULT 'default' REFERENCES device_profiles(name);

CREATE TABLE device_status (
    device_id    text NOT NULL,
    device_time  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    battery_pct  double precision,
    charging     boolean,
    strap        text CHECK (strap IN ('closed', 'opened', 'cut')),
    case_open    boolean,
    gsm_dbm      double precision,
    gps_fix      boolean,
    online       boolean,
    PRIMARY KEY (device_id, device_time)
);
CREATE INDEX device_status_time_brin ON device_status USING brin (device_time);

-- When each device was last heard from (fix or status), for communication-loss alerts.
CREATE TABLE device_presence (
    device_id     text PRIMARY KEY REFERENCES devices(id),
    last_heard_at timestamptz NOT NULL
);

-- A device-condition alert is backed by a stored status report instead of a fix.
ALTER TABLE alerts
    ALTER COLUMN fix_time DROP NOT NULL,
    ADD COLUMN status_time timestamptz,
    ADD CONSTRAINT alerts_status_fk FOREIGN KEY (device_id, status_time) REFERENCES device_status (device_id, device_time),
    ADD CONSTRAINT alerts_evidence CHECK (fix_time IS NOT NULL OR status_time IS NOT NULL);
CREATE UNIQUE INDEX alerts_one_open_comm_loss ON alerts (device_id) WHERE kind = 'communication_loss' AND status = 'open';

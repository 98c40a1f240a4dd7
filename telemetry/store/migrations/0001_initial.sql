-- Nazorat schema v1: registry, positions, dead letters, violations, alerts, audit.
CREATE TABLE subjects (
    id          text PRIMARY KEY,
    full_name   text NOT NULL,
    category    text,
    order_type  text NOT NULL DEFAULT 'house_arrest',
    timezone    text NOT NULL DEFAULT 'Asia/Tashkent',
    term_start  timestamptz,
    term_end    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id          text PRIMARY KEY,
    kind        text NOT NULL DEFAULT 'ankle_monitor' CHECK (kind IN ('ankle_monitor', 'victim_phone')),
    subject_id  text REFERENCES subjects(id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_subject_idx ON devices (subject_id);

CREATE TABLE zones (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('inclusion', 'exclusion')),
    subject_id  text REFERENCES subjects(id),
    category    text,
    geometry    jsonb NOT NULL,
    radius_m    double precision,
    buffer_m    double precision NOT NULL DEFAULT 0,
    schedule    jsonb NOT NULL DEFAULT '[]',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zones_subject_idx ON zones (subject_id);

-- Idempotence: a fix is identified by (device_id, device_time); replays are no-ops.
CREATE TABLE positions (
    device_id    text NOT NULL,
    device_time  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    subject_id   text,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    accuracy_m   double precision NOT NULL,
    speed_mps    double precision,
    heading_deg  double precision,
    source       text NOT NULL,
    seq          bigint,
    late         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (device_id, device_time)
);
CREATE INDEX positions_time_brin ON positions USING brin (device_time);
CREATE INDEX positions_subject_time_idx ON positions (subject_id, device_time DESC);

CREATE TABLE dead_letters (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    topic         text NOT NULL,
    reason        text NOT NULL,
    payload       bytea NOT NULL,
    payload_size  integer NOT NULL
);
CREATE INDEX dead_letters_time_idx ON dead_letters (received_at DESC);

-- One row per (device, zone) rule break: opened and closed by evaluated fixes.
CREATE TABLE violations (
    id           bigserial PRIMARY KEY,
    subject_id   text NOT NULL,
    device_id    text NOT NULL,
    zone_id      text NOT NULL REFERENCES zones(id),
    opened_at    timestamptz NOT NULL,
    closed_at    timestamptz,
    open_fix_time  timestamptz NOT NULL,
    close_fix_time timestamptz,
    FOREIGN KEY (device_id, open_fix_time) REFERENCES positions (device_id, device_time)
);
CREATE UNIQUE INDEX violations_one_open ON violations (device_id, zone_id) WHERE closed_at IS NULL;

-- No alert without a stored fix behind it: (device_id, fix_time) references positions.
CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,
    severity      text NOT NULL DEFAULT 'high',
    subject_id    text,
    device_id     text NOT NULL,
    zone_id       text,
    violation_id  bigint REFERENCES violations(id),
    fix_time      timestamptz NOT NULL,
    distance_m    double precision,
    details       jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at   timestamptz,
    resolved_by   text,
    resolution    text,
    FOREIGN KEY (device_id, fix_time) REFERENCES positions (device_id, device_time)
);
CREATE INDEX alerts_status_idx ON alerts (status, created_at DESC);
CREATE INDEX alerts_subject_idx ON alerts (subject_id, created_at DESC);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject_id  text,
    target      text,
    remote_addr text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_id, at DESC);

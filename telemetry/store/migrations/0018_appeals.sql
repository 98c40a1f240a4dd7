-- Appeals (issue 12): contests of alerts (criminal-executive matters) and general
-- appeals (E-murojaat, ZRU-445). The workflow and the deadline arithmetic live in
-- telemetry/appeals.py; these tables hold its state and history. Nothing here is a hot
-- table, and nothing points into positions or device_status: a contest's evidence
-- bundle is a snapshot (appeal_evidence), attachments are in their own table.

-- Configurable: the contest deadline (calendar days) and the time zone days are counted in.
CREATE TABLE appeal_settings (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    contest_days  integer NOT NULL DEFAULT 10 CHECK (contest_days BETWEEN 1 AND 365),
    timezone      text NOT NULL DEFAULT 'Asia/Tashkent'
);
INSERT INTO appeal_settings (one) VALUES (true);

CREATE TABLE appeals (
    id              bigserial PRIMARY KEY,
    track           text NOT NULL CHECK (track IN ('contest', 'general')),
    kind            text NOT NULL CHECK (kind IN ('contest', 'application', 'proposal', 'complaint')),
    subject_id      text NOT NULL REFERENCES subjects(id),
    appellant_id    bigint NOT NULL REFERENCES accounts(id),
    alert_id        bigint REFERENCES alerts(id),
    violation_id    bigint REFERENCES violations(id),
    body            text NOT NULL,
    language        text NOT NULL DEFAULT 'uz-Latn',
    state           text NOT NULL DEFAULT 'submitted'
                    CHECK (state IN ('submitted', 'under_review', 'upheld', 'rejected', 'answered')),
    submitted_at    timestamptz NOT NULL,
    needs_study     boolean NOT NULL DEFAULT false,
    due_on          date NOT NULL,
    due_at          timestamptz NOT NULL,
    reviewer_id     bigint REFERENCES accounts(id),
    assigned_by     text,
    assigned_at     timestamptz,
    extended_at     timestamptz,
    extended_by     text,
    extension_reason text,
    decided_at      timestamptz,
    decided_by      text,
    decision_reason text,
    CONSTRAINT appeals_track_kind CHECK ((track = 'contest') = (kind = 'contest')),
    CONSTRAINT appeals_contest_alert CHECK ((track = 'contest') = (alert_id IS NOT NULL)),
    CONSTRAINT appeals_decided CHECK ((state IN ('upheld', 'rejected', 'answered')) = (decided_at IS NOT NULL)),
    CONSTRAINT appeals_extension_once CHECK ((extended_at IS NULL) = (extension_reason IS NULL))
);
CREATE INDEX appeals_subject_idx ON appeals (subject_id, id DESC);
CREATE INDEX appeals_appellant_idx ON appeals (appellant_id, id DESC);
CREATE INDEX appeals_open_due_idx ON appeals (due_at) WHERE state IN ('submitted', 'under_review');
-- one contest in progress per alert
CREATE UNIQUE INDEX appeals_one_open_contest ON appeals (alert_id)
    WHERE track = 'contest' AND state IN ('submitted', 'under_review');

-- Every step, timestamped (by the application's clock, so tests can move time).
CREATE TABLE appeal_events (
    id          bigserial PRIMARY KEY,
    appeal_id   bigint NOT NULL REFERENCES appeals(id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('submitted', 'assigned', 'study', 'extended', 'decided',
                                                'attachment')),
    from_state  text,
    to_state    text NOT NULL,
    note        text,
    due_on      date
);
CREATE INDEX appeal_events_appeal_idx ON appeal_events (appeal_id, id);

-- Notices to the appellant (an extension, a decision): what they read, and when they read it.
CREATE TABLE appeal_notices (
    id          bigserial PRIMARY KEY,
    appeal_id   bigint NOT NULL REFERENCES appeals(id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('extension', 'decision')),
    due_on      date,
    reason      text,
    decision    text,
    read_at     timestamptz
);
CREATE INDEX appeal_notices_appeal_idx ON appeal_notices (appeal_id, id);

-- The evidence bundle of a contest, captured when it is submitted (a GeoJSON
-- FeatureCollection as GET /alerts/{id}/evidence returns it, victim geometry masked).
CREATE TABLE appeal_evidence (
    appeal_id   bigint PRIMARY KEY REFERENCES appeals(id),
    captured_at timestamptz NOT NULL,
    bundle      jsonb NOT NULL
);

-- Attachments: limited in size and type (checked by magic bytes), SHA-256 hashed.
CREATE TABLE appeal_attachments (
    id          bigserial PRIMARY KEY,
    appeal_id   bigint NOT NULL REFERENCES appeals(id),
    filename    text NOT NULL,
    media_type  text NOT NULL CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    size_bytes  integer NOT NULL CHECK (size_bytes > 0),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    content     bytea NOT NULL,
    uploaded_at timestamptz NOT NULL,
    uploaded_by text NOT NULL,
    UNIQUE (appeal_id, sha256)
);
CREATE INDEX appeal_attachments_appeal_idx ON appeal_attachments (appeal_id, id);

-- A contested violation carries the outcome of its contest.
ALTER TABLE violations ADD COLUMN contest text CHECK (contest IN ('upheld', 'rejected'));

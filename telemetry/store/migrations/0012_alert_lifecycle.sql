-- The alert lifecycle: open -> acknowledged (by, when, note) -> resolved with an outcome
-- and a required note; assignment to an officer; reopening with a reason; escalation
-- to the unit's supervisor when unacknowledged past a per-severity time. Every
-- transition is a row of alert_history, whose id is the live feed's event id.

-- Severity per alert type (configurable: edit the rows); the pipeline's default stands
-- for kinds not listed.
CREATE TABLE alert_kinds (
    kind      text PRIMARY KEY,
    severity  text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low'))
);
INSERT INTO alert_kinds (kind, severity) VALUES
    ('strap_cut', 'critical'), ('victim_proximity', 'critical'),
    ('strap_opened', 'high'), ('case_tamper', 'high'), ('exclusion_zone_entered', 'high'),
    ('exclusion_zone_crossed', 'high'), ('inclusion_zone_left', 'high'), ('communication_loss', 'high'),
    ('device_offline', 'high'), ('battery_critical', 'high'),
    ('gps_fix_lost', 'medium'), ('device_clock_off', 'medium'), ('battery_low', 'low');

-- How long an alert of each severity may stay unacknowledged before it is escalated
-- to the unit's supervisor (level 1), and again (level 2).
CREATE TABLE alert_escalation (
    severity  text PRIMARY KEY CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    first_s   integer NOT NULL CHECK (first_s > 0),
    second_s  integer NOT NULL,
    CHECK (second_s > first_s)
);
INSERT INTO alert_escalation (severity, first_s, second_s) VALUES
    ('critical', 300, 900), ('high', 900, 3600), ('medium', 3600, 4 * 3600), ('low', 4 * 3600, 24 * 3600);

ALTER TABLE alerts
    ADD COLUMN assigned_to       bigint REFERENCES accounts(id),
    ADD COLUMN acknowledged_note text,
    ADD COLUMN resolution_note   text,
    ADD COLUMN escalation_level  integer NOT NULL DEFAULT 0 CHECK (escalation_level BETWEEN 0 AND 2),
    ADD COLUMN escalated_at      timestamptz,
    ADD COLUMN escalated_to      bigint REFERENCES accounts(id),
    -- what the alert was raised under: the rule (its kind) and the zone's row hash
    -- (until zones are versioned in the registry)
    ADD COLUMN zone_version      text;
CREATE INDEX alerts_unacknowledged_idx ON alerts (created_at) WHERE status = 'open' AND escalation_level < 2;

CREATE TABLE alert_history (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts(id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('raised', 'acknowledged', 'assigned', 'resolved', 'reopened',
                                                'escalated')),
    from_status text,
    to_status   text NOT NULL,
    note        text,
    outcome     text,
    assigned_to bigint,
    level       integer
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, id);

CREATE FUNCTION alerts_classify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.severity := coalesce((SELECT severity FROM alert_kinds WHERE kind = NEW.kind), NEW.severity);
    IF NEW.zone_id IS NOT NULL AND NEW.zone_version IS NULL THEN
        NEW.zone_version := (SELECT encode(sha256(convert_to(to_jsonb(z)::text, 'UTF8')), 'hex')
                             FROM zones z WHERE z.id = NEW.zone_id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_classify BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_classify();

CREATE FUNCTION alerts_raised() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_history (alert_id, at, actor, action, to_status) VALUES (NEW.id, NEW.created_at, 'system',
                                                                               'raised', NEW.status);
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_raised AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_raised();

-- One notification per event, its id in the payload: every API process's one listening
-- connection wakes its streams, which read the rows (in their caller's scope) from here.
CREATE FUNCTION alert_history_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nazorat_alert_events', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER alert_history_notify AFTER INSERT ON alert_history FOR EACH ROW EXECUTE FUNCTION alert_history_notify();

-- Alerts raised before this migration get their 'raised' event.
INSERT INTO alert_history (alert_id, at, actor, action, to_status)
    SELECT id, created_at, 'system', 'raised', status FROM alerts ORDER BY id;
UPDATE alerts SET resolution = 'confirmed_violation' WHERE resolution = 'confirmed';

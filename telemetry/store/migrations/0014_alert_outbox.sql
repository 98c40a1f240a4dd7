-- Transactional outbox of alerts for integrations (MQTT nazorat/v1/alerts/{subject_id}):
-- a row is written by a trigger in the transaction that inserts the alert, whoever
-- inserts it, and the ingest worker publishes pending rows (oldest first) after each
-- batch, when it (re)connects to the broker and periodically, marking them published
-- only after the broker accepted them. A broker that is down delays an alert, never
-- loses it (at-least-once: a crash between publish and mark may publish it twice).
CREATE TABLE alert_outbox (
    id           bigserial PRIMARY KEY,
    alert_id     bigint NOT NULL REFERENCES alerts(id),
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX alert_outbox_pending_idx ON alert_outbox (id) WHERE published_at IS NULL;

CREATE FUNCTION alerts_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_outbox (alert_id, topic, payload) VALUES (
        NEW.id, 'nazorat/v1/alerts/' || coalesce(NEW.subject_id, '_'),
        jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'severity', NEW.severity, 'subject_id', NEW.subject_id,
                           'device_id', NEW.device_id, 'zone_id', NEW.zone_id, 'distance_m', NEW.distance_m,
                           'fix_time_ms', (extract(epoch FROM NEW.fix_time) * 1000)::bigint,
                           'status_time_ms', (extract(epoch FROM NEW.status_time) * 1000)::bigint,
                           'created_at', NEW.created_at) || NEW.details);
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_outbox AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_outbox();

-- Signed webhooks out (docs/interop.md): per-integration subscriptions, and one delivery
-- per (subscription, event), fanned out by a trigger from the alert outbox of migration
-- 0014, so a delivery exists as soon as the alert's transaction commits, whoever inserted
-- the alert; the engine's delivery loop sends due deliveries and records every attempt.
CREATE TABLE webhook_subscriptions (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    url          text NOT NULL CHECK (url ~ '^https?://'),
    event_types  text[] NOT NULL,  -- 'alert.<kind>' or 'alert.*'
    -- the HMAC key: kept as is (it signs every delivery), shown once, never returned again
    secret       text NOT NULL,
    max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 50),
    active       boolean NOT NULL DEFAULT true,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions(id),
    event_id        text NOT NULL,  -- the idempotency key the receiver sees
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries(id),
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    error       text,
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

CREATE FUNCTION alert_outbox_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload)
    SELECT s.id, 'alert-' || NEW.alert_id, 'alert.' || (NEW.payload->>'kind'),
           jsonb_build_object('id', 'alert-' || NEW.alert_id, 'type', 'alert.' || (NEW.payload->>'kind'),
                              'created_at', NEW.created_at, 'data', NEW.payload)
      FROM webhook_subscriptions s
     WHERE s.active AND ('alert.*' = ANY(s.event_types) OR ('alert.' || (NEW.payload->>'kind')) = ANY(s.event_types))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER alert_outbox_webhooks AFTER INSERT ON alert_outbox FOR EACH ROW EXECUTE FUNCTION alert_outbox_webhooks();

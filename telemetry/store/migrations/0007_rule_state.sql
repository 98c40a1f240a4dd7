-- Restart-safe rule state: the dwell counters of (device, rule) pairs with a pending
-- open or close, written in the transaction of the batch that changes them.
CREATE TABLE rule_state (
    device_id        text NOT NULL,
    rule             text NOT NULL,
    pending_count    integer NOT NULL CHECK (pending_count > 0),
    pending_first_ms bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, rule)
);

-- A violation proven by fixes that arrived after newer ones (store-and-forward upload).
ALTER TABLE violations ADD COLUMN late boolean NOT NULL DEFAULT false;

-- What the engine set aside instead of stopping: a zone that does not compile (left out
-- of evaluation until fixed), a fix whose rule evaluation raised (stored, not evaluated).
CREATE TABLE operational_errors (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('zone_compile', 'rule_error')),
    entity      text NOT NULL,
    fix_time    timestamptz,
    reason      text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    occurrences integer NOT NULL DEFAULT 1,
    resolved_at timestamptz
);
CREATE UNIQUE INDEX operational_errors_open_compile ON operational_errors (kind, entity, reason)
    WHERE kind = 'zone_compile' AND resolved_at IS NULL;
CREATE INDEX operational_errors_recent ON operational_errors (first_seen DESC);

-- Registry (issue 12), part 1: supervision terms with amendment history, device
-- identity and state, device assignment history (who wore which device when), and the
-- officers' task list ("remove device" when a term ends or a device reports after it).

-- A court-ordered supervision term. Rules apply only inside a term in force: status
-- 'active' (or 'ended', for fixes stamped before it ended) and starts_at <= t < ends_at
-- (NULL: open). A subject with no term rows keeps the legacy subjects.term_start/term_end.
CREATE TABLE supervision_terms (
    id            bigserial PRIMARY KEY,
    subject_id    text NOT NULL REFERENCES subjects(id),
    order_type    text NOT NULL CHECK (order_type IN ('house_arrest', 'restriction_of_liberty', 'probation',
                                                      'parole', 'restraining_order')),
    court         text,
    order_number  text,
    order_date    date,
    starts_at     timestamptz,
    ends_at       timestamptz,
    conditions    jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('planned', 'active', 'suspended', 'ended')),
    ended_at      timestamptz,
    version       integer NOT NULL DEFAULT 1,
    created_by    text NOT NULL DEFAULT 'migration',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT supervision_terms_window CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX supervision_terms_subject_idx ON supervision_terms (subject_id, id);

-- Every change of a term: the full row before and after, who, when, why.
CREATE TABLE term_amendments (
    id          bigserial PRIMARY KEY,
    term_id     bigint NOT NULL REFERENCES supervision_terms(id),
    version     integer NOT NULL,
    change      text NOT NULL,
    reason      text,
    before      jsonb,
    after       jsonb NOT NULL,
    amended_by  text NOT NULL,
    amended_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (term_id, version)
);

-- The legacy term columns become each subject's first term row (the order type the
-- subject carried; 'restriction_of_liberty' did not exist before).
INSERT INTO supervision_terms (subject_id, order_type, starts_at, ends_at, status)
SELECT id, CASE WHEN order_type IN ('house_arrest', 'restriction_of_liberty', 'probation', 'parole',
                                    'restraining_order') THEN order_type ELSE 'house_arrest' END,
       term_start, term_end, 'active'
  FROM subjects;
INSERT INTO term_amendments (term_id, version, change, reason, after, amended_by)
SELECT t.id, 1, 'create', 'migrated from subjects.term_start/term_end', to_jsonb(t), 'migration'
  FROM supervision_terms t;

-- Devices: identity and life-cycle state.
ALTER TABLE devices
    ADD COLUMN serial   text,
    ADD COLUMN imei     text CHECK (imei ~ '^[0-9]{15}$'),
    ADD COLUMN model    text,
    ADD COLUMN firmware text,
    ADD COLUMN state    text NOT NULL DEFAULT 'in_stock' CHECK (state IN ('in_stock', 'fitted', 'lost', 'retired'));
UPDATE devices SET state = 'fitted' WHERE subject_id IS NOT NULL;
CREATE UNIQUE INDEX devices_imei_key ON devices (imei) WHERE imei IS NOT NULL;
CREATE UNIQUE INDEX devices_serial_key ON devices (serial) WHERE serial IS NOT NULL;

-- An officer's sex, when recorded: a female subject's device is fitted by a female officer.
ALTER TABLE accounts ADD COLUMN sex text CHECK (sex IN ('F', 'M'));

-- Who wore which device when: [fitted_at, removed_at). fitted_at NULL: since the
-- device's records began (the legacy assignment of devices.subject_id). A fix belongs
-- to the subject whose assignment covers its device time.
CREATE TABLE device_assignments (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices(id),
    subject_id  text NOT NULL REFERENCES subjects(id),
    fitted_at   timestamptz,
    fitted_by   text NOT NULL,
    fitter_account_id bigint REFERENCES accounts(id),
    removed_at  timestamptz,
    removed_by  text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT device_assignments_window CHECK (fitted_at IS NULL OR removed_at IS NULL OR removed_at > fitted_at)
);
CREATE UNIQUE INDEX device_assignments_one_open ON device_assignments (device_id) WHERE removed_at IS NULL;
CREATE INDEX device_assignments_device_idx ON device_assignments (device_id, fitted_at);
INSERT INTO device_assignments (device_id, subject_id, fitted_at, fitted_by, reason)
SELECT id, subject_id, NULL, 'migration', 'migrated from devices.subject_id' FROM devices WHERE subject_id IS NOT NULL;

-- Officers' tasks: 'remove_device' when a term ends with a device still fitted, or when a
-- device reports after its subject's last term ended (the flag: still_reporting, last_fix_at).
CREATE TABLE registry_tasks (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('remove_device')),
    subject_id  text REFERENCES subjects(id),
    device_id   text REFERENCES devices(id),
    term_id     bigint REFERENCES supervision_terms(id),
    reason      text NOT NULL,
    still_reporting boolean NOT NULL DEFAULT false,
    last_fix_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    done_by     text
);
CREATE UNIQUE INDEX registry_tasks_one_open ON registry_tasks (kind, device_id) WHERE done_at IS NULL;
CREATE INDEX registry_tasks_subject_idx ON registry_tasks (subject_id, created_at DESC);

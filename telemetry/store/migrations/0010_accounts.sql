-- Officers' accounts: units, roles, argon2 password hashes, revocable refresh tokens,
-- scoped API keys (hashed), login attempts (rate limit and lockout), caseloads.
CREATE TABLE units (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO units (id, name) VALUES ('hq', 'Headquarters');

CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role          text NOT NULL CHECK (role IN ('admin', 'supervisor', 'officer', 'auditor', 'appellant')),
    unit_id       text NOT NULL DEFAULT 'hq' REFERENCES units(id),
    -- an appellant is linked to exactly one subject; nobody else is
    subject_id    text REFERENCES subjects(id),
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    password_changed_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_appellant_subject CHECK ((role = 'appellant') = (subject_id IS NOT NULL))
);

-- Opaque refresh tokens: only a SHA-256 of the (random, 256-bit) secret is stored.
CREATE TABLE refresh_tokens (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    replaced_by bigint REFERENCES refresh_tokens(id)
);
CREATE INDEX refresh_tokens_account_idx ON refresh_tokens (account_id) WHERE revoked_at IS NULL;

-- API keys for integrations: act as their account, narrowed to their scopes.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    name        text NOT NULL,
    prefix      text NOT NULL UNIQUE,
    key_hash    bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);

CREATE TABLE login_attempts (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    remote_addr text,
    success     boolean NOT NULL
);
CREATE INDEX login_attempts_addr_idx ON login_attempts (remote_addr, at DESC) WHERE NOT success;

-- Caseloads: a subject's officer and unit; every (re)assignment is a row of history.
ALTER TABLE subjects
    ADD COLUMN officer_id bigint REFERENCES accounts(id),
    ADD COLUMN unit_id text REFERENCES units(id);
CREATE INDEX subjects_officer_idx ON subjects (officer_id);
CREATE INDEX subjects_unit_idx ON subjects (unit_id);

CREATE TABLE subject_assignments (
    id          bigserial PRIMARY KEY,
    subject_id  text NOT NULL REFERENCES subjects(id),
    officer_id  bigint REFERENCES accounts(id),
    unit_id     text REFERENCES units(id),
    assigned_by text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    reason      text
);
CREATE INDEX subject_assignments_subject_idx ON subject_assignments (subject_id, id DESC);

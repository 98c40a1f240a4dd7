-- Rule semantics: dwell per zone, authorised absences, bilateral (victim) monitoring.
ALTER TABLE zones
    ADD COLUMN dwell_open_fixes  integer NOT NULL DEFAULT 1 CHECK (dwell_open_fixes BETWEEN 1 AND 100),
    ADD COLUMN dwell_open_s      integer NOT NULL DEFAULT 0 CHECK (dwell_open_s BETWEEN 0 AND 86400),
    ADD COLUMN dwell_close_fixes integer NOT NULL DEFAULT 2 CHECK (dwell_close_fixes BETWEEN 1 AND 100),
    ADD COLUMN dwell_close_s     integer NOT NULL DEFAULT 0 CHECK (dwell_close_s BETWEEN 0 AND 86400);

-- Authorised absences (hospital visit, court hearing): rules off in [starts_at, ends_at).
CREATE TABLE absences (
    id          bigserial PRIMARY KEY,
    subject_id  text NOT NULL REFERENCES subjects(id),
    zone_id     text REFERENCES zones(id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX absences_subject_idx ON absences (subject_id, ends_at);

-- Bilateral monitoring: a victim's phone defines an exclusion circle around its latest fix.
CREATE TABLE victim_links (
    victim_device_id text NOT NULL REFERENCES devices(id),
    subject_id       text NOT NULL REFERENCES subjects(id),
    radius_m         double precision NOT NULL CHECK (radius_m > 0 AND radius_m <= 50000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (victim_device_id, subject_id)
);

ALTER TABLE violations
    ALTER COLUMN zone_id DROP NOT NULL,
    ADD COLUMN victim_device_id text REFERENCES devices(id),
    ADD COLUMN rule text NOT NULL DEFAULT 'zone',
    ADD CONSTRAINT violations_target CHECK (zone_id IS NOT NULL OR victim_device_id IS NOT NULL);
DROP INDEX violations_one_open;
CREATE UNIQUE INDEX violations_one_open ON violations (device_id, coalesce(zone_id, 'victim:' || victim_device_id))
    WHERE closed_at IS NULL;

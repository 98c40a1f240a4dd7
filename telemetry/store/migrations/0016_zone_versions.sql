-- Versioned zones: every change writes a new version (a trigger, so that every writer is
-- versioned, SQL included); violations and alerts record the version number in force when
-- they were raised (zone_revision: alerts.zone_version, from migration 0012, stays the
-- row hash it always was).
ALTER TABLE zones
    ADD COLUMN version    integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE zone_versions (
    zone_id     text NOT NULL REFERENCES zones(id),
    version     integer NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL,
    subject_id  text,
    category    text,
    geometry    jsonb NOT NULL,
    radius_m    double precision,
    buffer_m    double precision NOT NULL,
    schedule    jsonb NOT NULL,
    active      boolean NOT NULL,
    dwell_open_fixes  integer NOT NULL,
    dwell_open_s      integer NOT NULL,
    dwell_close_fixes integer NOT NULL,
    dwell_close_s     integer NOT NULL,
    victim_sensitive  boolean NOT NULL,
    change      text NOT NULL,
    changed_by  text NOT NULL,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (zone_id, version)
);
INSERT INTO zone_versions (zone_id, version, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule,
                           active, dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive,
                           change, changed_by, valid_from)
SELECT id, 1, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, active, dwell_open_fixes,
       dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive, 'create', 'migration', created_at
  FROM zones;

ALTER TABLE violations ADD COLUMN zone_revision integer;
ALTER TABLE alerts ADD COLUMN zone_revision integer;

-- Who changed it: the writer sets nazorat.actor (and nazorat.zone_change) for its
-- transaction; otherwise the database user.
CREATE FUNCTION zones_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.kind, NEW.subject_id, NEW.category, NEW.geometry, NEW.radius_m, NEW.buffer_m, NEW.schedule,
        NEW.active, NEW.dwell_open_fixes, NEW.dwell_open_s, NEW.dwell_close_fixes, NEW.dwell_close_s,
        NEW.victim_sensitive)
       IS DISTINCT FROM
       (OLD.name, OLD.kind, OLD.subject_id, OLD.category, OLD.geometry, OLD.radius_m, OLD.buffer_m, OLD.schedule,
        OLD.active, OLD.dwell_open_fixes, OLD.dwell_open_s, OLD.dwell_close_fixes, OLD.dwell_close_s,
        OLD.victim_sensitive) THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version := OLD.version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER zones_next_version BEFORE UPDATE ON zones FOR EACH ROW EXECUTE FUNCTION zones_next_version();

CREATE FUNCTION zones_record_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    INSERT INTO zone_versions (zone_id, version, name, kind, subject_id, category, geometry, radius_m, buffer_m,
                               schedule, active, dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s,
                               victim_sensitive, change, changed_by)
    VALUES (NEW.id, NEW.version, NEW.name, NEW.kind, NEW.subject_id, NEW.category, NEW.geometry, NEW.radius_m,
            NEW.buffer_m, NEW.schedule, NEW.active, NEW.dwell_open_fixes, NEW.dwell_open_s, NEW.dwell_close_fixes,
            NEW.dwell_close_s, NEW.victim_sensitive,
            coalesce(nullif(current_setting('nazorat.zone_change', true), ''),
                     CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END),
            coalesce(nullif(current_setting('nazorat.actor', true), ''), current_user));
    RETURN NULL;
END $$;
CREATE TRIGGER zones_record_version AFTER INSERT OR UPDATE ON zones FOR EACH ROW
    EXECUTE FUNCTION zones_record_version();

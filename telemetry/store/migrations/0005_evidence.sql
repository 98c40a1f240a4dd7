-- Evidence apart from the bulk tables. TimescaleDB cannot compress or drop chunks that a
-- foreign key points into, and retention drops whole chunks; so nothing references
-- positions or device_status any more. The fix or status report behind an alert or a
-- violation is copied into a plain evidence table by a trigger, in the same transaction as
-- the alert or violation row, whoever writes it (pipeline, silence check, API), and the
-- alert or violation references the copy. Retention and compression then treat the bulk
-- tables freely; evidence rows are never deleted (the foreign keys forbid it).
-- A column added to positions or device_status must be added here too (a test checks).
CREATE TABLE evidence_positions (LIKE positions INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                 PRIMARY KEY (device_id, device_time));
CREATE TABLE evidence_status (LIKE device_status INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                              PRIMARY KEY (device_id, device_time));

-- Copy one stored fix / status report into the evidence table (no-op when already there,
-- or when t is NULL). A reference to a fix that was never stored still fails: the foreign
-- keys below find no evidence row.
CREATE FUNCTION evidence_keep_fix(dev text, t timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO evidence_positions (device_id, device_time, received_at, subject_id, lat, lon, accuracy_m,
                                    speed_mps, heading_deg, source, seq, late, flags)
    SELECT device_id, device_time, received_at, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg, source,
           seq, late, flags
    FROM positions WHERE device_id = dev AND device_time = t
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION evidence_keep_status(dev text, t timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO evidence_status (device_id, device_time, received_at, battery_pct, charging, strap, case_open,
                                 gsm_dbm, gps_fix, online)
    SELECT device_id, device_time, received_at, battery_pct, charging, strap, case_open, gsm_dbm, gps_fix, online
    FROM device_status WHERE device_id = dev AND device_time = t
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION alerts_keep_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evidence_keep_fix(NEW.device_id, NEW.fix_time);
    PERFORM evidence_keep_status(NEW.device_id, NEW.status_time);
    RETURN NEW;
END
$$;

CREATE FUNCTION violations_keep_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evidence_keep_fix(NEW.device_id, NEW.open_fix_time);
    PERFORM evidence_keep_fix(NEW.device_id, NEW.close_fix_time);
    RETURN NEW;
END
$$;

-- BEFORE: the copy exists when the row's foreign keys are checked. UPDATE OF: an officer's
-- acknowledge/resolve does not touch the evidence.
CREATE TRIGGER alerts_keep_evidence BEFORE INSERT OR UPDATE OF device_id, fix_time, status_time ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_keep_evidence();
CREATE TRIGGER violations_keep_evidence BEFORE INSERT OR UPDATE OF device_id, open_fix_time, close_fix_time
    ON violations FOR EACH ROW EXECUTE FUNCTION violations_keep_evidence();

-- Existing alerts and violations: their evidence, while the old foreign keys still
-- guarantee that it is stored.
INSERT INTO evidence_positions (device_id, device_time, received_at, subject_id, lat, lon, accuracy_m, speed_mps,
                                heading_deg, source, seq, late, flags)
SELECT device_id, device_time, received_at, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq,
       late, flags
FROM positions
WHERE (device_id, device_time) IN (SELECT device_id, fix_time FROM alerts
                                   UNION SELECT device_id, open_fix_time FROM violations
                                   UNION SELECT device_id, close_fix_time FROM violations)
ON CONFLICT DO NOTHING;
INSERT INTO evidence_status (device_id, device_time, received_at, battery_pct, charging, strap, case_open, gsm_dbm,
                             gps_fix, online)
SELECT device_id, device_time, received_at, battery_pct, charging, strap, case_open, gsm_dbm, gps_fix, online
FROM device_status
WHERE (device_id, device_time) IN (SELECT device_id, status_time FROM alerts)
ON CONFLICT DO NOTHING;

-- The foreign keys into the bulk tables go (their names differ by how they were created).
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
             WHERE contype = 'f' AND conrelid IN ('alerts'::regclass, 'violations'::regclass)
               AND confrelid IN ('positions'::regclass, 'device_status'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END
$$;

-- ... and point at the evidence instead. Added NOT VALID, then validated: a database whose
-- evidence was already lost (a chunk dropped under an alert by an earlier TimescaleDB
-- setup) still upgrades, with a warning; new rows are checked either way, and
-- telemetry.store.evidence.evidence_gaps() counts what is missing.
ALTER TABLE alerts
    ADD CONSTRAINT alerts_fix_evidence FOREIGN KEY (device_id, fix_time)
        REFERENCES evidence_positions (device_id, device_time) NOT VALID,
    ADD CONSTRAINT alerts_status_evidence FOREIGN KEY (device_id, status_time)
        REFERENCES evidence_status (device_id, device_time) NOT VALID;
ALTER TABLE violations
    ADD CONSTRAINT violations_open_evidence FOREIGN KEY (device_id, open_fix_time)
        REFERENCES evidence_positions (device_id, device_time) NOT VALID,
    ADD CONSTRAINT violations_close_evidence FOREIGN KEY (device_id, close_fix_time)
        REFERENCES evidence_positions (device_id, device_time) NOT VALID;
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
             WHERE conname IN ('alerts_fix_evidence', 'alerts_status_evidence', 'violations_open_evidence',
                               'violations_close_evidence')
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tbl, c.conname);
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING 'evidence missing before this upgrade: % stays NOT VALID (see evidence_gaps)', c.conname;
        END;
    END LOOP;
END
$$;

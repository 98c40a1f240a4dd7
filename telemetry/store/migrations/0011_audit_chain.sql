-- The audit log becomes append-only and hash-chained: each record carries the SHA-256
-- of the previous record and its own hash over (previous hash, its fields). A BEFORE
-- INSERT trigger takes the chain's head row FOR UPDATE, so concurrent writers are
-- serialised and ids follow chain order (the id is drawn after the lock). UPDATE and
-- DELETE raise; `nazorat audit verify` recomputes the chain and names the first
-- record that does not match.
ALTER TABLE audit_log
    ADD COLUMN role      text,
    ADD COLUMN scope     text,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea;

CREATE TABLE audit_head (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id   bigint,
    last_hash bytea
);
INSERT INTO audit_head (one) VALUES (true);

-- The fields a record's hash covers, in a canonical form (jsonb's text is normalised;
-- the time as integer microseconds, independent of the session's time zone). Its
-- arguments are columns, not the row type, so the function does not pin the table.
CREATE FUNCTION audit_record_hash(prev bytea, id bigint, at timestamptz, actor text, role text, action text,
                                  subject_id text, target text, remote_addr text, scope text, details jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(coalesce(prev, '\x'::bytea) || convert_to(jsonb_build_array(
        id, (extract(epoch FROM at) * 1000000)::bigint, actor, role, action, subject_id,
        target, remote_addr, scope, details)::text, 'UTF8'))
$$;

-- Chain the rows written before this migration, in id order.
DO $$
DECLARE r audit_log; h bytea; prev bytea := NULL; last bigint := NULL;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        h := audit_record_hash(prev, r.id, r.at, r.actor, r.role, r.action, r.subject_id, r.target, r.remote_addr,
                               r.scope, r.details);
        UPDATE audit_log SET prev_hash = prev, hash = h WHERE id = r.id;
        prev := h; last := r.id;
    END LOOP;
    UPDATE audit_head SET last_id = last, last_hash = prev;
END $$;

CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE prev bytea;
BEGIN
    SELECT last_hash INTO prev FROM audit_head WHERE one FOR UPDATE;
    NEW.id := nextval(pg_get_serial_sequence('audit_log', 'id'));
    NEW.at := coalesce(NEW.at, now());
    NEW.prev_hash := prev;
    NEW.hash := audit_record_hash(prev, NEW.id, NEW.at, NEW.actor, NEW.role, NEW.action, NEW.subject_id,
                                  NEW.target, NEW.remote_addr, NEW.scope, NEW.details);
    UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash WHERE one;
    RETURN NEW;
END $$;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
ALTER TABLE audit_log ALTER COLUMN hash SET NOT NULL;
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

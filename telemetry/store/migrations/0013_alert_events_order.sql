-- The live feed replays alert_history by id ("everything after Last-Event-ID"). That is
-- only sound if ids become visible in id order: a transaction that drew a lower id
-- must not commit after one that drew a higher id, or a reader that already passed
-- the higher one would never see it. So the id is drawn under a transaction-level
-- advisory lock, held until commit: alert events are committed in id order. (A batch
-- of the pipeline holds it from its first alert to its commit, milliseconds.)
CREATE FUNCTION alert_history_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1312964429);  -- 'NAZM': one lock id for alert events
    NEW.id := nextval(pg_get_serial_sequence('alert_history', 'id'));
    RETURN NEW;
END $$;
CREATE TRIGGER alert_history_order BEFORE INSERT ON alert_history FOR EACH ROW EXECUTE FUNCTION alert_history_order();

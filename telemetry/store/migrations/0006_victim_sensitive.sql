-- Victim-sensitive zones (a victim's home, work): their geometry is shown only to roles
-- that may see victims. New zones default to it when they are exclusion zones of a subject
-- under a restraining order or with a linked victim (telemetry/store/registry.py); the
-- same rule marks the zones stored before this migration.
ALTER TABLE zones ADD COLUMN victim_sensitive boolean NOT NULL DEFAULT false;
UPDATE zones z SET victim_sensitive = true
 WHERE z.kind = 'exclusion'
   AND (EXISTS (SELECT 1 FROM subjects s WHERE s.id = z.subject_id AND s.order_type = 'restraining_order')
        OR EXISTS (SELECT 1 FROM victim_links v WHERE v.subject_id = z.subject_id));

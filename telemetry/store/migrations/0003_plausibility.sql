-- Implausible fixes are kept as evidence but never drive zone state.
ALTER TABLE positions ADD COLUMN flags text[] NOT NULL DEFAULT '{}';
CREATE INDEX positions_flagged_idx ON positions (device_id, device_time) WHERE flags <> '{}';

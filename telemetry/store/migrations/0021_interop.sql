-- Off-the-shelf apps (docs/interop.md): OwnTracks bindings, per-device HTTP secrets for the
-- OsmAnd / Traccar Client protocol, and the OwnTracks messages that are recorded but not
-- trusted (lwt, transition, waypoint(s)).

-- An OwnTracks {user}/{device} pair bound to a registered device. secret_hash is the
-- SHA-256 of the HTTP-mode Basic-auth password (shown once when the binding is made);
-- push_zones: whether setWaypoints may be sent to the phone (docs/interop.md says who).
CREATE TABLE owntracks_bindings (
    ot_user     text NOT NULL CHECK (ot_user ~ '^[A-Za-z0-9_.-]{1,64}$'),
    ot_device   text NOT NULL CHECK (ot_device ~ '^[A-Za-z0-9_.-]{1,64}$'),
    device_id   text NOT NULL REFERENCES devices(id),
    secret_hash bytea NOT NULL,
    push_zones  boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ot_user, ot_device)
);
CREATE UNIQUE INDEX owntracks_bindings_device_idx ON owntracks_bindings (device_id);

-- The OsmAnd / Traccar Client protocol has no authentication of its own: a per-device
-- secret (in the URL path /t/{secret} or as a parameter), stored as its SHA-256.
CREATE TABLE device_http_secrets (
    device_id   text PRIMARY KEY REFERENCES devices(id),
    secret_hash bytea NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Recorded, never trusted for state: an OwnTracks last will (often without tst, and up to
-- ~90 min late), a transition the phone computed, waypoints it defines.
CREATE TABLE interop_events (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL,
    source      text NOT NULL CHECK (source IN ('owntracks')),
    kind        text NOT NULL CHECK (kind IN ('lwt', 'transition', 'waypoint', 'waypoints')),
    device_time timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL
);
CREATE INDEX interop_events_device_idx ON interop_events (device_id, received_at DESC);

-- What another app sent with a fix that a position has no column for (altitude, hdop,
-- unknown OsmAnd keys, OwnTracks' trigger and connection): beside the position, by key.
CREATE TABLE position_attributes (
    device_id   text NOT NULL,
    device_time timestamptz NOT NULL,
    attributes  jsonb NOT NULL,
    PRIMARY KEY (device_id, device_time)
);

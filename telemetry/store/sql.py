"""What the sync (pipeline) and async (API) halves of the storage package share: time
conversions written once, and the channels they announce changes on."""

from __future__ import annotations

ALERTS_CHANNEL = "nazorat_alerts"
REGISTRY_CHANNEL = "nazorat_registry"

#: a bound parameter of epoch milliseconds as a timestamptz
TS_FROM_MS = "(timestamptz 'epoch' + %s * interval '1 millisecond')"


def ms_of(column: str) -> str:
    """A timestamptz column as integer epoch milliseconds."""
    return f"(extract(epoch FROM {column}) * 1000)::bigint"


__all__ = ["ALERTS_CHANNEL", "REGISTRY_CHANNEL", "TS_FROM_MS", "ms_of"]

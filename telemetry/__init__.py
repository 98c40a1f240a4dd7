"""Domain model, processing pipeline and persistence of Nazorat.

Kept light on import: ``telemetry.wire`` (the only module the simulator needs) pulls in
nothing heavy; import ``telemetry.pipeline`` and friends explicitly.
"""

from telemetry.errors import (
    ConflictError,
    DecodeError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    TelemetryError,
)

__all__ = [
    "ConflictError",
    "DecodeError",
    "InvalidInputError",
    "NotFoundError",
    "StorageError",
    "TelemetryError",
]

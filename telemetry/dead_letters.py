"""Dead-letter reasons as a closed set of codes, for metric labels.

A dead letter's ``reason`` is text for the officer or operator reading the record; some
of it comes from the device (an unknown key's name, a parser's message). A Prometheus
label must come from a closed set, or a device can create series at will (50 fixes with
50 different unknown keys made 50 series): ``reason_code`` maps any reason onto
``REASON_CODES``, and anything unforeseen onto ``other``.
"""

from __future__ import annotations

# (code, phrases that mark it), tried in order: the first phrase found in the reason wins
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bad_secret", ("device secret", "owntracks password")),  # before unknown_device: "(or unknown device)"
    ("unknown_device", ("unknown device",)),
    ("unbound_identity", ("unbound owntracks",)),
    ("unsupported_type", ("unsupported owntracks", "encrypted owntracks")),
    ("payload_too_large", ("too large",)),
    ("not_utf8", ("utf-8", "utf8")),
    ("invalid_json", ("not valid json", "json nested")),
    ("invalid_msgpack", ("messagepack", "binary payload")),
    ("bad_topic", (" topic", "device id in topic")),
    ("unknown_key", ("unknown keys",)),
    ("missing_field", ("missing ",)),
    ("unsupported_version", ("version",)),
    ("bad_batch", ("fix array", "too many fixes", "json object or array")),
    ("bad_type", ("must be a json object", "must be an integer", "must be a number", "must be true or false")),
    ("invalid_value", ("must be", "out of range", "not a valid", "needs a utc offset", "finite")),
)
REASON_CODES: tuple[str, ...] = (*(code for code, _ in _RULES), "other")


def reason_code(reason: str) -> str:
    """The closed-set code of a dead letter's reason."""
    text = reason.lower()
    for code, phrases in _RULES:
        if any(p in text for p in phrases):
            return code
    return "other"


__all__ = ["REASON_CODES", "reason_code"]

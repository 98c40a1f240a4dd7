"""Access tokens (HS256 JWTs, short-lived), stream tokens (the same, shorter, typed
``stream`` and good only for the live feed), refresh tokens and API keys (opaque
random strings of which only a SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

_ALG = "HS256"
_ISSUER = "nazorat"
REFRESH_PREFIX = "nzr_"
KEY_PREFIX = "nzk_"


class TokenError(Exception):
    """A token that is malformed, expired, of the wrong type or badly signed."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    account_id: int
    username: str
    role: str
    unit_id: str
    subject_id: str | None
    typ: str


def issue_access(secret: str, *, account_id: int, username: str, role: str, unit_id: str, subject_id: str | None,
                 ttl_s: int, typ: str = "access", now: float | None = None) -> str:
    iat = int(now if now is not None else time.time())
    claims = {"iss": _ISSUER, "sub": str(account_id), "name": username, "role": role, "unit": unit_id,
              "subj": subject_id, "typ": typ, "iat": iat, "exp": iat + ttl_s, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm=_ALG)


def read_access(secret: str, token: str, *, typ: str = "access") -> AccessClaims:
    try:
        c = jwt.decode(token, secret, algorithms=[_ALG], issuer=_ISSUER,
                       options={"require": ["exp", "iat", "sub", "typ"]})
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    if c.get("typ") != typ:
        raise TokenError(f"not an {typ} token")
    try:
        return AccessClaims(int(c["sub"]), str(c["name"]), str(c["role"]), str(c["unit"]), c.get("subj"), typ)
    except (KeyError, ValueError) as exc:
        raise TokenError("malformed claims") from exc


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def make_refresh() -> tuple[str, bytes]:
    """A new refresh token and the hash to store."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    return token, secret_hash(token)


def make_api_key() -> tuple[str, str, bytes]:
    """A new API key ``nzk_<prefix>_<secret>``: (key, prefix, hash of the key)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, secret_hash(key)


def parse_api_key(token: str) -> str | None:
    """The prefix of something shaped like an API key, else None."""
    if not token.startswith(KEY_PREFIX):
        return None
    prefix, sep, rest = token[len(KEY_PREFIX):].partition("_")
    return prefix if sep and len(prefix) == 12 and rest else None


__all__ = ["AccessClaims", "TokenError", "issue_access", "make_api_key", "make_refresh", "parse_api_key",
           "read_access", "secret_hash"]

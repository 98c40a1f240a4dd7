"""Officers' authentication: argon2 passwords, signed access tokens, opaque refresh
tokens and API keys (only hashes stored)."""

from api.auth.config import AuthConfig
from api.auth.passwords import hash_password, verify_password
from api.auth.tokens import (
    AccessClaims,
    TokenError,
    issue_access,
    make_api_key,
    make_refresh,
    parse_api_key,
    read_access,
    secret_hash,
)

__all__ = [
    "AccessClaims",
    "AuthConfig",
    "TokenError",
    "hash_password",
    "issue_access",
    "make_api_key",
    "make_refresh",
    "parse_api_key",
    "read_access",
    "secret_hash",
    "verify_password",
]

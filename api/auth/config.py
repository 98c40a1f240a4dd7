"""What the API needs to know to authenticate (taken from :class:`telemetry.settings.Settings`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from telemetry.settings import Settings


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    access_ttl_s: int = 900
    refresh_ttl_s: int = 14 * 86400
    stream_ttl_s: int = 60
    max_failures: int = 5
    lockout_s: int = 900
    addr_max_failures: int = 20
    addr_window_s: int = 900

    def __post_init__(self) -> None:
        if len(self.jwt_secret.encode()) < 32:
            raise ValueError("the access-token key (NAZORAT_JWT_SECRET) needs at least 32 bytes")

    @classmethod
    def from_settings(cls, settings: Settings, jwt_secret: str | None = None) -> AuthConfig:
        secret = jwt_secret or settings.jwt_secret or secrets.token_urlsafe(32)
        return cls(jwt_secret=secret, access_ttl_s=settings.access_token_ttl_s,
                   refresh_ttl_s=settings.refresh_token_ttl_s, stream_ttl_s=settings.stream_token_ttl_s,
                   max_failures=settings.login_max_failures, lockout_s=settings.lockout_s,
                   addr_max_failures=settings.login_addr_max_failures, addr_window_s=settings.login_addr_window_s)


__all__ = ["AuthConfig"]

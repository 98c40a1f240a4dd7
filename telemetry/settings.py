"""Runtime settings, from the environment (prefix NAZORAT_) or arguments."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAZORAT_", extra="ignore")

    database_url: str | None = None
    mqtt_url: str | None = None
    api_token: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # the HTTP ingest listener (OsmAnd / Traccar Client, OwnTracks HTTP): `run` serves it on
    # this port or 5055; `serve` only when this (or --http-port) is set
    http_port: int | None = Field(None, ge=1, le=65535)
    # webhooks: the first retry's wait (doubling each time, at most an hour)
    webhook_backoff_s: float = Field(2.0, gt=0, le=3600)
    # once stopping, a process still alive after this long exits 1 with its stacks logged
    # (nazorat/exit_watchdog.py); above the supervisor's 20 s grace
    exit_deadline_s: float = Field(45.0, ge=1, le=3600)
    # micro-batching: a batch closes at this many messages or this many ms after its first
    batch_max_messages: int = Field(500, ge=1, le=50_000)
    batch_max_ms: int = Field(20, ge=1, le=10_000)
    mqtt_client_id: str = "nazorat-ingest"
    # the ingest backend: Mosquitto (mqtt_url) or a RabbitMQ cluster (amqp_urls, comma-separated,
    # one per node; partitions as `nazorat broker provision` declared them; deploy/rabbitmq.md)
    broker: Literal["mosquitto", "rabbitmq"] = "mosquitto"
    amqp_urls: str | None = None
    amqp_partitions: int = Field(4, ge=1, le=1024)
    amqp_owned: str | None = None  # the partitions this worker is active on, e.g. "0,2" (default: all)
    amqp_standby_delay_s: float = Field(5.0, ge=0, le=600)
    rabbitmq_http_urls: str | None = None  # management API, for `nazorat broker provision`
    rabbitmq_admin_user: str = "nazorat-admin"
    mqtt_shared_group: str | None = None
    data_dir: str = ".nazorat"
    # keep fixes and status reports this long (evidence behind alerts is always kept)
    retention_days: int = Field(1095, ge=1)
    # officers' sign-in: HS256 key of access tokens (default: a generated key in DATA_DIR/jwt-secret, mode 600)
    jwt_secret: str | None = None
    access_token_ttl_s: int = Field(900, ge=30, le=86400)
    refresh_token_ttl_s: int = Field(14 * 86400, ge=60)
    stream_token_ttl_s: int = Field(60, ge=5, le=3600)
    # lockout after this many failed sign-ins in a row, for lockout_s; and at most
    # login_addr_max_failures failures per address within login_addr_window_s
    login_max_failures: int = Field(5, ge=1)
    lockout_s: int = Field(900, ge=1)
    login_addr_max_failures: int = Field(20, ge=1)
    login_addr_window_s: int = Field(900, ge=1)
    # the deployment's time zone: daily summaries (device_daily) count by its local day
    timezone: str = "Asia/Tashkent"
    # the console's map: an optional tile URL template ({z}/{x}/{y}) of a server the site
    # runs, and its attribution; without it the map has a plain background
    console_tile_url: str | None = None
    console_tile_attribution: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


__all__ = ["Settings"]

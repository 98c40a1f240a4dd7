"""Bodies of the accounts, authentication and caseload routes (Create / Update / Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.auth.passwords import MIN_LENGTH

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
_USERNAME = r"^[A-Za-z0-9_.@-]{1,64}$"
Role = Literal["admin", "supervisor", "officer", "auditor", "appellant"]
KeyScope = Literal["alerts:read", "alerts:write", "registry:read", "registry:write", "positions:read", "audit:read",
                   "accounts:admin", "*"]
Password = Field(min_length=MIN_LENGTH, max_length=256)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str | None = None


class RefreshBody(_Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChange(_Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Password


class PasswordReset(_Strict):
    new_password: str = Password


class UnitCreate(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)


class UnitPublic(UnitCreate):
    model_config = ConfigDict(extra="ignore")
    created_at: datetime


class AccountCreate(_Strict):
    username: str = Field(pattern=_USERNAME)
    role: Role
    unit_id: str = Field("hq", pattern=_ID)
    subject_id: str | None = Field(None, pattern=_ID)
    password: str = Password


class AccountUpdate(_Strict):
    role: Role | None = None
    unit_id: str | None = Field(None, pattern=_ID)
    subject_id: str | None = Field(None, pattern=_ID)
    disabled: bool | None = None


class AccountPublic(BaseModel):
    id: int
    username: str
    role: Role
    unit_id: str
    subject_id: str | None
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime | None


class UnitOfficer(BaseModel):
    """An officer of a unit as a supervisor may see them: the id and the name only."""

    model_config = {"json_schema_extra": {"examples": [{"id": 12, "username": "inspektor.karimov", "role": "officer"}]}}
    id: int
    username: str
    role: Literal["officer", "supervisor"]


class MePublic(BaseModel):
    username: str
    role: str
    account_id: int | None
    unit_id: str | None
    subject_id: str | None
    scope: str
    via: str
    key_scopes: list[str] | None


class ApiKeyCreate(_Strict):
    account_id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=200)
    scopes: list[KeyScope] = Field(min_length=1, max_length=8)


class ApiKeyPublic(BaseModel):
    id: int
    account_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str  # shown once


class AssignmentCreate(_Strict):
    officer_id: int | None = Field(None, ge=1)
    unit_id: str | None = Field(None, pattern=_ID)
    reason: str | None = Field(None, max_length=500)


class AssignmentPublic(BaseModel):
    id: int
    subject_id: str
    officer_id: int | None
    unit_id: str | None
    assigned_by: str
    assigned_at: datetime
    reason: str | None


class AuditRecordPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    subject_id: str | None
    target: str | None
    remote_addr: str | None
    scope: str | None
    details: dict[str, object]
    hash: str


class ChainPublic(BaseModel):
    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str | None


Outcome = Literal["confirmed_violation", "false_alarm", "technical", "excused"]


class AlertAcknowledge(_Strict):
    note: str | None = Field(None, max_length=2000)


class AlertResolveBody(_Strict):
    outcome: Outcome
    note: str = Field(min_length=1, max_length=2000)


class AlertAssign(_Strict):
    officer_id: int = Field(ge=1)


class AlertReopen(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class AlertHistoryPublic(BaseModel):
    id: int
    alert_id: int
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None
    outcome: str | None
    assigned_to: int | None
    level: int | None

"""Bodies of the appeals routes (Create / Update / Public), with OpenAPI examples."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.auth.passwords import MIN_LENGTH
from api.schemas import BIGINT_MAX

_USERNAME = r"^[A-Za-z0-9_.@-]{1,64}$"
Track = Literal["contest", "general"]
State = Literal["submitted", "under_review", "upheld", "rejected", "answered"]
GeneralKind = Literal["application", "proposal", "complaint"]
LanguageTag = Literal["uz-Latn", "en"]
# the appellant's own words: plain text, no control characters but line breaks
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppellantCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "karimov.lawyer", "password": "a long passphrase", "relation": "lawyer"}]})
    username: str = Field(pattern=_USERNAME)
    password: str = Field(min_length=MIN_LENGTH, max_length=256)
    relation: Literal["subject", "relative", "lawyer"] = "subject"


class AppellantPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 12, "username": "karimov.lawyer", "role": "appellant", "subject_id": "S-1001", "unit_id": "u1",
         "created_at": "2026-12-01T09:00:00Z"}]})
    id: int
    username: str
    role: Literal["appellant"]
    subject_id: str
    unit_id: str
    created_at: datetime


class ContestCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"alert_id": 41, "text": "I was at the hospital with my mother; the discharge paper is attached.",
         "language": "en"}]})
    alert_id: int = Field(ge=1, le=BIGINT_MAX)
    text: str = Field(min_length=1, max_length=10_000, pattern=_TEXT)
    language: LanguageTag = "uz-Latn"


class GeneralCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "application", "text": "The strap hurts my ankle; I ask for a smaller strap.", "language": "en"}]})
    kind: GeneralKind
    text: str = Field(min_length=1, max_length=10_000, pattern=_TEXT)
    language: LanguageTag = "uz-Latn"


class ReviewerAssign(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reviewer_id": 7}]})
    reviewer_id: int = Field(ge=1, le=BIGINT_MAX)


class Extension(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "The device maker's report on the strap is awaited.", "until": "2027-01-16"}]})
    reason: str = Field(min_length=1, max_length=2000, pattern=_TEXT)
    until: date | None = Field(None, description="the new last day (default: one month after the current one)")


class Decision(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"decision": "upheld", "reason": "The hospital confirms the visit; the absence is excused."}]})
    decision: Literal["upheld", "rejected", "answered"]
    reason: str = Field(min_length=1, max_length=10_000, pattern=_TEXT)


class AppealSettings(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"contest_days": 10}]})
    contest_days: int = Field(ge=1, le=365)


class AppealSettingsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"contest_days": 10, "timezone": "Asia/Tashkent"}]})
    contest_days: int
    timezone: str


class AppealEventPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    note: str | None
    due_on: date | None
    text: str = Field(description="the step in plain language")


class AppealNoticePublic(BaseModel):
    id: int
    at: datetime
    kind: Literal["extension", "decision"]
    due_on: date | None
    reason: str | None
    decision: str | None
    read_at: datetime | None
    text: str = Field(description="the notice in plain language")


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 3, "appeal_id": 5, "filename": "discharge.pdf", "media_type": "application/pdf", "size_bytes": 48213,
         "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         "uploaded_at": "2026-12-01T09:05:00Z", "uploaded_by": "karimov.lawyer"}]})
    id: int
    appeal_id: int
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    uploaded_by: str


_APPEAL_EXAMPLE: dict[str, Any] = {
    "id": 5, "track": "contest", "kind": "contest", "subject_id": "S-1001", "appellant_id": 12, "alert_id": 41,
    "violation_id": 17, "text": "I was at the hospital.", "language": "en", "state": "under_review",
    "submitted_at": "2026-12-01T09:00:00Z", "needs_study": False, "due_on": "2026-12-11",
    "due_at": "2026-12-11T19:00:00Z", "reviewer_id": 7, "assigned_at": "2026-12-01T10:00:00Z",
    "extended_at": None, "extension_reason": None, "decided_at": None, "decision_reason": None,
    "overdue": False, "decided_late": False,
    "status_text": "An officer is reviewing your appeal. The answer is due by 2026-12-11."}


class AppealPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_APPEAL_EXAMPLE]})
    id: int
    track: Track
    kind: str
    subject_id: str
    appellant_id: int
    alert_id: int | None
    violation_id: int | None
    text: str
    language: str
    state: State
    submitted_at: datetime
    needs_study: bool
    due_on: date = Field(description="the last day of the term (local calendar day)")
    due_at: datetime = Field(description="the instant the term ends (the next local midnight)")
    reviewer_id: int | None
    assigned_at: datetime | None
    extended_at: datetime | None
    extension_reason: str | None
    decided_at: datetime | None
    decision_reason: str | None
    overdue: bool = Field(description="undecided past its deadline")
    decided_late: bool = Field(description="decided after its deadline")
    status_text: str = Field(description="where the appeal stands, in plain language")


class AppealDetail(AppealPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {**_APPEAL_EXAMPLE,
         "events": [{"id": 9, "at": "2026-12-01T09:00:00Z", "actor": "karimov.lawyer", "action": "submitted",
                     "from_state": None, "to_state": "submitted", "note": None, "due_on": "2026-12-11",
                     "text": "Contest of a violation submitted."}],
         "notices": [{"id": 2, "at": "2026-12-03T09:00:00Z", "kind": "decision", "due_on": None,
                      "reason": "The hospital confirms the visit.", "decision": "upheld", "read_at": None,
                      "text": "Dear appellant, your appeal has been decided: upheld. Reasons: The hospital confirms"
                              " the visit."}],
         "attachments": []}]})
    events: list[AppealEventPublic]
    notices: list[AppealNoticePublic]
    attachments: list[AttachmentPublic]


__all__ = [
    "AppealDetail",
    "AppealEventPublic",
    "AppealNoticePublic",
    "AppealPublic",
    "AppealSettings",
    "AppealSettingsPublic",
    "AppellantCreate",
    "AppellantPublic",
    "AttachmentPublic",
    "ContestCreate",
    "Decision",
    "Extension",
    "GeneralCreate",
    "ReviewerAssign",
]

"""Appeals: contests of alerts and general appeals (E-murojaat), docs/appeals.md.

- ``POST /subjects/{id}/appellants``: an officer (own caseload) or supervisor (own unit)
  opens an ``appellant`` account linked to the subject (the subject, a relative, a lawyer).
- An appellant files ``POST /appeals/contests`` (an alert of their subject resolved as a
  confirmed violation; its evidence bundle is captured with it) or ``POST
  /appeals/general`` (application, proposal, complaint), adds files, and reads only their
  own appeals, in plain language (``lang`` or ``Accept-Language``: Uzbek Latin or English).
  The appellant never sees coordinates: the evidence bundle is for the reviewers.
- A supervisor (own unit) assigns a reviewer (never the officer who resolved a contested
  alert), marks a general appeal as needing further study, extends its term once with a
  reason (a notice to the appellant), and lists what is overdue. The assigned reviewer
  decides, with reasons; an upheld contest excuses the alert.

Every step is timestamped by the app's clock and written to the hash-chained audit log.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response

from api.auth import hash_password
from api.deps import DbConn, Principal, require
from api.errors import responses
from api.privacy import audit_read
from api.routes.evidence import evidence_bundle
from api.schemas import BIGINT_MAX, ID_PATTERN
from api.schemas_appeals import (
    AppealDetail,
    AppealPublic,
    AppealSettings,
    AppealSettingsPublic,
    AppellantCreate,
    AppellantPublic,
    AttachmentPublic,
    ContestCreate,
    Decision,
    Extension,
    GeneralCreate,
    LanguageTag,
    ReviewerAssign,
    State,
    Track,
)
from telemetry import appeal_texts as texts
from telemetry import appeals as workflow
from telemetry.errors import NotFoundError
from telemetry.store import accounts as account_store
from telemetry.store import alerts as alert_store
from telemetry.store import appeal_attachments as attachment_store
from telemetry.store import appeals as appeal_store
from telemetry.store import audit as audit_store
from telemetry.store import registry

_ERRORS = responses(401, 403, 404, 409, 413, 422, 503)
router = APIRouter(prefix="/appeals", tags=["appeals"], responses=_ERRORS)
appellants = APIRouter(prefix="/subjects", tags=["appeals"], responses=_ERRORS)
AppealId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="an appeal's id")]
AppealReader = Annotated[Principal, Depends(require("officer", "supervisor", "appellant"))]
Staff = Annotated[Principal, Depends(require("officer", "supervisor"))]
Manager = Annotated[Principal, Depends(require("supervisor"))]
Filer = Annotated[Principal, Depends(require("appellant"))]
Lang = Annotated[LanguageTag | None, Query(description="uz-Latn or en (default: Accept-Language, else uz-Latn)")]
AcceptLanguage = Annotated[str | None, Header(max_length=500)]
_FILENAME = r"^[^\x00-\x1f\x7f/\\]{1,200}$"


def _now(request: Request) -> datetime:
    clock = request.app.state.clock
    now: datetime = clock()
    return now


def _viewer(user: Principal) -> appeal_store.Viewer:
    return appeal_store.Viewer(user.scope, user.account_id, user.role == "appellant")


def _appellant_only(user: Principal) -> None:
    """Appeals are filed by appellant accounts only (an admin has no subject to appeal for)."""
    if user.role != "appellant" or user.subject_id is None or user.account_id is None:
        raise HTTPException(403, "appeals are filed by an appellant account")


def _kind_name(kind: str, lang: str) -> str:
    return texts.text(f"kind.{kind}", lang)


def _status_text(row: dict[str, Any], overdue: bool, lang: str) -> str:
    out = texts.text(f"state.{row['state']}", lang, due_on=row["due_on"].isoformat(), reason=row["decision_reason"])
    if overdue:
        out += " " + texts.text("overdue", lang, due_on=row["due_on"].isoformat())
    return out


def _public(row: dict[str, Any], now: datetime, lang: str) -> dict[str, Any]:
    overdue = workflow.is_overdue(row["state"], row["due_at"], now)
    return {**row, "text": row["body"], "overdue": overdue,
            "decided_late": workflow.decided_late(row["decided_at"], row["due_at"]),
            "status_text": _status_text(row, overdue, lang)}


async def _detail(db: DbConn, row: dict[str, Any], now: datetime, lang: str) -> dict[str, Any]:
    events = [{**e, "text": texts.text(f"event.{e['action']}", lang, kind=_kind_name(row["kind"], lang),
                                        due_on=e["due_on"].isoformat() if e["due_on"] else None, reason=e["note"])}
              for e in await appeal_store.events(db, row["id"])]
    notices = [{**n, "text": texts.text(f"notice.{n['kind']}", lang,
                                         due_on=n["due_on"].isoformat() if n["due_on"] else None, reason=n["reason"],
                                         decision=texts.text(f"decision.{n['decision']}", lang) if n["decision"]
                                         else None)}
               for n in await appeal_store.notices(db, row["id"])]
    return {**_public(row, now, lang), "events": events, "notices": notices,
            "attachments": await attachment_store.list_for(db, row["id"])}


async def _audit(db: DbConn, user: Principal, action: str, row: dict[str, Any], **details: Any) -> None:
    await audit_store.append(db, actor=user.name, action=action, subject_id=row["subject_id"],
                             target=f"appeal:{row['id']}", remote_addr=user.remote_addr,
                             details={"state": row["state"], "due_on": row["due_on"].isoformat(), **details})


# ---- appellant accounts ---------------------------------------------------------------

@appellants.post("/{subject_id}/appellants", status_code=201, response_model=AppellantPublic)
async def create_appellant(subject_id: Annotated[str, Path(pattern=ID_PATTERN)], body: AppellantCreate, db: DbConn,
                           user: Staff) -> dict[str, Any]:
    """An appellant account linked to this subject (the subject, a relative or a lawyer),
    made by the subject's officer or a supervisor of its unit; the password is handed
    over by the officer and changed by the appellant (``POST /auth/password``)."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    owner = await account_store.subject_owner(db, subject_id)
    unit = (owner or {}).get("unit_id") or "hq"
    password_hash = await asyncio.to_thread(hash_password, body.password)
    row = await account_store.create_account(db, username=body.username, role="appellant", unit_id=unit,
                                             subject_id=subject_id, password_hash=password_hash)
    await audit_store.append(db, actor=user.name, action="appellant.create", subject_id=subject_id,
                             target=str(row["id"]), remote_addr=user.remote_addr,
                             details={"username": row["username"], "relation": body.relation})
    return row


# ---- filing -----------------------------------------------------------------------------

@router.post("/contests", status_code=201, response_model=AppealDetail)
async def contest(body: ContestCreate, request: Request, db: DbConn, user: Filer, lang: Lang = None,
                  accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """Contest an alert of the linked subject that was resolved as a confirmed violation.
    Its evidence bundle (fixes, zone version, rule parameters) is captured with it. Due in
    the configured number of days (default 10)."""
    _appellant_only(user)
    assert user.subject_id is not None and user.account_id is not None
    now = _now(request)
    alert_ref = await appeal_store.contestable_alert(db, body.alert_id, user.subject_id)
    row = await appeal_store.create(db, track="contest", kind="contest", subject_id=user.subject_id,
                                    appellant_id=user.account_id, actor=user.name, body=body.text,
                                    language=body.language, now=now, alert_id=body.alert_id,
                                    violation_id=alert_ref["violation_id"])
    alert = await alert_store.get_alert(db, body.alert_id)
    bundle, fixes, masked = await evidence_bundle(db, alert, 600, victims=False)
    await appeal_store.save_evidence(db, row["id"], now, bundle)
    await _audit(db, user, "appeal.submit", row, track="contest", alert_id=body.alert_id, evidence_fixes=fixes,
                 evidence_masked=masked)
    return await _detail(db, row, now, texts.negotiate(lang, accept_language))


@router.post("/general", status_code=201, response_model=AppealDetail)
async def general(body: GeneralCreate, request: Request, db: DbConn, user: Filer, lang: Lang = None,
                  accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """An application, proposal or complaint about the supervision (E-murojaat, ZRU-445):
    due in 15 days (a proposal: one month), one month if it needs further study."""
    _appellant_only(user)
    assert user.subject_id is not None and user.account_id is not None
    now = _now(request)
    row = await appeal_store.create(db, track="general", kind=body.kind, subject_id=user.subject_id,
                                    appellant_id=user.account_id, actor=user.name, body=body.text,
                                    language=body.language, now=now)
    await _audit(db, user, "appeal.submit", row, track="general", kind=body.kind)
    return await _detail(db, row, now, texts.negotiate(lang, accept_language))


# ---- reads --------------------------------------------------------------------------------

@router.get("", response_model=list[AppealPublic])
async def list_appeals(
    request: Request, db: DbConn, user: AppealReader, state: State | None = None, track: Track | None = None,
    subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None, overdue: bool = False,
    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=BIGINT_MAX), lang: Lang = None,
    accept_language: AcceptLanguage = None,
) -> list[dict[str, Any]]:
    """Appeals the caller may see, newest first: an appellant their own; an officer their
    caseload's and those they review; a supervisor their unit's. ``overdue=true``: only
    undecided ones past their deadline, oldest deadline first."""
    now = _now(request)
    rows = await appeal_store.list_appeals(db, _viewer(user), state=state, track=track, subject_id=subject_id,
                                           overdue_at=now if overdue else None, limit=limit, offset=offset)
    await audit_store.append(db, actor=user.name, action="appeals.read", subject_id=subject_id,
                             remote_addr=user.remote_addr, details={"rows": len(rows), "overdue": overdue})
    language = texts.negotiate(lang, accept_language)
    return [_public(r, now, language) for r in rows]


@router.get("/overdue", response_model=list[AppealPublic])
async def overdue(request: Request, db: DbConn, user: Manager, limit: int = Query(100, ge=1, le=1000),
                  lang: Lang = None, accept_language: AcceptLanguage = None) -> list[dict[str, Any]]:
    """The supervisor's overdue list: undecided appeals of their unit past their deadline,
    the longest overdue first."""
    now = _now(request)
    rows = await appeal_store.list_appeals(db, appeal_store.Viewer(user.scope), state=None, track=None,
                                           subject_id=None, overdue_at=now, limit=limit, offset=0)
    await audit_store.append(db, actor=user.name, action="appeals.overdue_read", remote_addr=user.remote_addr,
                             details={"rows": len(rows)})
    language = texts.negotiate(lang, accept_language)
    return [_public(r, now, language) for r in rows]


@router.get("/settings", response_model=AppealSettingsPublic)
async def get_settings(db: DbConn, _user: Manager) -> dict[str, Any]:
    return await appeal_store.get_settings(db)


@router.put("/settings", response_model=AppealSettingsPublic)
async def put_settings(body: AppealSettings, db: DbConn, user: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    """The contest deadline in calendar days (admin; default 10)."""
    before = await appeal_store.get_settings(db)
    row = await appeal_store.set_contest_days(db, body.contest_days)
    await audit_store.append(db, actor=user.name, action="appeal.settings", remote_addr=user.remote_addr,
                             details={"before": before, "after": row})
    return row


@router.get("/{appeal_id}", response_model=AppealDetail)
async def get_appeal(appeal_id: AppealId, request: Request, db: DbConn, user: AppealReader, lang: Lang = None,
                     accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """One appeal with its steps, notices and files, in plain language. When the
    appellant reads it, its notices are marked read."""
    now = _now(request)
    row = await appeal_store.get(db, appeal_id, _viewer(user))
    if user.role == "appellant":
        await appeal_store.mark_notices_read(db, appeal_id, now)
    await _audit(db, user, "appeal.read", row)
    return await _detail(db, row, now, texts.negotiate(lang, accept_language))


_EVIDENCE_EXAMPLE = {"type": "FeatureCollection", "captured_at": "2026-12-01T09:00:00+00:00", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [69.2401, 41.2995]},
     "properties": {"kind": "fix", "role": "alert_fix", "device_time": "2026-11-30T22:14:05+00:00", "accuracy_m": 6.0,
                    "source": "gps"}}],
    "properties": {"alert_id": 41, "kind": "inclusion_zone_left", "rule": "inclusion_zone_left", "severity": "high",
                   "at": "2026-11-30T22:14:05+00:00", "window_s": 600}}


@router.get("/{appeal_id}/evidence", response_description="the GeoJSON FeatureCollection captured at submission",
            responses={200: {"content": {"application/json": {"example": _EVIDENCE_EXAMPLE}}}})
async def appeal_evidence(appeal_id: AppealId, db: DbConn, user: Staff) -> dict[str, Any]:
    """The evidence bundle captured when the contest was submitted (reviewers only; a
    victim-sensitive zone's geometry is null). Audited as a read of coordinates."""
    row = await appeal_store.evidence(db, appeal_id, _viewer(user))
    bundle: dict[str, Any] = row["bundle"]
    fixes = sum(1 for f in bundle.get("features", []) if f.get("properties", {}).get("kind") == "fix")
    appeal = await appeal_store.get(db, appeal_id, _viewer(user))
    await audit_read(db, user, "appeal.evidence_read", rows=fixes, subject_id=appeal["subject_id"],
                     target=f"appeal:{appeal_id}")
    return {**bundle, "captured_at": row["captured_at"].isoformat()}


# ---- steps ----------------------------------------------------------------------------------

@router.post("/{appeal_id}/assign", response_model=AppealPublic)
async def assign(appeal_id: AppealId, body: ReviewerAssign, request: Request, db: DbConn, user: Manager,
                 lang: Lang = None, accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """Assign (or reassign) the reviewer: an officer or supervisor of the supervisor's
    unit, not the officer who resolved a contested alert. submitted -> under_review."""
    now = _now(request)
    reviewer = await appeal_store.reviewer_candidate(db, body.reviewer_id)
    if reviewer is None or (user.role != "admin" and reviewer["unit_id"] != user.unit_id):
        raise NotFoundError("account", str(body.reviewer_id))
    row = await appeal_store.assign(db, appeal_id, appeal_store.Viewer(user.scope), reviewer=reviewer, by=user.name,
                                    now=now)
    await _audit(db, user, "appeal.assign", row, reviewer_id=body.reviewer_id)
    return _public(row, now, texts.negotiate(lang, accept_language))


@router.post("/{appeal_id}/study", response_model=AppealPublic)
async def needs_study(appeal_id: AppealId, request: Request, db: DbConn, user: Staff, lang: Lang = None,
                      accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """A general appeal needs further study: due one month after receipt instead of 15
    days (ZRU-445). By a supervisor of the unit or the assigned reviewer."""
    now = _now(request)
    row = await appeal_store.get(db, appeal_id, _viewer(user))
    _manager_or_reviewer(user, row)
    row = await appeal_store.mark_study(db, appeal_id, _viewer(user), by=user.name, now=now)
    await _audit(db, user, "appeal.study", row)
    return _public(row, now, texts.negotiate(lang, accept_language))


@router.post("/{appeal_id}/extend", response_model=AppealPublic)
async def extend(appeal_id: AppealId, body: Extension, request: Request, db: DbConn, user: Manager,
                 lang: Lang = None, accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """Extend a general appeal's term once, by at most one month, with the reason; the
    appellant receives a notice."""
    now = _now(request)
    row = await appeal_store.extend(db, appeal_id, appeal_store.Viewer(user.scope), reason=body.reason,
                                    until=body.until, by=user.name, now=now)
    await _audit(db, user, "appeal.extend", row, reason=body.reason)
    return _public(row, now, texts.negotiate(lang, accept_language))


@router.post("/{appeal_id}/decide", response_model=AppealPublic)
async def decide(appeal_id: AppealId, body: Decision, request: Request, db: DbConn, user: Staff, lang: Lang = None,
                 accept_language: AcceptLanguage = None) -> dict[str, Any]:
    """The assigned reviewer's reasoned decision: a contest is upheld (the alert is
    resolved as excused and counts as a false alert) or rejected; a general appeal is
    upheld, rejected or answered. The appellant receives a notice."""
    now = _now(request)
    current = await appeal_store.get(db, appeal_id, _viewer(user))
    if current["reviewer_id"] is None or current["reviewer_id"] != user.account_id:
        raise HTTPException(403, "only the assigned reviewer decides")
    row = await appeal_store.decide(db, appeal_id, _viewer(user), decision=body.decision, reason=body.reason,
                                    by=user.name, now=now)
    await _audit(db, user, "appeal.decide", row, decision=body.decision, reason=body.reason,
                 alert_id=row["alert_id"], decided_late=workflow.decided_late(row["decided_at"], row["due_at"]))
    return _public(row, now, texts.negotiate(lang, accept_language))


def _manager_or_reviewer(user: Principal, row: dict[str, Any]) -> None:
    if user.role in ("admin", "supervisor"):
        return
    if row["reviewer_id"] is None or row["reviewer_id"] != user.account_id:
        raise HTTPException(403, "a supervisor or the assigned reviewer")


# ---- attachments ---------------------------------------------------------------------------

_BINARY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}, "example": "%PDF-1.7 ..."}}}}


@router.post("/{appeal_id}/attachments", status_code=201, response_model=AttachmentPublic, openapi_extra=_BINARY)
async def add_attachment(appeal_id: AppealId, request: Request, db: DbConn, user: Filer,
                         filename: Annotated[str, Query(pattern=_FILENAME)]) -> dict[str, Any]:
    """Attach a file to one's own open appeal: the raw bytes as the body (PDF, JPEG or PNG,
    recognised by their content; at most 5 MiB, 5 files). Stored with its SHA-256."""
    _appellant_only(user)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > workflow.MAX_ATTACHMENT_BYTES:
        raise HTTPException(413, f"a file is at most {workflow.MAX_ATTACHMENT_BYTES} bytes")
    content = b""
    async for chunk in request.stream():
        content += chunk
        if len(content) > workflow.MAX_ATTACHMENT_BYTES:
            raise HTTPException(413, f"a file is at most {workflow.MAX_ATTACHMENT_BYTES} bytes")
    now = _now(request)
    row = await attachment_store.add(db, appeal_id, _viewer(user), filename=filename, content=content, by=user.name,
                                     now=now)
    appeal = await appeal_store.get(db, appeal_id, _viewer(user))
    await _audit(db, user, "appeal.attach", appeal, attachment_id=row["id"], sha256=row["sha256"],
                 media_type=row["media_type"], size_bytes=row["size_bytes"])
    return row


_FILE: dict[int | str, dict[str, Any]] = {200: {"description": "the file as it was uploaded",
               "content": {t: {"schema": {"type": "string", "format": "binary"},
                               **({"example": "%PDF-1.7 ..."} if t == "application/pdf" else {})}
                           for t in workflow.MEDIA_TYPES}}}


@router.get("/{appeal_id}/attachments/{attachment_id}", response_class=Response,
            responses={**_FILE, **responses(401, 403, 404, 422, 503)})
async def get_attachment(appeal_id: AppealId, attachment_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], db: DbConn,
                         user: AppealReader) -> Response:
    row = await attachment_store.content(db, appeal_id, attachment_id, _viewer(user))
    appeal = await appeal_store.get(db, appeal_id, _viewer(user))
    await _audit(db, user, "appeal.attachment_read", appeal, attachment_id=attachment_id)
    return Response(bytes(row["content"]), media_type=row["media_type"],
                    headers={"X-Content-Type-Options": "nosniff", "ETag": f'"{row["sha256"]}"',
                             "Content-Disposition": "attachment"})


__all__ = ["appellants", "router"]

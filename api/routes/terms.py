"""Supervision terms (``/subjects/{id}/terms``) with their amendments, and the officers'
task list (``/tasks``: "remove device" when a term ends or a device reports after it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import DbConn, Officer, RegistryReader, RegistryWriter
from api.errors import responses
from api.routes.registry import SubjectId, audited
from api.schemas import BIGINT_MAX
from api.schemas_registry import TaskPublic, TermAmend, TermAmendmentPublic, TermCreate, TermPublic
from telemetry.store import registry
from telemetry.store import terms as term_store

router = APIRouter(prefix="/subjects", tags=["terms"])
tasks = APIRouter(prefix="/tasks", tags=["tasks"])
TermId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="a term's id")]
_ONE = (401, 403, 404, 422, 503)
_WRITE = (401, 403, 404, 409, 413, 422, 503)
_NULLABLE = frozenset({"court", "order_number", "order_date", "starts_at", "ends_at"})


@router.get("/{subject_id}/terms", response_model=list[TermPublic], responses=responses(*_ONE))
async def list_terms(subject_id: SubjectId, db: DbConn, user: RegistryReader) -> list[dict[str, Any]]:
    await registry.get_subject(db, subject_id, scope=user.scope)
    return await term_store.list_terms(db, subject_id)


@router.post("/{subject_id}/terms", status_code=201, response_model=TermPublic, responses=responses(*_WRITE))
async def create_term(subject_id: SubjectId, body: TermCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """A court order's supervision term. Rules apply only while a term is in force: an
    ``active`` term between ``starts_at`` and ``ends_at``; ``planned`` and ``suspended``
    terms silence the subject's rules (docs/registry.md)."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    data = body.model_dump(exclude={"reason"})
    data["conditions"] = body.conditions.model_dump(mode="json")
    row = await term_store.create_term(db, subject_id, {**data, "reason": body.reason}, by=user.name)
    await registry.audit(db, actor=user.name, action="term.create", subject_id=subject_id, target=str(row["id"]),
                         remote_addr=user.remote_addr, details={"before": None, "after": audited(row)})
    return row


@router.get("/{subject_id}/terms/{term_id}", response_model=TermPublic, responses=responses(*_ONE))
async def get_term(subject_id: SubjectId, term_id: TermId, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    await registry.get_subject(db, subject_id, scope=user.scope)
    return await term_store.get_term(db, subject_id, term_id)


@router.patch("/{subject_id}/terms/{term_id}", response_model=TermPublic, responses=responses(*_WRITE))
async def amend_term(subject_id: SubjectId, term_id: TermId, body: TermAmend, db: DbConn,
                     user: RegistryWriter) -> dict[str, Any]:
    """An amendment (a new version of the term, the old one kept in its history):
    change dates or conditions, suspend (``status: suspended``), resume (``active``) or end
    (``ended``: final; the subject's fitted devices get "remove device" tasks)."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"reason"}).items()
               if v is not None or k in _NULLABLE}  # null changes nothing for order type, status, conditions
    if body.conditions is not None:
        changes["conditions"] = body.conditions.model_dump(mode="json")
    before, after = await term_store.amend_term(db, subject_id, term_id, changes, reason=body.reason, by=user.name)
    await registry.audit(db, actor=user.name, action="term.amend", subject_id=subject_id, target=str(term_id),
                         remote_addr=user.remote_addr,
                         details={"reason": body.reason, "before": audited(before), "after": audited(after)})
    return after


@router.get("/{subject_id}/terms/{term_id}/amendments", response_model=list[TermAmendmentPublic],
            responses=responses(*_ONE))
async def term_amendments(subject_id: SubjectId, term_id: TermId, db: DbConn,
                          user: RegistryReader) -> list[dict[str, Any]]:
    """Every version of the term: what changed, the whole term before and after, who, when, why."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    return await term_store.amendments(db, subject_id, term_id)


@tasks.get("", response_model=list[TaskPublic], responses=responses(401, 403, 422, 503))
async def list_tasks(db: DbConn, user: RegistryReader, open_only: Annotated[bool, Query(alias="open")] = True,
                     limit: int = Query(100, ge=1, le=1000),
                     offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0) -> list[dict[str, Any]]:
    """The officers' tasks within the caller's scope: "remove device" when a term ended
    with a device fitted, or a device reports after its subject's last term ended
    (``still_reporting``, ``last_fix_at``)."""
    return await term_store.list_tasks(db, open_only=open_only, limit=limit, offset=offset, scope=user.scope)


@tasks.post("/{task_id}/done", response_model=TaskPublic, responses=responses(*_WRITE))
async def complete_task(task_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], db: DbConn, user: Officer) -> dict[str, Any]:
    row = await term_store.complete_task(db, task_id, by=user.name, scope=user.scope)
    await registry.audit(db, actor=user.name, action="task.done", subject_id=row["subject_id"], target=str(task_id),
                         remote_addr=user.remote_addr, details={"after": audited(row)})
    return row

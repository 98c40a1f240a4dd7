"""A subject's personal details: change them, and the photo (JPEG or PNG, at most 1 MB,
kept in its own table)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import DbConn, RegistryReader, RegistryWriter
from api.errors import responses
from api.privacy import audit_read, may_see_personal, subject_view
from api.routes.registry import SubjectId, audited
from api.schemas import SubjectPublic, SubjectUpdate
from api.schemas_registry import PhotoPublic
from telemetry.errors import InvalidInputError, NotFoundError
from telemetry.identifiers import pinfl_problem
from telemetry.store import registry

router = APIRouter(prefix="/subjects", tags=["subjects"])
PHOTO_MAX_BYTES = 1024 * 1024
_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
_WRITE = (401, 403, 404, 409, 413, 422, 503)
_NULLABLE = frozenset({"category", "pinfl", "date_of_birth", "sex", "address", "phone"})


@router.patch("/{subject_id}", response_model=SubjectPublic, responses=responses(*_WRITE))
async def update_subject(subject_id: SubjectId, body: SubjectUpdate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Change the given fields. A PINFL must agree with the date of birth and sex the
    subject will have. Audited with the record before and after."""
    # null clears a nullable field; for the others (name, order type, ...) it changes nothing
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in _NULLABLE}
    if "pinfl" in changes or "date_of_birth" in changes or "sex" in changes:
        current = await registry.get_subject(db, subject_id, scope=user.scope)
        merged = {**current, **changes}
        if merged.get("pinfl") is not None:
            problem = pinfl_problem(merged["pinfl"], date_of_birth=merged.get("date_of_birth"), sex=merged.get("sex"))
            if problem is not None:
                raise InvalidInputError("pinfl", problem)
    before, after = await registry.update_subject(db, subject_id, changes, scope=user.scope)
    await registry.audit(db, actor=user.name, action="subject.update", subject_id=subject_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(after)})
    return subject_view(after, user)


@router.put("/{subject_id}/photo", response_model=PhotoPublic,
            responses=responses(401, 403, 404, 413, 415, 422, 503),
            openapi_extra={"requestBody": {"required": True, "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_photo(subject_id: SubjectId, request: Request, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """The subject's photo as the request body: ``image/jpeg`` or ``image/png`` (checked by
    the file's magic bytes, not only the header), at most 1 MB."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    declared = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if declared not in _MAGIC:
        raise InvalidInputError("content-type", "a photo is image/jpeg or image/png")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > PHOTO_MAX_BYTES:
            raise InvalidInputError("body", f"a photo is at most {PHOTO_MAX_BYTES} bytes")
    if not data.startswith(_MAGIC[declared]):
        raise InvalidInputError("body", f"the body is not a {declared.split('/')[1].upper()} file")
    digest = hashlib.sha256(data).hexdigest()
    row = await registry.put_photo(db, subject_id, content_type=declared, data=bytes(data), sha256=digest, by=user.name)
    await registry.audit(db, actor=user.name, action="subject.photo", subject_id=subject_id,
                         remote_addr=user.remote_addr, details={"after": audited(row)})
    return row


@router.get("/{subject_id}/photo", responses={200: {"content": {"image/jpeg": {}, "image/png": {}},
                                                   "description": "the photo"}, **responses(401, 403, 404, 422, 503)},
            response_class=Response)
async def get_photo(subject_id: SubjectId, db: DbConn, user: RegistryReader) -> Response:
    """The photo, for roles that may see it (else 404, as when there is none); audited."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    if not may_see_personal(user, "has_photo"):
        raise NotFoundError("photo", subject_id)
    row = await registry.get_photo(db, subject_id)
    await audit_read(db, user, "subject.photo_read", rows=1, subject_id=subject_id)
    return Response(content=bytes(row["data"]), media_type=row["content_type"],
                    headers={"ETag": f'"{row["sha256"]}"', "Cache-Control": "no-store"})

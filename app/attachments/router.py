"""/tickets/{id}/attachments (list, multipart upload) and /attachments/{id}/download."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from app.attachments import service as attachments
from app.attachments.schemas import AttachmentRead, AttachmentUpload
from app.auth.dependencies import IdempotencyKey, SettingsDep, claim_idempotency, may, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep, UnitOfWorkDep
from app.kit.pagination import Page, PageParamsDep
from app.kit.storage import Storage, storage_from_settings

router = APIRouter(tags=["attachments"])

Reader = Annotated[Principal, Depends(require(Permission.TICKETS_READ))]


async def get_storage(settings: SettingsDep) -> Storage:
    return storage_from_settings(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    # Starlette has spooled the part (memory, then a temporary file); reading it in
    # chunks keeps at most one chunk of it in this process's memory at a time.
    while chunk := await file.read(attachments.CHUNK_BYTES):
        yield chunk


@router.get(
    "/tickets/{ticket_id}/attachments",
    response_model=Page[AttachmentRead],
    summary="A ticket's files, oldest first (customers: public ones)",
)
async def list_attachments(
    ticket_id: uuid.UUID, principal: Reader, session: SessionDep, page: PageParamsDep
) -> Page[AttachmentRead]:
    result = await attachments.list_attachments(session, principal, ticket_id, page)
    return Page.of(result, AttachmentRead.model_validate)


@router.post(
    "/tickets/{ticket_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    summary="Upload a file (multipart/form-data)",
)
async def upload_attachment(
    ticket_id: uuid.UUID,
    form: Annotated[AttachmentUpload, Form(media_type="multipart/form-data")],
    principal: Reader,
    uow: UnitOfWorkDep,
    storage: StorageDep,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> AttachmentRead:
    session = uow.session
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    attachment = await attachments.add_attachment(
        uow,
        storage,
        principal,
        ticket_id,
        attachments.NewAttachment(
            file_name=form.file.filename,
            chunks=_chunks(form.file),
            is_public=form.is_public,
            comment_id=form.comment_id,
        ),
        may_write_internal=await may(session, principal, Permission.COMMENTS_INTERNAL),
        max_bytes=settings.max_attachment_bytes,
    )
    created = AttachmentRead.model_validate(attachment)
    await idempotency.complete(201, created)
    return created


@router.get(
    "/attachments/{attachment_id}/download",
    response_class=StreamingResponse,
    summary="The file's bytes, as an attachment",
    responses={
        200: {
            "description": "The stored bytes, with the content type sniffed at upload.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def download_attachment(
    attachment_id: uuid.UUID, principal: Reader, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    download = await attachments.open_download(session, storage, principal, attachment_id)
    attachment = download.attachment
    encoded_name = quote(attachment.file_name, safe="")
    return StreamingResponse(
        download.chunks,
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{encoded_name}",
            "Content-Length": str(attachment.file_size),
            # Browsers must take the sniffed type as final (never run a "text" as HTML).
            "X-Content-Type-Options": "nosniff",
        },
    )

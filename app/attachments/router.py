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
    summary="List a ticket's attachments",
)
async def list_attachments(
    ticket_id: uuid.UUID, principal: Reader, session: SessionDep, page: PageParamsDep
) -> Page[AttachmentRead]:
    """The files of a ticket, oldest first (metadata; the bytes are at
    `/attachments/{attachment_id}/download`).

    **Who:** every role (`tickets:read`); customers on their own tickets only, and they
    see public files only.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.

    **Errors:** 404 for a ticket the caller cannot see (another organization's, another
    customer's), a missing or a soft-deleted one.
    """
    result = await attachments.list_attachments(session, principal, ticket_id, page)
    return Page.of(result, AttachmentRead.model_validate)


@router.post(
    "/tickets/{ticket_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    summary="Attach a file to a ticket",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "example": {
                        "file": "paper-jam.jpg (the file's bytes)",
                        "is_public": True,
                        "comment_id": "0191b0e9-3d5f-7a2c-9b4e-6c8d0f2a4be7",
                    }
                }
            }
        }
    },
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
    """Uploads one file as `multipart/form-data`: the `file` part, and optionally
    `is_public` and `comment_id` (a comment of this ticket to attach it to).

    ```
    curl -X POST "$API/api/v1/tickets/$TICKET_ID/attachments" \\
      -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: $(uuidgen)" \\
      -F file=@paper-jam.jpg -F is_public=true
    ```

    **Who:** every role (`tickets:read`) on a ticket they can see; a file is uploaded by a
    person, so API keys get 403. Customers' files are always public (`is_public=false` is
    a 403); an internal file needs `comments:internal` (403).

    - The content type is taken from the bytes, never from the client; the file name is
      cleaned and kept for display only.
    - A file over the size limit (25 MiB unless configured otherwise) is a 413; an empty
      file, a `comment_id` of another ticket, or `is_public=true` on an internal note's
      file is a 422. `is_public` defaults to true, or false on an internal note.
    - A closed or cancelled ticket takes no more files: 409.
    - Records a history row (`attachment`), an `updated` change-feed entry and a
      `ticket.attachment_added` event.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      upload within 24 h returns the first response and stores nothing; with another
      request it is a 409.
    - 404 for a ticket the caller cannot see, a missing or a soft-deleted one.
    """
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
    summary="Download an attachment",
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
    """Streams the stored bytes with the sniffed `Content-Type`, `Content-Length` and
    `Content-Disposition: attachment` (the display name), and counts the download.

    **Who:** every role (`tickets:read`), through the file's ticket: another
    organization's file, a file of a deleted ticket or of another customer's ticket, and
    (for customers) an internal file all answer 404, like a missing one.
    """
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

"""Attachment bodies: the multipart upload form and the attachment as returned."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import UploadFile
from pydantic import Field

from app.kit.schemas import InputModel, ReadModel


class AttachmentUpload(InputModel):
    """`multipart/form-data`; unknown form fields are refused like unknown JSON fields."""

    file: UploadFile = Field(description="The file; its bytes decide the content type.")
    is_public: bool | None = Field(
        default=None,
        description="Visible to the customer. Default: true, or false on an internal note "
        "(which cannot carry a public file). Customers' uploads are always public.",
    )
    comment_id: uuid.UUID | None = Field(
        default=None, description="Attach to this comment of the same ticket."
    )


class AttachmentRead(ReadModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    comment_id: uuid.UUID | None
    uploaded_by_id: uuid.UUID
    file_name: str = Field(description="The uploader's file name, for display only.")
    file_size: int = Field(description="Bytes.")
    content_type: str = Field(description="Sniffed from the bytes, not the client's claim.")
    sha256: str = Field(description="Hex digest of the stored bytes.")
    is_public: bool
    download_count: int
    created_at: datetime

"""Attachment bodies: the multipart upload form and the attachment as returned."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import UploadFile
from pydantic import ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191b0ea-1b2c-7d3e-9f4a-5b6c7d8e9f09",
                    "ticket_id": "0191b0e2-7c4a-7d1e-8f3b-9a2c4e6d8fd6",
                    "comment_id": "0191b0e9-3d5f-7a2c-9b4e-6c8d0f2a4be7",
                    "uploaded_by_id": "0191a3c5-0e1f-7a2b-9c3d-4e5f6a7b8c92",
                    "file_name": "paper-jam.jpg",
                    "file_size": 284113,
                    "content_type": "image/jpeg",
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "is_public": True,
                    "download_count": 2,
                    "created_at": "2025-03-04T09:03:27Z",
                }
            ]
        }
    )

    id: uuid.UUID
    ticket_id: uuid.UUID
    comment_id: uuid.UUID | None
    uploaded_by_id: uuid.UUID
    file_name: str = Field(description="The uploader's file name, for display only.")
    file_size: int = Field(description="Bytes.")
    content_type: str = Field(description="Sniffed from the bytes, not the client's claim.")
    sha256: str = Field(description="Hex digest of the stored bytes.")
    is_public: bool = Field(description="false: staff only (customers never see it).")
    download_count: int
    created_at: datetime

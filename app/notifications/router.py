"""/notifications: the signed-in user's in-app notifications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.dependencies import require_user
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.kit.errors import Forbidden
from app.kit.pagination import Page, PageParamsDep
from app.notifications import service as notifications
from app.notifications.schemas import MarkedRead, NotificationRead

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def member(principal: Annotated[Principal, Depends(require_user)]) -> uuid.UUID:
    """The caller's user id; notifications belong to the users of an organization."""
    if principal.organization_id is None:
        raise Forbidden("Platform superusers belong to no organization and get no notifications.")
    return principal.id


Member = Annotated[uuid.UUID, Depends(member)]


@router.get("", response_model=Page[NotificationRead], summary="List my notifications")
async def list_notifications(
    user_id: Member,
    session: SessionDep,
    page: PageParamsDep,
    unread: Annotated[
        bool | None, Query(description="true: unread only; false: read only.")
    ] = None,
) -> Page[NotificationRead]:
    """The caller's notifications, newest first (an SLA escalation notifies the
    ticket's assignee and its department's managers).

    **Who:** any signed-in user of an organization, for their own notifications; API
    keys have none (403).

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await notifications.list_notifications(session, user_id, page, unread=unread)
    return Page.of(result, NotificationRead.model_validate)


@router.post("/read", response_model=MarkedRead, summary="Mark all my notifications read")
async def mark_all_read(user_id: Member, session: SessionDep) -> MarkedRead:
    """Stamps `read_at` on every unread notification of the caller; answers how many.

    **Who:** any signed-in user of an organization.
    """
    return MarkedRead(marked=await notifications.mark_all_read(session, user_id))


@router.post(
    "/{notification_id}/read", response_model=NotificationRead, summary="Mark a notification read"
)
async def mark_read(
    notification_id: uuid.UUID, user_id: Member, session: SessionDep
) -> NotificationRead:
    """Stamps `read_at` (once: marking it again keeps the first time).

    **Who:** the notification's user. **Errors:** 404 for anyone else's notification.
    """
    return NotificationRead.model_validate(
        await notifications.mark_read(session, user_id, notification_id)
    )

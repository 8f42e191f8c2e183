"""The statements of ticket attachments: a ticket's files, one file, the comment a file
is attached to, the download counter — and the platform sweep's look-up of stored keys
across tenants."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from app.auth.principal import Principal
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Repository, scoped
from app.models.ticket import CommentType, TicketAttachment, TicketComment


class AttachmentRepository(Repository[TicketAttachment]):
    model = TicketAttachment

    async def of_ticket(
        self, actor: Principal, ticket_id: uuid.UUID, page: PageParams
    ) -> PageResult[TicketAttachment]:
        """A ticket's files, oldest first; customers see public ones only."""
        statement = self.select().where(TicketAttachment.ticket_id == ticket_id)
        if actor.is_customer:
            statement = statement.where(TicketAttachment.is_public.is_(True))
        return await self.page(statement, page, [SortKey(TicketAttachment.id)])

    async def by_id(self, attachment_id: uuid.UUID) -> TicketAttachment | None:
        return await self.one_or_none(self.select().where(TicketAttachment.id == attachment_id))

    async def comment_of_ticket(
        self, actor: Principal, ticket_id: uuid.UUID, comment_id: uuid.UUID
    ) -> TicketComment | None:
        """A comment of this very ticket; for a customer, a public one."""
        statement = sa.select(TicketComment).where(
            *self.scope(TicketComment),
            TicketComment.id == comment_id,
            TicketComment.ticket_id == ticket_id,
        )
        if actor.is_customer:
            statement = statement.where(TicketComment.comment_type == CommentType.PUBLIC)
        found = (await self.session.execute(scoped(statement))).scalar_one_or_none()
        return found

    async def count_download(self, attachment_id: uuid.UUID) -> None:
        """In the database, so concurrent downloads each add one."""
        await self.session.execute(
            self.update()
            .where(TicketAttachment.id == attachment_id)
            .values(download_count=TicketAttachment.download_count + 1)
        )


class StoredKeyRepository(PlatformRepository[TicketAttachment]):
    model = TicketAttachment

    async def known_keys(self, organization_id: uuid.UUID, keys: Sequence[str]) -> set[str]:
        """Which of `keys` an attachment row of the organization names (deleted rows
        too: a deleted ticket's files come back with it)."""
        statement = (
            sa.select(TicketAttachment.storage_key)
            .where(
                TicketAttachment.organization_id == organization_id,
                TicketAttachment.storage_key.in_(keys),
            )
            .execution_options(include_deleted=True)
        )
        return set((await self.session.execute(statement)).scalars())

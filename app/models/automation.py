"""Automation rules and visual workflows (with their published versions)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, CreatedAtMixin, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted, tenant_fk
from app.db.types import str_enum


class TriggerType(enum.StrEnum):
    TICKET_CREATED = "ticket_created"
    TICKET_UPDATED = "ticket_updated"
    COMMENT_ADDED = "comment_added"
    SLA_BREACHED = "sla_breached"
    TIME_ELAPSED = "time_elapsed"


class WorkflowType(enum.StrEnum):
    """The objects a workflow can drive."""

    TICKET = "ticket"
    WORK_ORDER = "work_order"
    APPROVAL = "approval"


class AutomationRule(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    __tablename__ = "automation_rules"
    __table_args__ = (
        sa.Index(
            "ix_automation_rules_trigger",
            "organization_id",
            "trigger_type",
            "execution_order",
            postgresql_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
            sqlite_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
        ),
        sa.CheckConstraint(
            "execution_count >= 0 AND success_count >= 0 AND failure_count >= 0",
            name="counters_nonneg",
        ),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    trigger_type: Mapped[TriggerType] = mapped_column(str_enum(TriggerType, "trigger_type"))
    conditions: Mapped[dict[str, Any]] = mapped_column(
        default=lambda: {"all": [], "any": []}, server_default='{"all": [], "any": []}'
    )
    actions: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    execution_order: Mapped[int] = mapped_column(default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    execution_count: Mapped[int] = mapped_column(default=0, server_default="0")
    success_count: Mapped[int] = mapped_column(default=0, server_default="0")
    failure_count: Mapped[int] = mapped_column(default=0, server_default="0")
    last_executed_at: Mapped[datetime | None]


class VisualWorkflow(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """The editable draft. Publishing snapshots it into an immutable
    `VisualWorkflowVersion`; `version` is the draft's number, `published_version` the one
    that runs."""

    __tablename__ = "visual_workflows"
    __table_args__ = (
        sa.Index(
            "uq_visual_workflows_name",
            "organization_id",
            sa.text("lower(name)"),
            unique=True,
            postgresql_where=not_deleted("visual_workflows"),
            sqlite_where=not_deleted("visual_workflows"),
        ),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    workflow_type: Mapped[WorkflowType] = mapped_column(
        str_enum(WorkflowType, "workflow_type"),
        default=WorkflowType.TICKET,
        server_default=WorkflowType.TICKET.value,
    )
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    connections: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    triggers: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    is_published: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    published_version: Mapped[int | None]
    published_at: Mapped[datetime | None]

    versions: Mapped[list[VisualWorkflowVersion]] = relationship(
        primaryjoin="VisualWorkflow.id == VisualWorkflowVersion.workflow_id",
        foreign_keys="VisualWorkflowVersion.workflow_id",
        lazy="raise",
        order_by="VisualWorkflowVersion.version",
        viewonly=True,
    )


class VisualWorkflowVersion(TenantMixin, CreatedAtMixin, Base):
    __tablename__ = "visual_workflow_versions"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "workflow_id", "version"),
        tenant_fk("workflow_id", "visual_workflows"),
        tenant_fk("published_by_id", "users", ondelete="SET NULL"),
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    version: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    connections: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    triggers: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

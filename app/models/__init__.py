"""Every mapped class, imported once so metadata and string relationships are complete."""

from app.models.automation import AutomationRule, VisualWorkflow, VisualWorkflowVersion
from app.models.channel import Channel, InboundMessage, TicketMessageId
from app.models.custom_field import CustomField
from app.models.field_service import Technician, WorkOrder
from app.models.idempotency import IdempotencyKey
from app.models.kb import KBArticle, KBCategory
from app.models.notification import Notification
from app.models.organization import Organization, SequenceCounter
from app.models.outbox import OutboxEvent
from app.models.retention import DataRetentionPolicy
from app.models.sla import BusinessHours, SLAPolicy
from app.models.ticket import (
    Ticket,
    TicketAttachment,
    TicketChange,
    TicketComment,
    TicketHistory,
    TicketSLAEvent,
)
from app.models.user import ApiKey, Customer, Department, User, UserPermission, UserSession
from app.models.webhook import WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription

__all__ = [
    "ApiKey",
    "AutomationRule",
    "BusinessHours",
    "Channel",
    "CustomField",
    "Customer",
    "DataRetentionPolicy",
    "Department",
    "IdempotencyKey",
    "InboundMessage",
    "KBArticle",
    "KBCategory",
    "Notification",
    "Organization",
    "OutboxEvent",
    "SLAPolicy",
    "SequenceCounter",
    "Technician",
    "Ticket",
    "TicketAttachment",
    "TicketChange",
    "TicketComment",
    "TicketHistory",
    "TicketMessageId",
    "TicketSLAEvent",
    "User",
    "UserPermission",
    "UserSession",
    "VisualWorkflow",
    "VisualWorkflowVersion",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "WebhookSubscription",
    "WorkOrder",
]

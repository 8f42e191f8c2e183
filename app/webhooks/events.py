"""The events a subscription can name: every type the services write to the outbox
(`journal.event(...)`; a test in tests/webhooks keeps this list complete), and the one
`POST /webhooks/{id}/test` sends."""

from __future__ import annotations

EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "ticket.comment_added",
    "ticket.attachment_added",
    "ticket.sla_breached",
    "ticket.sla_escalated",
)
# A subscription to `*` receives every event type, those added later included.
ALL_EVENTS = "*"
# Sent only by the test endpoint, to the endpoint tested, whatever it subscribes to.
TEST_EVENT = "webhook.test"


def wants(subscribed: list[str], event_type: str) -> bool:
    return ALL_EVENTS in subscribed or event_type in subscribed

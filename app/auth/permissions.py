"""The role → permission matrix: the one table that says who may do what.

Routers ask `require(Permission.X)`; services ask `may(...)` for finer rules (for example
"only admins create admins"). A `UserPermission` grant adds a named permission to one
user on top of the role, until it expires or is revoked. Customers' permissions are
further scoped by the services (their own tickets only, never internal comments).
The README renders this table; `tests/auth/test_permission_matrix.py` checks every
route against it.
"""

from __future__ import annotations

import enum

from app.models.user import Role


class Permission(enum.StrEnum):
    ORGANIZATIONS_MANAGE = "organizations:manage"  # the platform: superusers only
    ORGANIZATION_READ = "organization:read"
    ORGANIZATION_WRITE = "organization:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    PERMISSIONS_MANAGE = "permissions:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    DEPARTMENTS_READ = "departments:read"
    DEPARTMENTS_WRITE = "departments:write"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    DELETED_READ = "deleted:read"  # `include_deleted=true` on lists
    TICKETS_READ = "tickets:read"
    TICKETS_CREATE = "tickets:create"
    TICKETS_UPDATE = "tickets:update"
    TICKETS_DELETE = "tickets:delete"
    TICKETS_FORCE_ASSIGN = "tickets:force_assign"  # past an agent's max_concurrent_tickets
    TICKETS_HISTORY = "tickets:history"  # the audit trail of every change
    COMMENTS_INTERNAL = "comments:internal"
    CUSTOM_FIELDS_MANAGE = "custom_fields:manage"
    SLA_READ = "sla:read"  # the SLA settings: business hours calendars
    SLA_MANAGE = "sla:manage"
    CHANNELS_MANAGE = "channels:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    AUTOMATION_MANAGE = "automation:manage"
    KB_READ = "kb:read"
    KB_WRITE = "kb:write"
    FIELD_SERVICE_READ = "field_service:read"
    FIELD_SERVICE_WRITE = "field_service:write"
    RETENTION_MANAGE = "retention:manage"
    CHANGES_READ = "changes:read"
    REPORTS_READ = "reports:read"  # figures over all of the organization's tickets (SLA)


P = Permission
_CUSTOMER = frozenset({P.TICKETS_READ, P.TICKETS_CREATE, P.KB_READ})
_AGENT = _CUSTOMER | {
    P.ORGANIZATION_READ,
    P.USERS_READ,
    P.DEPARTMENTS_READ,
    P.CUSTOMERS_READ,
    P.TICKETS_UPDATE,
    P.TICKETS_HISTORY,
    P.COMMENTS_INTERNAL,
    P.KB_WRITE,
    P.SLA_READ,
    P.FIELD_SERVICE_READ,
    P.CHANGES_READ,
}
_MANAGER = _AGENT | {
    P.USERS_WRITE,
    P.DEPARTMENTS_WRITE,
    P.CUSTOMERS_WRITE,
    P.TICKETS_DELETE,
    P.TICKETS_FORCE_ASSIGN,
    P.AUTOMATION_MANAGE,
    P.FIELD_SERVICE_WRITE,
    P.REPORTS_READ,
}
_ADMIN = _MANAGER | {
    P.ORGANIZATION_WRITE,
    P.PERMISSIONS_MANAGE,
    P.API_KEYS_MANAGE,
    P.DELETED_READ,
    P.CUSTOM_FIELDS_MANAGE,
    P.SLA_MANAGE,
    P.CHANNELS_MANAGE,
    P.WEBHOOKS_MANAGE,
    P.RETENTION_MANAGE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER: _CUSTOMER,
    Role.AGENT: frozenset(_AGENT),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(_ADMIN),
}
SUPERUSER_PERMISSIONS = frozenset({P.ORGANIZATIONS_MANAGE})

# An integration key acts with its role's permissions, minus minting credentials: a
# leaked key cannot create more keys or grant itself a way back in.
API_KEY_WITHHELD = frozenset({P.API_KEYS_MANAGE, P.PERMISSIONS_MANAGE})

# Grants add tenant permissions; the platform permission is never grantable.
GRANTABLE = frozenset(Permission) - SUPERUSER_PERMISSIONS

# Rank for "may assign this role": nobody hands out a role above their own, and only
# admins create or change admins.
ROLE_RANK: dict[Role, int] = {Role.CUSTOMER: 0, Role.AGENT: 1, Role.MANAGER: 2, Role.ADMIN: 3}

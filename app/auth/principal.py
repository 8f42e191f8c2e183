"""Who is calling: a user (staff, customer or platform superuser) or an API key."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from app.auth.permissions import (
    API_KEY_WITHHELD,
    ROLE_PERMISSIONS,
    SUPERUSER_PERMISSIONS,
    Permission,
)
from app.models.user import Role


class PrincipalKind(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID  # the user's or the API key's id
    organization_id: uuid.UUID | None  # None only for platform superusers
    role: Role | None  # None only for platform superusers
    session_id: uuid.UUID | None = None  # the login behind a user's access token

    @property
    def is_superuser(self) -> bool:
        return self.kind is PrincipalKind.USER and self.organization_id is None

    @property
    def is_customer(self) -> bool:
        """Customers see and act on their own tickets only, never internal notes."""
        return self.role is Role.CUSTOMER

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.id if self.kind is PrincipalKind.USER else None

    @property
    def role_permissions(self) -> frozenset[Permission]:
        """What the role alone allows; grants (checked on demand) may add more."""
        if self.is_superuser:
            return SUPERUSER_PERMISSIONS
        assert self.role is not None
        permissions = ROLE_PERMISSIONS[self.role]
        if self.kind is PrincipalKind.API_KEY:
            return permissions - API_KEY_WITHHELD
        return permissions

    @property
    def rate_limit_key(self) -> str:
        return f"{self.kind.value}:{self.id}"

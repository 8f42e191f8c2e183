"""Input the schemas let through but the database cannot store is a 422, never a 500."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models import Department
from tests.support.identity import API, Tenant, login


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("GET", "/customers?q=%00", None, ["request"]),
        ("GET", "/users?q=a%00b", None, ["request"]),
        ("POST", "/departments", {"name": "Night\u0000shift"}, ["body", "name"]),
        ("PATCH", "/organizations/current", {"settings": {"k": "\u0000"}}, ["body", "settings"]),
    ],
)
async def test_nul_characters_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    database: Database,
    method: str,
    path: str,
    body: dict[str, object] | None,
    loc: list[str],
) -> None:
    response = await client.request(
        method, f"{API}{path}", json=body, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]
    async with database.tenant_session(tenant_a.org.id) as session:
        names = set(await session.scalars(sa.select(Department.name)))
    assert names == {"Support"}


async def test_nul_in_login_form_is_not_a_server_error(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await login(client, "a\u0000@example.com", client_id=tenant_a.slug)
    assert response.status_code == 422

"""/docs and /redoc work offline: their scripts and styles come from this server."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_documentation_pages_load_nothing_from_elsewhere(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert assets, html
    scripts = [asset for asset in assets if asset.endswith((".js", ".css"))]
    assert scripts, assets
    for asset in scripts:
        assert asset.startswith("/"), f"{page} loads {asset} from another host"
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 10_000, asset
    assert "/openapi.json" in html

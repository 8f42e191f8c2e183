"""The README's permission table is the code's table, rendered: they cannot drift."""

from __future__ import annotations

from app.auth.permissions import (
    API_KEY_WITHHELD,
    ROLE_PERMISSIONS,
    SUPERUSER_PERMISSIONS,
    Permission,
)
from app.cli import PROJECT_ROOT
from app.models.user import Role

COLUMNS = (Role.ADMIN, Role.MANAGER, Role.AGENT, Role.CUSTOMER)


def render_matrix() -> str:
    header = "| permission | admin | manager | agent | customer | API key | superuser |"
    lines = [header, "|---|:-:|:-:|:-:|:-:|:-:|:-:|"]
    for permission in Permission:
        marks = ["✓" if permission in ROLE_PERMISSIONS[role] else "" for role in COLUMNS]
        key = "" if permission in API_KEY_WITHHELD | SUPERUSER_PERMISSIONS else "role"
        platform = "✓" if permission in SUPERUSER_PERMISSIONS else ""
        lines.append(f"| `{permission.value}` | {' | '.join(marks)} | {key} | {platform} |")
    return "\n".join(lines)


def test_readme_shows_the_permission_matrix_of_the_code() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert render_matrix() in readme, "README out of date; paste:\n" + render_matrix()


if __name__ == "__main__":
    print(render_matrix())

"""Every statement of a domain is built in its repository: the statement proof in
`conftest.py` covers what repositories run, so a statement built anywhere else would be
covered by nothing but the session's rules. This test keeps app/ that way."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
BUILDERS = {"select", "insert", "update", "delete", "text", "literal_column", "scoped"}
# Outside repositories: DDL of the models (partial-index predicates), the session's
# per-transaction settings, the journal (the journal tables' own writer) and the
# readiness probe's SELECT 1 on each engine.
ALLOWED = ("models/", "db/tenancy.py", "db/session.py", "kit/journal.py", "health/router.py")


def misplaced(source: str, relative: str) -> list[str]:
    """`sa.<builder>(…)` or `scoped(…)` calls outside repository modules and classes."""
    if relative.endswith("repository.py") or relative.startswith(ALLOWED):
        return []
    found: list[str] = []

    def visit(node: ast.AST, in_repository: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_repository or (
                isinstance(child, ast.ClassDef) and child.name.endswith("Repository")
            )
            if isinstance(child, ast.Call) and not inside:
                func = child.func
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "sa"
                    and func.attr in BUILDERS
                ) or (isinstance(func, ast.Name) and func.id in BUILDERS | {"pg_insert"}):
                    name = func.attr if isinstance(func, ast.Attribute) else func.id
                    found.append(f"{relative}:{child.lineno} {name}()")
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def test_statements_are_built_in_repositories() -> None:
    found = [
        entry
        for path in sorted(APP.rglob("*.py"))
        for entry in misplaced(path.read_text(), path.relative_to(APP).as_posix())
    ]
    assert found == []


def test_the_check_sees_a_statement_built_outside_a_repository() -> None:
    service = "async def leak(session):\n    return await session.execute(sa.select(1))\n"
    assert misplaced(service, "tickets/service.py") == ["tickets/service.py:2 select()"]
    in_class = "class TicketRepository:\n    def base(self):\n        return sa.select(1)\n"
    assert misplaced(in_class, "tickets/service.py") == []
    assert misplaced(service, "tickets/repository.py") == []

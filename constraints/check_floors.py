"""`make test-lowest` runs the suite on constraints/lowest.txt: that only tests the floors
pyproject.toml states while each pin there equals its package's lower bound (`>=`) in
[project] dependencies. Exits 1 naming each package where the two disagree, and prints
the versions the lowest environment has installed.

python constraints/check_floors.py [constraints/lowest.txt]
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise SystemExit(f"{path}: {line!r}: one == pin a line")
        (spec,) = specs
        pinned[canonicalize_name(requirement.name)] = Version(spec.version)
    return pinned


def floors() -> dict[str, Version | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, Version | None] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        found[canonicalize_name(requirement.name)] = max(lower) if lower else None
    return found


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "constraints" / "lowest.txt"
    declared = floors()
    problems = []
    for name, pinned in pins(path).items():
        if name not in declared:
            continue  # forced by another pin (e.g. pydantic-core), not a direct dependency
        floor = declared[name]
        if floor != pinned:
            problems.append(f"{name}: {path.name} pins {pinned}, pyproject.toml allows >={floor}")
        sys.stdout.write(f"{name}=={installed_version(name)} (pyproject.toml: >={floor})\n")
    for problem in problems:
        sys.stderr.write(f"floor mismatch: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

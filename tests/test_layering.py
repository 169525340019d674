"""The dependency rules of the design, checked on every module's imports with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = {"protocol": "mqlite.protocol", "broker": "mqlite.broker", "client": "mqlite.client",
         "cli": "mqlite.cli"}

# The protocol core is sans-IO: no sockets, selectors, TLS, files database, threads or asyncio.
PROTOCOL_FORBIDDEN = {"socket", "selectors", "ssl", "sqlite3", "sqlite_utils", "threading",
                      "asyncio", "mqlite.broker", "mqlite.client", "mqlite.cli"}
FORBIDDEN = {
    "protocol": PROTOCOL_FORBIDDEN,
    "broker": {"mqlite.client", "mqlite.cli"},
    "client": {"mqlite.broker", "mqlite.cli"},
    "cli": set(),
}


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of everything ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(part: str) -> list[str]:
    found = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for name in imported_modules(path, PARTS[part]):
            for banned in FORBIDDEN[part]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("part", sorted(PARTS))
def test_dependency_rules(part: str) -> None:
    assert list((ROOT / part).rglob("*.py")), f"{part}/ has no modules"
    assert _violations(part) == []


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    """The rule test must be able to fail: a forbidden import in each form is found."""
    module = tmp_path / "bad.py"
    module.write_text("import socket\nfrom threading import Thread\nfrom ..broker import x\n"
                      "from mqlite.client.api import Client\n")
    names = imported_modules(module, "mqlite.protocol")
    assert {"socket", "threading", "mqlite.broker", "mqlite.client.api"} <= names


def test_no_top_level_mqlite_folder() -> None:
    """A ``mqlite/`` folder at the root would shadow the installed namespace package."""
    assert not (ROOT / "mqlite").exists()


# Modules allowed to import each I/O module, per part (design: one socket module, one store).
CONFINED = {
    "broker": {"socket": {"loop.py"}, "selectors": {"loop.py"},
               "sqlite3": {"sqlite_store.py"}, "sqlite_utils": {"sqlite_store.py"}},
    "client": {"socket": {"transport.py"}, "selectors": {"transport.py"},
               "sqlite3": {"outbox.py"}, "sqlite_utils": {"outbox.py"}},
}


@pytest.mark.parametrize("part", sorted(CONFINED))
def test_io_is_confined_to_one_module(part: str) -> None:
    found = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for name in imported_modules(path, PARTS[part]):
            allowed = CONFINED[part].get(name.split(".")[0])
            if allowed is not None and path.name not in allowed:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []

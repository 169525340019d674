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
    "broker": {"mqlite.cli"},  # and mqlite.client only where EXCEPTIONS say
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


# A bridge's remote side is a client: the one module of the broker that imports the client
# library (which never imports the broker).
EXCEPTIONS = {"broker": {"mqlite.client": {"bridge/bridge.py"}}}


def module_of(path: Path, part: str) -> tuple[str, str]:
    """(the module's dotted name, the package its relative imports start from)."""
    inner = path.relative_to(ROOT / part).with_suffix("").parts
    if inner[-1] == "__init__":
        name = ".".join([PARTS[part], *inner[:-1]])
        return name, name
    name = ".".join([PARTS[part], *inner])
    return name, name.rsplit(".", 1)[0]


def where(path: Path, part: str) -> str:
    """A module's path inside its part ("net/loop.py")."""
    return path.relative_to(ROOT / part).as_posix()


def _violations(part: str) -> list[str]:
    found = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for name in imported_modules(path, module_of(path, part)[1]):
            for banned, allowed in EXCEPTIONS.get(part, {}).items():
                if (name == banned or name.startswith(banned + ".")) and \
                        where(path, part) not in allowed:
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
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


# Modules allowed to import each I/O module, per part (design: sockets in one package, and
# each store its own I/O: SQLite, and the blocking Redis connection of the cluster's session
# store). A path ending in "/" allows every module under it.
CONFINED = {
    "broker": {"socket": {"net/", "cluster/sync.py"},
               "selectors": {"net/"},
               "sqlite3": {"storage/"}, "sqlite_utils": {"storage/"}},
    "client": {"socket": {"transport.py"}, "selectors": {"transport.py"},
               "sqlite3": {"outbox.py"}, "sqlite_utils": {"outbox.py"}},
}


def _allowed(module: str, allowed: set[str]) -> bool:
    return module in allowed or any(a.endswith("/") and module.startswith(a) for a in allowed)


def test_the_confinement_rule_allows_only_what_it_names() -> None:
    sockets = CONFINED["broker"]["socket"]
    assert _allowed("net/closing.py", sockets) and _allowed("cluster/sync.py", sockets)
    assert not _allowed("engine/core.py", sockets)
    assert not _allowed("cluster/link.py", sockets)
    assert not _allowed("network/x.py", sockets)


@pytest.mark.parametrize("part", sorted(CONFINED))
def test_io_is_confined_to_one_module(part: str) -> None:
    found = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for name in imported_modules(path, module_of(path, part)[1]):
            allowed = CONFINED[part].get(name.split(".")[0])
            if allowed is not None and not _allowed(where(path, part), allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []


def import_graph() -> dict[str, set[str]]:
    """Every module of protocol/, broker/ and client/ and the modules of those it imports,
    ``if TYPE_CHECKING:`` imports included."""
    modules: dict[str, tuple[Path, str]] = {}
    for part in ("protocol", "broker", "client"):
        for path in sorted((ROOT / part).rglob("*.py")):
            name, package = module_of(path, part)
            modules[name] = (path, package)
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        # A module's own packages are imported before it in any case (``from . import x``
        # names the package too): those are not edges.
        graph[name] = {imported for imported in imported_modules(path, package)
                       if imported in modules and imported != name
                       and not name.startswith(imported + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


# The loop drives the plug-ins' sockets through net/loop_driven.py and names none of them;
# the kernel (engine/) names no plug-in, no socket layer and no SQLite: they come in through
# its interfaces (services.Cluster, reporting.Reporter, store.SessionStore).
PLUG_INS = ("mqlite.broker.http", "mqlite.broker.cluster", "mqlite.broker.bridge")
NOT_IN_THE_KERNEL = (*PLUG_INS, "mqlite.broker.net", "mqlite.broker.storage")


def test_the_kernel_names_no_plug_in() -> None:
    found = [f"{where(path, 'broker')} imports {name}"
             for path in sorted((ROOT / "broker" / "engine").rglob("*.py"))
             for name in imported_modules(path, module_of(path, "broker")[1])
             if name.startswith(NOT_IN_THE_KERNEL)]
    assert found == []


def test_net_names_no_plug_in() -> None:
    found = [f"{where(path, 'broker')} imports {name}"
             for path in sorted((ROOT / "broker" / "net").rglob("*.py"))
             for name in imported_modules(path, module_of(path, "broker")[1])
             if name.startswith(PLUG_INS)]
    assert found == []


def test_no_broker_module_over_500_lines() -> None:
    """A module that grows past this holds more than one concern: split it by concern."""
    long = {where(path, "broker"): lines for path in sorted((ROOT / "broker").rglob("*.py"))
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}


def test_only_tests_and_tools_import_the_testing_package() -> None:
    """mqlite.testing builds on the broker and the client; neither may lean on it."""
    found = []
    for part in ("protocol", "broker", "client", "cli"):
        for path in sorted((ROOT / part).rglob("*.py")):
            for name in imported_modules(path, module_of(path, part)[1]):
                if name == "mqlite.testing" or name.startswith("mqlite.testing."):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []

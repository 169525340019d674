"""The documentation: the site builds with warnings as errors (broken links and anchors, a
reference to a missing object), the public API is in its reference, and every block marked
``<!-- runs -->`` (a complete program or shell session) runs as written."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mqlite.testing import broker

from .interop.mosquitto import wait_listening

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# "runs against a broker": it connects to "localhost", 1883, which the test points at a broker
# of its own.
RUNNABLE = re.compile(r"<!-- runs( against a broker)? -->\n```(python|sh)\n(.*?)```", re.DOTALL)
# What the API reference must show: every public name of these modules.
PUBLIC = {"mqlite.testing": None, "mqlite.broker": ("Broker", "Message", "Hook", "ClientInfo",
                                                    "Access")}


def runnable_blocks() -> list[tuple[str, str, str, bool]]:
    found = []
    for page in PAGES:
        blocks = RUNNABLE.findall(page.read_text())
        for number, (against, language, code) in enumerate(blocks, 1):
            found.append((f"{page.name}#{number}", language, code, bool(against)))
    return found


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is missing: pip install '.[test]'")
        pytest.skip("mkdocs is not installed (pip install '.[test]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "testing" / "index.html").exists()
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "wait_for_client" in reference and "withhold" in reference


def test_the_public_api_is_documented_in_the_reference() -> None:
    pages = "\n".join(p.read_text() for p in PAGES)
    missing = []
    for module_name, names in PUBLIC.items():
        module = importlib.import_module(module_name)
        for name in names or module.__all__:
            value = getattr(module, name)
            if not source_docstring(value.__module__, name):
                missing.append(f"{module_name}.{name} has no docstring")
            if not re.search(rf"^::: {re.escape(module_name)}(\.\w+)*\.{name}$", pages, re.M):
                missing.append(f"{module_name}.{name} is in no reference page")
    assert missing == []


def source_docstring(module_name: str, name: str) -> str:
    """The docstring of ``name`` in its module's source, as the site's reference reads it (a
    compiled class keeps none at run time; its source ships beside it)."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).with_name(module_name.rsplit(".", 1)[-1] + ".py")
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            return ast.get_docstring(node) or ""
    return ""


@pytest.mark.parametrize("where, language, code, against_a_broker", runnable_blocks(),
                         ids=[block[0] for block in runnable_blocks()])
def test_a_marked_block_runs_as_written(where: str, language: str, code: str,
                                        against_a_broker: bool, tmp_path: Path) -> None:
    if against_a_broker:
        with broker() as test_broker:
            pointed = code.replace('"localhost", 1883', f'"127.0.0.1", {test_broker.port}')
            assert pointed != code
            run_python(pointed, tmp_path)
        return
    if language == "python":
        run_python(code, tmp_path)
        return
    run_shell_session(code, tmp_path)


def run_python(code: str, cwd: Path) -> None:
    """Run a program; a ``print(...)  # X`` line says the output ends with X."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = re.findall(r"print\(.*\)\s+# (.+)$", code, re.M)
    if expected:
        assert done.stdout.splitlines()[-len(expected):] == expected


def run_shell_session(code: str, cwd: Path) -> None:
    """Each line as a user would type it, `.venv/bin/` being this interpreter's folder: a line
    ending in `&` starts a server (its `--port` waited for, stopped at the end); a line whose
    comment says `prints X` must print X."""
    venv = Path(sys.executable).parent
    background: list[subprocess.Popen[bytes]] = []
    try:
        for line in code.splitlines():
            command, _, comment = line.partition("  #")
            command = command.strip().replace(".venv/bin/", f"{venv}/")
            if not command or command.startswith("kill "):
                continue
            if command.endswith("&"):
                args = shlex.split(command[:-1])
                background.append(subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
                wait_listening(int(args[args.index("--port") + 1]), background[-1])
                continue
            done = subprocess.run(shlex.split(command), cwd=cwd, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, f"{command}: {done.stderr}"
            printed = re.search(r"prints (.+)$", comment)
            if printed:
                assert done.stdout.strip() == printed.group(1).strip("` "), command
    finally:
        for process in background:
            process.terminate()
            process.wait(10)


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert targets and missing == []

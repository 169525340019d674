"""mkdocs hooks: the API reference reads the sources as the package ``mqlite``, whose parts are
the repository's top-level folders (see pyproject.toml). Before a build, the hook links them
under ``build/docs-src/mqlite/``, the path mkdocs.yml gives mkdocstrings, so the reference
does not depend on how (or whether) mqlite is installed."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("protocol", "broker", "client", "cli", "testing")


def link_sources() -> None:
    package = ROOT / "build" / "docs-src" / "mqlite"
    package.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        link = package / part
        if not link.is_symlink():
            link.symlink_to(ROOT / part, target_is_directory=True)


# When mkdocs loads this file, before any plug-in reads its configuration: mkdocstrings looks
# for the paths as it starts.
link_sources()

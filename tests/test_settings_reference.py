"""The settings reference (docs/settings.md, the man pages, ``mqlite help config``) is
generated from the settings in the code, and says something of every one of them."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mqlite.broker import BrokerConfig
from mqlite.broker.config.config_file import DAEMON_KEYS
from mqlite.cli import settings_reference
from mqlite.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"listeners", "bridges", "cluster"}


def every_key() -> list[str]:
    return [f.name for f in dataclasses.fields(BrokerConfig) if f.name not in TABLES] + \
        list(DAEMON_KEYS)


def test_the_generated_files_are_up_to_date() -> None:
    for relative, kind in settings_reference.GENERATED.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == settings_reference.render(kind), \
            f"{relative} is out of date: python -m mqlite.cli.settings_reference --write"


def test_every_setting_in_the_code_is_documented() -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [key for key in every_key() if f"| `{key}` |" not in page]
    assert missing == []
    for table in TABLES:
        assert f"`[[{table}]]`" in page or f"`[{table}]`" in page


def test_every_flag_of_the_broker_command_is_in_the_reference() -> None:
    broker = build_parser()._subparsers._group_actions[0].choices["broker"]  # type: ignore[union-attr]
    flags = {option for action in broker._actions for option in action.option_strings
             if option.startswith("--") and not option.startswith("--no-")
             and action.dest in every_key()}
    documented = {s.flag for s in settings_reference.settings()}
    assert flags - documented == set()


def test_mqlite_help_config_prints_every_setting() -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "help", "config"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()
              if line and not line.startswith((" ", "mqlite.toml", "Tables"))}
    assert listed == set(every_key())
    assert "max_inflight  (--max-inflight)" in done.stdout
    assert "default 20; 1 to 65,535." in done.stdout


def test_a_bad_topic_is_one_line_and_exit_1() -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "help", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "mqlite help: argument topic: invalid choice: 'nope' (choose from 'config')"]


def test_the_check_mode_names_a_stale_file(tmp_path: Path) -> None:
    assert settings_reference.main(["--write", str(tmp_path)]) == 0
    assert settings_reference.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "docs" / "settings.md").write_text("old\n", encoding="utf-8")
    assert settings_reference.main(["--check", str(tmp_path)]) == 1


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff")
@pytest.mark.parametrize("page", ["mqlite-broker.1", "mqlite.toml.5"])
def test_the_man_pages_render_without_warnings(page: str) -> None:
    done = subprocess.run(["groff", "-man", "-ww", "-z", str(ROOT / "contrib" / "man" / page)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""

"""The settings reference (and the metrics reference beside it), generated from the code:
each top-level key of ``mqlite.toml`` is a field of :class:`BrokerConfig` or a daemon key,
and each has the ``mqlite broker`` flag whose help is its description; defaults come from the
code, ranges from ``LIMITS``. One source gives ``docs/settings.md``, the man pages
``mqlite-broker(1)`` and ``mqlite.toml(5)``, and ``mqlite help config``; ``docs/metrics.md``
comes from the families ``/metrics`` exports (``metrics_reference.py``), ``docs/admin-api.md``
from the endpoint table of ``broker/http/endpoints.py``.

    python -m mqlite.cli.settings_reference --write [REPO]   # regenerate the files
    python -m mqlite.cli.settings_reference --check [REPO]   # exit 1 if they differ
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqlite.broker import BrokerConfig
from mqlite.broker.config.broker_config import LIMITS
from mqlite.broker.config.config_file import BROKER_TYPES, DAEMON_CHOICES, DAEMON_KEYS
from mqlite.broker.http import endpoints

from .broker_settings import BROKER_HELP, DAEMON_HELP, SECRETS

# Tables of their own in the file, each with its page.
TABLES = {"listeners": "[[listeners]]: listeners beyond the default one (configuration.md)",
          "bridges": "[[bridges]]: connections to other brokers (bridges.md)",
          "cluster": "[cluster]: cluster mode on Redis or Valkey (cluster.md)"}
# Keys read from the file that have no flag of the same name, with what stands in for it.
FILE_ONLY = {"admin_token": "the admin API's bearer token (the flag is --admin-token-file, "
                            "which reads it from a file: a token is never a flag)",
             "log_file": "the file logs go to, with log_dest = \"file\" (reopened on SIGHUP)",
             "connection_messages": "log a line per connect and disconnect (default: true)"}
# The daemon keys that are flags of mqlite broker too.
DAEMON_FLAGS = ("db", "sync", "log_level", "log_format", "log_file")
GENERATED = {"docs/settings.md": "markdown", "contrib/man/mqlite-broker.1": "broker_man",
             "contrib/man/mqlite.toml.5": "toml_man", "docs/metrics.md": "metrics",
             "docs/admin-api.md": "endpoints"}


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # the TOML key
    flag: str | None  # the mqlite broker flag, if it has one
    default: str
    allowed: str  # the range or the choices, or ""
    description: str


def _size(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value:,}"


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and ("bytes" in name or "size" in name or "limit" in name):
        return _size(value) if value else "0"
    if isinstance(value, int | float):
        return f"{value:,}" if value >= 10_000 else str(value)
    return f'"{value}"' if isinstance(value, str) else str(value)


def _allowed(name: str) -> str:
    if name in LIMITS:
        low, high = LIMITS[name]
        return f"{low:,} to {high:,}"
    if name == "queue_overflow":
        return "drop-oldest, drop-newest, reject"
    if name in DAEMON_CHOICES:
        return ", ".join(DAEMON_CHOICES[name])
    return ""


def _described(help_text: str, default: str) -> tuple[str, str]:
    """A flag's help without its "(default: ...)", and the default it names, if any."""
    description, _, named = help_text.partition(" (default: ")
    return description, named.rstrip(")") if named else default


def settings() -> list[Setting]:
    """Every top-level key of the configuration file but the tables, in the flags' order."""
    defaults = {f.name: f.default for f in dataclasses.fields(BrokerConfig)
                if f.default is not dataclasses.MISSING}
    found = []
    for name in BROKER_TYPES:
        description, default = _described(BROKER_HELP.get(name) or FILE_ONLY[name],
                                          _shown(name, defaults.get(name)))
        flag = None if name in SECRETS else "--" + name.replace("_", "-")
        found.append(Setting(name, flag, default, _allowed(name), description))
    for name, value in DAEMON_KEYS.items():
        description, default = _described(DAEMON_HELP.get(name) or FILE_ONLY[name],
                                          _shown(name, value))
        flag = "--" + name.replace("_", "-") if name in DAEMON_FLAGS else None
        found.append(Setting(name, flag, default, _allowed(name), description))
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    lines = [
        "# Settings", "",
        "<!-- Generated by `python -m mqlite.cli.settings_reference --write` from the settings",
        "     in broker/config/broker_config.py and cli/broker_settings.py: edit those. -->", "",
        "Every setting is a top-level key of `mqlite.toml` and, but for the token, a flag of",
        "`mqlite broker` (`--max-inflight 50`; booleans as `--queue-qos0` / `--no-queue-qos0`).",
        "Flags override the file. [Configuration](configuration.md) says how mosquitto.conf",
        "options map to them, and [the broker](broker.md#limits-and-defaults) what happens at",
        "each limit. `mqlite help config` prints this table in a terminal.", "",
        "| key | flag | default | allowed | what it is |",
        "|---|---|---|---|---|",
    ]
    for s in settings():
        lines.append(f"| `{s.name}` | {f'`{s.flag}`' if s.flag else '(file only)'} | "
                     f"{_cell(s.default)} | {_cell(s.allowed)} | {_cell(s.description)} |")
    lines += ["", "Tables:", ""]
    lines += [f"- `{text.split(':')[0]}`:{text.split(':', 1)[1].rsplit(' (', 1)[0]} "
              f"([{page.rstrip(')')}]({page.rstrip(')')}))"
              for text in TABLES.values() for page in [text.rsplit(" (", 1)[1]]]
    return "\n".join(lines) + "\n"


def text() -> str:
    """For a terminal (``mqlite help config``)."""
    out = ["mqlite.toml keys and mqlite broker flags (flags override the file):", ""]
    for s in settings():
        head = f"{s.name}" + (f"  ({s.flag})" if s.flag else "  (file only)")
        facts = f"default {s.default}" + (f"; {s.allowed}" if s.allowed else "")
        out.append(head)
        out.extend(textwrap.wrap(f"{s.description}. {facts}.", 88, initial_indent="    ",
                                 subsequent_indent="    "))
    out += ["", "Tables: " + "; ".join(TABLES.values()) + "."]
    return "\n".join(out) + "\n"


def _roff(text: str) -> str:
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + escaped if escaped.startswith((".", "'")) else escaped


def _man(title: str, section: str, name: str, synopsis: list[str], description: list[str],
         keys: bool) -> str:
    lines = [f'.TH {title} {section} "" "mqlite" "mqlite"',
             ".\\\" Generated by python -m mqlite.cli.settings_reference --write: edit the "
             "settings in the code.", ".SH NAME", _roff(name), ".SH SYNOPSIS"]
    for line in synopsis:
        lines += [".PP", _roff(line)]
    lines.append(".SH DESCRIPTION")
    for paragraph in description:
        lines += [".PP", _roff(paragraph)]
    lines.append(".SH " + ("KEYS" if keys else "OPTIONS"))
    for s in settings():
        if keys:
            tag = f"\\fB{_roff(s.name)}\\fR"
        elif s.flag is None:
            continue
        else:
            argument = "" if s.default in ("true", "false") else " \\fIVALUE\\fR"
            tag = f"\\fB{_roff(s.flag)}\\fR{argument}"
        facts = f"Default {s.default}" + (f"; {s.allowed}" if s.allowed else "") + "."
        lines += [".TP", tag, _roff(f"{s.description}. {facts}")]
    lines += [".SH SEE ALSO"]
    lines += [_roff("mqlite-broker(1), mqlite.toml(5), mosquitto.conf(5); the documentation's "
                    "settings, configuration and security pages.")]
    return "\n".join(lines) + "\n"


def broker_man() -> str:
    return _man("MQLITE\\-BROKER", "1", "mqlite broker - the MQTT 3.1.1/5.0 broker daemon",
                ["mqlite broker [-c FILE] [--check] [--workers N] [--cluster URL] "
                 "[--SETTING VALUE ...]"],
                ["Runs the broker in the foreground until SIGINT or SIGTERM, which stop it "
                 "gracefully; SIGHUP reloads the configuration file and reopens log files. "
                 "-c FILE reads mqlite's TOML if the name ends in .toml, mosquitto.conf syntax "
                 "otherwise; --check validates it, prints the effective settings and exits. "
                 "Each setting below is also a key of the file (see mqlite.toml(5)); a flag "
                 "overrides the file.",
                 "A bad flag, value or file is one line naming it, and exit status 1. "
                 "Listeners bind to 127.0.0.1 unless configured otherwise."], keys=False)


def toml_man() -> str:
    return _man("MQLITE.TOML", "5", "mqlite.toml - the mqlite broker's configuration file",
                ["mqlite broker -c mqlite.toml"],
                ["A TOML file whose top-level keys are the settings below. Tables: "
                 + "; ".join(TABLES.values()) + ". An unknown key, a value of the wrong type "
                 "or out of its range is an error naming the file, the key and what is "
                 "allowed."], keys=True)


def render(kind: str) -> str:
    if kind == "endpoints":
        return endpoints.markdown()
    if kind == "metrics":
        from . import metrics_reference  # it builds a broker core: only when asked

        return metrics_reference.markdown()
    return {"markdown": markdown, "broker_man": broker_man, "toml_man": toml_man}[kind]()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the files")
    action.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    parser.add_argument("repo", nargs="?", default=".", help="the repository (default: .)")
    args = parser.parse_args(argv)
    stale = []
    for relative, kind in GENERATED.items():
        path = Path(args.repo) / relative
        wanted = render(kind)
        if path.exists() and path.read_text(encoding="utf-8") == wanted:
            continue
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
            print(f"wrote {relative}")
        else:
            stale.append(relative)
    if stale:
        print(f"out of date: {', '.join(stale)} (python -m mqlite.cli.settings_reference "
              "--write)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

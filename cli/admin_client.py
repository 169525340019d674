"""Talking to a running broker's admin API (its http listener), for ``mqlite clients`` and
``mqlite sessions delete``: ``--http`` names it (PORT, HOST:PORT or a URL), the token comes
from ``--admin-token-file`` or ``MQLITE_ADMIN_TOKEN`` (never a flag: it would show in ps)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AdminError(Exception):
    """One line saying what went wrong."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", metavar="[HOST:]PORT|URL",
                        help="the running broker's http listener (its admin API)")
    parser.add_argument("--admin-token-file", metavar="PATH",
                        help="a file holding the admin token (or set MQLITE_ADMIN_TOKEN)")


def base_url(http: str) -> str:
    if http.startswith(("http://", "https://")):
        return http.rstrip("/")
    host, _, port = http.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{port}"


def _token(args: argparse.Namespace) -> str | None:
    if args.admin_token_file:
        try:
            with open(args.admin_token_file, encoding="utf-8") as file:
                return file.read().strip()
        except OSError as exc:
            raise AdminError(f"cannot read {args.admin_token_file}: "
                             f"{exc.strerror or exc}") from None
    return (os.environ.get("MQLITE_ADMIN_TOKEN")
            or getattr(args, "config_admin_token", None) or None)


def call(args: argparse.Namespace, method: str, path: str) -> Any:
    """The JSON answer; AdminError with the broker's own error message otherwise."""
    url = base_url(args.http) + path
    request = urllib.request.Request(url, method=method)
    token = _token(args)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]
        except (ValueError, KeyError):
            message = exc.reason
        raise AdminError(f"{url}: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdminError(f"cannot reach the broker at {url}: {reason}") from None


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")

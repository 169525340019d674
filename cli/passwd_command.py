"""``mqlite passwd``: manage a mosquitto-format password file, with ``mosquitto_passwd``'s
flags and prompts. Entries are ``$7$`` (PBKDF2-SHA512), which mosquitto reads too. With
``--scram`` the file is a ``scram_file`` instead: RFC 5803 SCRAM-SHA-256 entries for MQTT 5
enhanced authentication (they hold no password)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from mqlite.broker.security.password_file import (
    DEFAULT_ITERATIONS,
    PasswordFileError,
    new_hash,
    parse_hash,
    write_entries,
)
from mqlite.protocol.scram import DEFAULT_ITERATIONS as SCRAM_ITERATIONS
from mqlite.protocol.scram import new_credentials, parse_credentials


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "passwd", help="manage a password file (mosquitto_passwd's format and flags)",
        description="Add, change or delete a user in a mosquitto-format password file.")
    parser.add_argument("-c", dest="create", action="store_true",
                        help="create a new file (overwriting one that exists) with this user")
    parser.add_argument("-b", dest="batch", action="store_true",
                        help="take the password from the command line, not a prompt")
    parser.add_argument("-D", dest="delete", action="store_true", help="delete the user")
    parser.add_argument("-U", dest="upgrade", action="store_true",
                        help="hash a file of user:plain-text-password lines, in place")
    parser.add_argument("-I", dest="iterations", type=int, default=None,
                        help=f"PBKDF2 iterations (default: {DEFAULT_ITERATIONS}, with --scram "
                             f"{SCRAM_ITERATIONS})")
    parser.add_argument("--scram", action="store_true",
                        help="a scram_file: SCRAM-SHA-256 entries for MQTT 5 enhanced "
                             "authentication")
    parser.add_argument("file")
    parser.add_argument("user", nargs="?")
    parser.add_argument("password", nargs="?")
    parser.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"mqlite passwd: {message}", file=sys.stderr)
    return 1


def _read(path: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                user, sep, rest = line.rstrip("\n").partition(":")
                if sep and user:
                    entries[user] = rest
    except FileNotFoundError:
        raise PasswordFileError(f"{path} does not exist (-c creates it)") from None
    except OSError as exc:
        raise PasswordFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return entries


def _password(args: argparse.Namespace) -> str:
    if args.batch:
        if args.password is None:
            raise PasswordFileError("-b needs the password on the command line")
        return str(args.password)
    first = getpass.getpass("Password: ")
    if getpass.getpass("Reenter password: ") != first:
        raise PasswordFileError("passwords do not match")
    return first


def _entry(password: str, args: argparse.Namespace) -> str:
    if args.scram:
        return new_credentials(password, args.iterations or SCRAM_ITERATIONS).encode()
    return new_hash(password, args.iterations or DEFAULT_ITERATIONS).encode()


def _hashed(value: str, args: argparse.Namespace) -> bool:
    try:
        (parse_credentials if args.scram else parse_hash)(value)
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    try:
        if args.iterations is not None and args.iterations < 1:
            raise PasswordFileError("-I needs at least 1 iteration")
        if args.upgrade:
            entries = _read(args.file)
            for user, value in entries.items():
                if not _hashed(value, args):  # hashed already: kept
                    entries[user] = _entry(value, args)
            write_entries(args.file, entries)
            return 0
        if not args.user:
            raise PasswordFileError("a user name is needed")
        if ":" in args.user:
            raise PasswordFileError("a user name may not contain ':'")
        entries = {} if args.create else _read(args.file)
        if args.delete:
            if args.user not in entries:
                raise PasswordFileError(f"user {args.user!r} is not in {args.file}")
            del entries[args.user]
        else:
            entries[args.user] = _entry(_password(args), args)
        write_entries(args.file, entries)
    except PasswordFileError as exc:
        return _fail(str(exc))
    except (EOFError, KeyboardInterrupt):
        return _fail("no password given")
    except OSError as exc:
        return _fail(f"cannot write {args.file}: {exc.strerror or exc}")
    if os.stat(args.file).st_mode & 0o077:
        print(f"mqlite passwd: warning: {args.file} is readable by others", file=sys.stderr)
    return 0

"""``mqlite passwd``: manage a mosquitto-format password file, with ``mosquitto_passwd``'s
flags and prompts. Entries are ``$7$`` (PBKDF2-SHA512), which mosquitto reads too."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from mqlite.broker.password_file import (
    DEFAULT_ITERATIONS,
    PasswordFileError,
    new_hash,
    parse_hash,
    write_entries,
)


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
    parser.add_argument("-I", dest="iterations", type=int, default=DEFAULT_ITERATIONS,
                        help="PBKDF2 iterations (default: %(default)s)")
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


def run(args: argparse.Namespace) -> int:
    try:
        if args.iterations < 1:
            raise PasswordFileError("-I needs at least 1 iteration")
        if args.upgrade:
            entries = _read(args.file)
            for user, value in entries.items():
                try:
                    parse_hash(value)  # hashed already: kept
                except ValueError:
                    entries[user] = new_hash(value, args.iterations).encode()
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
            entries[args.user] = new_hash(_password(args), args.iterations).encode()
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

"""mosquitto's password file format, so that files made by ``mosquitto_passwd`` work unchanged
and files written here work with mosquitto: one ``user:hash`` a line, where the hash is
``$7$ITERATIONS$SALT$HASH`` (PBKDF2-HMAC-SHA512, base64 salt of 12 bytes and hash of 64) or
the older ``$6$SALT$HASH`` (SHA-512 of the password followed by the salt).

Checking a password compares in constant time. A PBKDF2 check costs milliseconds, so a
verified (user, password) pair is remembered, by a SHA-256 of the password, for the life of the
loaded file: a client reconnecting with the same credentials costs one cheap hash. ``check``
is safe to call from worker threads (the broker does, so that hashing never stalls its loop).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

SALT_BYTES = 12
DEFAULT_ITERATIONS = 101  # mosquitto_passwd's default
# A check estimated to cost less than this is done on the broker's loop: handing it to a
# worker thread and back costs about as much (bench/auth_connects: 101 iterations take
# ~0.15 ms, the round trip through a worker ~0.2 ms of CPU).
INLINE_SECONDS = 0.0005
_seconds_per_iteration: list[float] = []  # measured once, on first use


class PasswordFileError(Exception):
    """The file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class PasswordHash:
    kind: str  # "7" (PBKDF2-SHA512) or "6" (salted SHA-512)
    iterations: int
    salt: bytes
    digest: bytes

    def matches(self, password: bytes) -> bool:
        return hmac.compare_digest(_digest(self.kind, password, self.salt, self.iterations),
                                   self.digest)

    def cost(self) -> float:
        """Estimated seconds of CPU one check takes on this machine."""
        if self.kind == "6":
            return 0.0
        if not _seconds_per_iteration:
            started = time.perf_counter()
            hashlib.pbkdf2_hmac("sha512", b"calibration", bytes(SALT_BYTES), 200)
            _seconds_per_iteration.append((time.perf_counter() - started) / 200)
        return self.iterations * _seconds_per_iteration[0]

    def encode(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        if self.kind == "6":
            return f"$6${salt}${digest}"
        return f"$7${self.iterations}${salt}${digest}"


def _digest(kind: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    if kind == "6":
        return hashlib.sha512(password + salt).digest()
    return hashlib.pbkdf2_hmac("sha512", password, salt, iterations)


def new_hash(password: str | bytes, iterations: int = DEFAULT_ITERATIONS) -> PasswordHash:
    """A ``$7$`` entry for ``password``, with a fresh random salt."""
    data = password.encode() if isinstance(password, str) else password
    salt = secrets.token_bytes(SALT_BYTES)
    return PasswordHash("7", iterations, salt, _digest("7", data, salt, iterations))


def parse_hash(text: str) -> PasswordHash:
    """ValueError saying what is wrong with an entry's hash."""
    parts = text.split("$")
    try:
        if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
            return PasswordHash("6", 1, base64.b64decode(parts[2], validate=True),
                                base64.b64decode(parts[3], validate=True))
        if len(parts) == 5 and parts[0] == "" and parts[1] == "7":
            iterations = int(parts[2])
            if iterations < 1:
                raise ValueError("an iteration count below 1")
            return PasswordHash("7", iterations, base64.b64decode(parts[3], validate=True),
                                base64.b64decode(parts[4], validate=True))
    except binascii.Error:
        raise ValueError("a salt or hash that is not base64") from None
    raise ValueError("not a $6$ or $7$ hash (a plain-text password? mosquitto_passwd -U, or "
                     "mqlite passwd -U, hashes a file's plain-text passwords)")


def read_user_file(path: str, kind: str, parse: Callable[[str], T]
                   ) -> tuple[dict[str, T], list[str]]:
    """``user:entry`` lines (blank lines and ``#`` comments skipped), each entry parsed;
    PasswordFileError naming the file and line; a warning if everyone may read it."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise PasswordFileError(f"cannot read {kind} {path}: {exc.strerror or exc}") from None
    warnings = []
    if mode & stat.S_IROTH:
        warnings.append(f"{kind} {path} is readable by everyone: chmod o-r it")
    entries: dict[str, T] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, entry = line.partition(":")
        if not sep or not user:
            raise PasswordFileError(f"{path}:{number}: not a user:entry line")
        try:
            entries[user] = parse(entry.strip())
        except ValueError as exc:
            raise PasswordFileError(f"{path}:{number}: user {user!r}: {exc}") from None
    return entries, warnings


# What a user not in the file is checked against, so that the time taken does not say
# whether the user exists.
_UNKNOWN_USER = PasswordHash("7", DEFAULT_ITERATIONS, bytes(SALT_BYTES), bytes(64))


class PasswordFile:
    """The users and hashes of one file, as loaded; ``check()`` is what the broker calls."""

    def __init__(self, path: str, entries: dict[str, PasswordHash], warnings: list[str]) -> None:
        self.path = path
        self.entries = entries
        self.warnings = warnings
        self._verified: dict[tuple[str, bytes], bool] = {}

    @classmethod
    def load(cls, path: str) -> PasswordFile:
        entries, warnings = read_user_file(path, "password file", parse_hash)
        warnings = [f"{warning} (mosquitto 2.0.14+ warns the same)" for warning in warnings]
        return cls(path, entries, warnings)

    def verified(self, username: str, password: bytes) -> bool:
        """Whether this pair was checked and found right before (a cheap hash, no PBKDF2)."""
        return (username, hashlib.sha256(password).digest()) in self._verified

    def cheap_to_check(self, username: str) -> bool:
        """Whether checking this user's password costs less than a worker thread would."""
        entry = self.entries.get(username, _UNKNOWN_USER)
        return entry.cost() < INLINE_SECONDS

    def check(self, username: str | None, password: bytes | None) -> bool:
        """Whether the user is in the file with this password (False for a user not in it:
        the time taken does not say which, as an unknown user is hashed too)."""
        if username is None or password is None:
            return False
        key = (username, hashlib.sha256(password).digest())
        known = self._verified.get(key)
        if known is not None:
            return known
        entry = self.entries.get(username)
        if entry is None:
            _UNKNOWN_USER.matches(password)  # the same work as a real check
            return False
        result = entry.matches(password)
        if result:
            if len(self._verified) > 100_000:  # a bound: a flood of users cannot grow it on
                self._verified.clear()
            self._verified[key] = True
        return result


def write_entries(path: str, entries: dict[str, str]) -> None:
    """Write ``user:hash`` lines to ``path``, created 0600, replacing it atomically."""
    temporary = f"{path}.tmp-{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        for user, hashed in entries.items():
            file.write(f"{user}:{hashed}\n")
    os.replace(temporary, path)

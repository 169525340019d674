"""SCRAM-SHA-256 (RFC 5802, RFC 7677), sans-IO: both sides of the exchange MQTT 5 carries in
CONNECT, AUTH and CONNACK (Authentication Method "SCRAM-SHA-256"). Without channel binding.

    client-first   n,,n=alice,r=<client nonce>                     CONNECT (or AUTH 0x19)
    server-first   r=<client nonce><server nonce>,s=<salt>,i=4096   AUTH 0x18
    client-final   c=biws,r=<both nonces>,p=<proof>                 AUTH 0x18
    server-final   v=<server signature>                             CONNACK 0x00 (or AUTH 0x00)

The server stores only (salt, iterations, StoredKey, ServerKey): it can check a proof and prove
itself, but the stored keys are not the password and cannot log in. Comparisons are in constant
time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

METHOD = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096  # RFC 7677's minimum
NONCE_BYTES = 18
SALT_BYTES = 16


class ScramError(Exception):
    """The exchange failed: a malformed message, a wrong proof or server signature."""


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a server stores for one user (RFC 5803's ``SCRAM-SHA-256$i:salt$stored:server``)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        b64 = _b64
        return (f"{METHOD}${self.iterations}:{b64(self.salt)}$"
                f"{b64(self.stored_key)}:{b64(self.server_key)}")


def new_credentials(password: str, iterations: int = DEFAULT_ITERATIONS,
                    salt: bytes | None = None) -> ScramCredentials:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    client_key, server_key = _keys(_salted(password, salt, iterations))
    return ScramCredentials(salt, iterations, _h(client_key), server_key)


def parse_credentials(text: str) -> ScramCredentials:
    """ValueError saying what is wrong with an RFC 5803 entry."""
    try:
        method, parameters, keys = text.split("$")
        iterations, salt = parameters.split(":")
        stored, server = keys.split(":")
        if method != METHOD:
            raise ValueError(f"not a {METHOD} entry")
        credentials = ScramCredentials(_unb64(salt), int(iterations), _unb64(stored),
                                       _unb64(server))
    except (ValueError, ScramError) as exc:
        raise ValueError(f"not {METHOD}$ITERATIONS:SALT$STOREDKEY:SERVERKEY ({exc})") from None
    if credentials.iterations < 1 or len(credentials.stored_key) != 32 \
            or len(credentials.server_key) != 32:
        raise ValueError("an iteration count below 1, or keys that are not 32 bytes")
    return credentials


class ScramClient:
    """The client's side: ``first()``, then ``final(server_first)``, then
    ``verify(server_final)`` (ScramError if the server did not prove it knows the keys)."""

    def __init__(self, username: str, password: str, nonce: str | None = None) -> None:
        self.username = username
        self._password = password
        self._nonce = nonce or _nonce()
        self._first_bare = f"n={_saslname(username)},r={self._nonce}"
        self._server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        fields = _fields(server_first)
        nonce, salt, iterations = fields.get("r", ""), fields.get("s"), fields.get("i", "")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise ScramError("the server's nonce does not extend ours")
        if salt is None or not iterations.isdigit() or int(iterations) < 1:
            raise ScramError("the server's first message has no salt or iteration count")
        client_key, server_key = _keys(_salted(self._password, _unb64(salt), int(iterations)))
        without_proof = f"c=biws,r={nonce}"
        message = f"{self._first_bare},{server_first.decode()},{without_proof}".encode()
        signature = _hmac(_h(client_key), message)
        self._server_signature = _hmac(server_key, message)
        return f"{without_proof},p={_b64(_xor(client_key, signature))}".encode()

    def verify(self, server_final: bytes) -> None:
        fields = _fields(server_final)
        if "e" in fields:
            raise ScramError(f"the server refused: {fields['e']}")
        given = _unb64(fields.get("v", ""))
        if not self._server_signature or not hmac.compare_digest(given, self._server_signature):
            raise ScramError("the server's signature is wrong: it does not know the keys")


class ScramServer:
    """The server's side of one exchange: ``first(client_first)`` names the user (look up
    the credentials, or pass None for an unknown user: the exchange goes on the same and
    fails at the proof, so that a client cannot tell which users exist); then
    ``final(client_final)`` returns the server-final message, or raises ScramError."""

    def __init__(self, nonce: str | None = None) -> None:
        self._nonce = nonce or _nonce()
        self.username = ""
        self._gs2 = ""
        self._client_first_bare = ""
        self._messages = ""
        self._combined = ""
        self._credentials: ScramCredentials | None = None

    def read_first(self, client_first: bytes) -> str:
        """The username the client asks to be (ScramError if malformed)."""
        try:
            text = client_first.decode()
        except UnicodeDecodeError:
            raise ScramError("client-first message is not UTF-8") from None
        header, sep, bare = text.partition(",")
        authzid, sep2, bare = bare.partition(",")
        if not sep or not sep2 or header not in ("n", "y"):
            raise ScramError("client-first message without a gs2 header n,, (channel "
                             "binding is not supported)")
        fields = _fields(bare.encode())
        if "m" in fields:
            raise ScramError("mandatory extensions are not supported")
        username, nonce = fields.get("n"), fields.get("r")
        if not username or not nonce or not _printable(nonce):
            raise ScramError("client-first message without a username or nonce")
        self.username = _unsaslname(username)
        if authzid and _unsaslname(authzid.removeprefix("a=")) != self.username:
            raise ScramError("an authorization identity other than the username")
        self._gs2 = f"{header},{authzid},"
        self._client_first_bare = bare
        self._combined = nonce + self._nonce
        return self.username

    def first(self, credentials: ScramCredentials | None, unknown_salt: bytes) -> bytes:
        """The server-first message; for an unknown user (None) made-up credentials with
        ``unknown_salt`` (the same for the same name, so that retries look alike)."""
        if credentials is None:
            credentials = ScramCredentials(unknown_salt, DEFAULT_ITERATIONS,
                                           secrets.token_bytes(32), secrets.token_bytes(32))
        self._credentials = credentials
        server_first = (f"r={self._combined},s={_b64(credentials.salt)},"
                        f"i={credentials.iterations}")
        self._messages = f"{self._client_first_bare},{server_first}"
        return server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        credentials = self._credentials
        if credentials is None:
            raise ScramError("client-final before client-first")
        text = client_final.decode(errors="replace")
        without_proof, sep, proof = text.rpartition(",p=")
        fields = _fields(without_proof.encode())
        if not sep or fields.get("r") != self._combined:
            raise ScramError("client-final message with another nonce, or no proof")
        if _unb64(fields.get("c", "")) != self._gs2.encode():
            raise ScramError("client-final message with a different gs2 header")
        message = f"{self._messages},{without_proof}".encode()
        signature = _hmac(credentials.stored_key, message)
        client_key = _xor(_unb64(proof), signature)
        if not hmac.compare_digest(_h(client_key), credentials.stored_key):
            raise ScramError("wrong proof (wrong password, or unknown user)")
        return f"v={_b64(_hmac(credentials.server_key, message))}".encode()


def _salted(password: str, salt: bytes, iterations: int) -> bytes:
    # RFC 5802 asks for SASLprep; NFKC is what it amounts to for ordinary passwords.
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)


def _keys(salted: bytes) -> tuple[bytes, bytes]:
    return _hmac(salted, b"Client Key"), _hmac(salted, b"Server Key")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ScramError("a proof of the wrong length")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ScramError("not base64") from None


def _nonce() -> str:
    return base64.b64encode(secrets.token_bytes(NONCE_BYTES)).decode()


def _fields(message: bytes) -> dict[str, str]:
    """``a=1,b=2`` into {"a": "1", "b": "2"} (a value may contain "=")."""
    try:
        text = message.decode()
    except UnicodeDecodeError:
        raise ScramError("a message that is not UTF-8") from None
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and len(name) == 1:
            fields.setdefault(name, value)
    return fields


def _printable(nonce: str) -> bool:
    return all(0x21 <= ord(ch) <= 0x7E and ch != "," for ch in nonce)


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unsaslname(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")

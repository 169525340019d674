"""SCRAM-SHA-256 against RFC 7677's example exchange, and the ways an exchange fails."""

from __future__ import annotations

import base64

import pytest

from mqlite.protocol.scram import (
    ScramClient,
    ScramError,
    ScramServer,
    new_credentials,
    parse_credentials,
)

# RFC 7677, section 3.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_rfc_7677_exchange() -> None:
    client = ScramClient("user", "pencil", nonce=CLIENT_NONCE)
    server = ScramServer(nonce=SERVER_NONCE)
    first = client.first()
    assert first == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert server.read_first(first) == "user"
    server_first = server.first(new_credentials("pencil", 4096, SALT), b"")
    assert server_first == (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    client_final = client.final(server_first)
    assert client_final == CLIENT_FINAL
    assert server.final(client_final) == SERVER_FINAL
    client.verify(SERVER_FINAL)


def exchange_until_final(password: str, stored_password: str | None) -> tuple[
        ScramClient, ScramServer, bytes]:
    client = ScramClient("alice", password)
    server = ScramServer()
    server.read_first(client.first())
    credentials = None if stored_password is None else new_credentials(stored_password, 64)
    return client, server, client.final(server.first(credentials, b"0123456789abcdef"))


def test_a_wrong_password_fails_at_the_proof() -> None:
    _, server, client_final = exchange_until_final("guess", "secret")
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(client_final)


def test_an_unknown_user_fails_alike() -> None:
    _, server, client_final = exchange_until_final("guess", None)
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(client_final)


def test_a_server_without_the_keys_is_caught_by_the_client() -> None:
    client, _, _ = exchange_until_final("secret", "secret")
    with pytest.raises(ScramError, match="signature"):
        client.verify(b"v=" + base64.b64encode(bytes(32)))
    with pytest.raises(ScramError, match="refused"):
        client.verify(b"e=invalid-proof")


@pytest.mark.parametrize("client_first", [
    b"p=tls-server-end-point,,n=alice,r=abc",  # channel binding
    b"n=alice,r=abc",  # no gs2 header
    b"n,,n=alice",  # no nonce
    b"n,,r=abc",  # no user
    b"n,,m=ext,n=alice,r=abc",  # a mandatory extension
    b"n,a=bob,n=alice,r=abc",  # acting as someone else
    b"\xff\xfe",
])
def test_malformed_client_first_messages(client_first: bytes) -> None:
    with pytest.raises(ScramError):
        ScramServer().read_first(client_first)


def test_a_tampered_client_final_fails() -> None:
    _, server, client_final = exchange_until_final("secret", "secret")
    other_nonce = client_final.replace(b"r=", b"r=x", 1)
    with pytest.raises(ScramError, match="nonce"):
        server.final(other_nonce)
    with pytest.raises(ScramError):
        server.final(client_final.replace(b"c=biws", b"c=eSws"))


def test_saslnames_round_trip_and_credentials_encode() -> None:
    client = ScramClient("a,b=c", "pw")
    server = ScramServer()
    assert server.read_first(client.first()) == "a,b=c"
    credentials = new_credentials("pw", 100)
    assert parse_credentials(credentials.encode()) == credentials
    with pytest.raises(ValueError):
        parse_credentials("SCRAM-SHA-1$4096:AAAA$AAAA:AAAA")

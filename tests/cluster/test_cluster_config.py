"""Cluster settings: the Redis URL forms, the flags and [cluster] table, and the one-line
errors a bad one gives (exit code 1, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mqlite.broker.cluster.config import (
    ClusterConfig,
    ClusterConfigError,
    RedisAddress,
    parse_redis_url,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://db.example:6380/2", RedisAddress(host="db.example", port=6380, db=2)),
    ("redis://localhost", RedisAddress(host="localhost")),
    ("rediss://:secret@h:7000", RedisAddress(host="h", port=7000, tls=True,
                                             password="secret")),
    ("redis://ops:p%40ss@h/1", RedisAddress(host="h", db=1, username="ops", password="p@ss")),
    ("unix:///run/redis.sock", RedisAddress(path="/run/redis.sock")),
    ("unix:///run/redis.sock?db=3", RedisAddress(path="/run/redis.sock", db=3)),
])
def test_redis_urls(url: str, expected: RedisAddress) -> None:
    assert parse_redis_url(url) == expected


def test_an_address_never_shows_its_password() -> None:
    address = parse_redis_url("rediss://ops:secret@h:7000/4")
    assert "secret" not in str(address) and str(address) == "rediss://h:7000/4"


@pytest.mark.parametrize(("url", "complaint"), [
    ("http://h", "scheme"), ("redis://h:port", "port"), ("unix://", "socket path"),
    ("redis://h/x", "database"),
])
def test_bad_urls_are_named(url: str, complaint: str) -> None:
    with pytest.raises(ClusterConfigError, match=complaint):
        parse_redis_url(url)


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"node_id": "a b"}, "node_id"), ({"node_id": "x" * 65}, "node_id"),
    ({"node_ttl": 0}, "node_ttl"), ({"stream_maxlen": 5}, "stream_maxlen"),
])
def test_bad_settings_are_named(settings: dict[str, object], complaint: str) -> None:
    with pytest.raises(ClusterConfigError, match=complaint):
        ClusterConfig(url="redis://h", **settings).checked("n1")  # type: ignore[arg-type]


def _broker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "complaint"), [
    (["--cluster", "http://h"], "scheme"),
    (["--cluster", "redis://h", "--node-id", "a|b"], "node_id"),
    (["--node-id", "n1"], "needs a url"),
])
def test_bad_flags_give_one_line_and_exit_1(args: list[str], complaint: str) -> None:
    result = _broker(*args, "--check")
    assert result.returncode == 1
    assert complaint in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_the_cluster_table_and_check_without_the_password(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('[cluster]\nurl = "redis://:hunter2@10.0.0.5:6379/1"\n'
                      'node_id = "edge-1"\nnode_ttl = 4\n')
    result = _broker("-c", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert 'url = "redis://10.0.0.5:6379/1"' in result.stdout
    assert 'node_id = "edge-1"' in result.stdout and "node_ttl = 4.0" in result.stdout
    # The flags win over the file.
    result = _broker("-c", str(config), "--node-id", "edge-2", "--check")
    assert 'node_id = "edge-2"' in result.stdout
    config.write_text('[cluster]\nurl = "redis://h"\nnodes = 3\n')
    result = _broker("-c", str(config), "--check")
    assert result.returncode == 1 and "unknown key 'nodes'" in result.stderr

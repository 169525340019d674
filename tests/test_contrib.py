"""The deployment files: the sample configurations pass --check, and the systemd unit passes
systemd-analyze verify (with ExecStart pointed at this environment's mqlite)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["contrib/mqlite.toml", "contrib/docker.toml"])
def test_the_sample_configurations_are_valid(name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mqlite.cli", "broker", "-c",
                           str(ROOT / name), "--check"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "[[listeners]]" in done.stdout


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    mqlite = shutil.which("mqlite", path=str(Path(sys.executable).parent))
    if analyze is None or mqlite is None:
        pytest.skip("needs systemd-analyze and the mqlite script")
    unit = (ROOT / "contrib" / "mqlite.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "User=mqlite" in unit and "StateDirectory=mqlite" in unit
    target = tmp_path / "mqlite.service"
    target.write_text(unit.replace("/usr/local/bin/mqlite", mqlite))
    done = subprocess.run([analyze, "verify", str(target)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_compose_files_agree_with_each_other() -> None:
    compose = (ROOT / "contrib" / "compose" / "docker-compose.yml").read_text()
    scrape = (ROOT / "contrib" / "compose" / "prometheus.yml").read_text()
    port = compose.split('"--http", "0.0.0.0:')[1].split('"')[0]
    assert f'targets: ["mqlite:{port}"]' in scrape
    assert "../prometheus/alerts.yml:/etc/prometheus/alerts.yml" in compose
    assert "../grafana/mqlite.json:/var/lib/grafana/dashboards/mqlite.json" in compose
    provider = (ROOT / "contrib" / "compose" / "grafana" / "provisioning" / "dashboards"
                / "mqlite.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider


def test_the_compose_file_is_valid_where_docker_runs() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        timeout=30).returncode != 0:
        pytest.skip("needs docker compose")
    done = subprocess.run([docker, "compose", "-f",
                           str(ROOT / "contrib" / "compose" / "docker-compose.yml"), "config",
                           "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

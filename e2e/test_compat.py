"""Real Docker clients as compatibility clients of berthd: the docker CLI at
/usr/local/bin/docker and Debian's python3-docker."""

import os
import subprocess

import pytest

from conftest import http_get_json, scrubbed_env, trust

DOCKER = "/usr/local/bin/docker"


@pytest.fixture(scope="module")
def docker_certs(session_cli, pki, daemon, tmp_path_factory):
    """A client cert made the way a user would: `berth certs issue`, then
    `berth trust add` (a CA-valid cert alone is refused)."""
    out = tmp_path_factory.mktemp("docker-certs")
    session_cli.ok("certs", "issue", "docker-user", "--ca-dir", pki.dir, "--out", out)
    for f in ("ca.pem", "cert.pem", "key.pem"):
        assert (out / f).is_file(), f"berth certs issue did not write {f}"
    trust(daemon, out / "cert.pem", "operator", name="docker-user")
    return out


@pytest.fixture(scope="module")
def berth_version(daemon, pki):
    return http_get_json(daemon, pki, "/version")["Version"]


def test_docker_cli_version(daemon, docker_certs, berth_version, tmp_path):
    if not os.access(DOCKER, os.X_OK):
        pytest.skip(f"{DOCKER} is absent: the docker CLI compatibility check did not run")
    env = scrubbed_env(
        HOME=tmp_path,
        DOCKER_CONFIG=tmp_path / "docker-config",
        DOCKER_HOST=f"tcp://127.0.0.1:{daemon.port}",
        DOCKER_TLS_VERIFY="1",
        DOCKER_CERT_PATH=docker_certs,
    )
    p = subprocess.run(
        [DOCKER, "version", "--format", "{{.Server.Version}}"],
        env=env, capture_output=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout.decode().strip() == berth_version, p.stdout

    p = subprocess.run(
        [DOCKER, "info", "--format", "{{.OSType}}"], env=env, capture_output=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout.decode().strip() == "linux", p.stdout


def test_docker_py_version(daemon, docker_certs, berth_version, monkeypatch):
    docker = pytest.importorskip("docker", reason="python3-docker is not installed")
    for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
              "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(v, raising=False)
    tls = docker.tls.TLSConfig(
        client_cert=(str(docker_certs / "cert.pem"), str(docker_certs / "key.pem")),
        ca_cert=str(docker_certs / "ca.pem"),
        verify=True,
    )
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{daemon.port}", tls=tls,
                                 version="auto", timeout=30)
    try:
        v = client.version()
        assert v["Version"] == berth_version, v
        assert client.ping() is True
    finally:
        client.close()

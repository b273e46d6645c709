"""The root-only unix socket: reachable by berth and curl, mode 0660."""

import os
import shutil
import stat
import subprocess

import pytest

from conftest import scrubbed_env


def test_socket_mode_0660(daemon):
    st = os.stat(daemon.sock)
    assert stat.S_ISSOCK(st.st_mode), f"{daemon.sock} is not a socket"
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(stat.S_IMODE(st.st_mode))


def test_berth_version_over_unix(berth, daemon):
    p = berth.ok("-H", f"unix://{daemon.sock}", "version", "--format", "json")
    assert '"Server"' in p.out, p.out


def test_curl_over_unix(daemon):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl not installed (scripts/install-deps installs it)")
    p = subprocess.run(
        [curl, "-sS", "-i", "--max-time", "10", "--unix-socket", str(daemon.sock),
         "http://localhost/_ping"],
        capture_output=True, env=scrubbed_env(), timeout=30,
    )
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, p.stderr
    assert out.startswith("HTTP/1.1 200"), out
    assert out.rstrip().endswith("OK"), out

    p = subprocess.run(
        [curl, "-sS", "--max-time", "10", "--unix-socket", str(daemon.sock),
         "http://localhost/v1.43/version"],
        capture_output=True, env=scrubbed_env(), timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert b'"ApiVersion"' in p.stdout, p.stdout


def test_default_socket_under_exec_root(make_daemon, pki):
    """Without a unix:// listener the socket is EXEC_ROOT/berthd.sock."""
    d = make_daemon(pki.dir, unix_listen=False)
    assert stat.S_ISSOCK(os.stat(d.exec_root / "berthd.sock").st_mode)

"""berthd's life cycle: pid file, graceful stop, SIGHUP reload of TLS
material, and refusals of bad start-up input."""

import os
import shutil
import signal
import socket
import ssl
import subprocess

import pytest

from conftest import cert_fingerprint_der, free_port, server_cert_der, wait_for



def copy_pki(pki, dest):
    shutil.copytree(pki.dir, dest)
    return dest


def test_pid_file_and_graceful_stop(make_daemon, pki):
    d = make_daemon(pki.dir)
    assert int(d.pidfile.read_text()) == d.proc.pid
    rc = d.stop()
    assert rc == 0, f"berthd exit status after SIGTERM: {rc}\n{d.log_text()}"
    assert not d.pidfile.exists(), "pid file left behind after SIGTERM"
    # The port is free again.
    with socket.socket() as s:
        assert s.connect_ex(d.addr) != 0, "listener still accepting after stop"


def test_sighup_reloads_server_cert(make_daemon, pki, session_cli, tmp_path):
    tls = copy_pki(pki, tmp_path / "tls")
    d = make_daemon(tls)
    ca, cert, key = tls / "ca.pem", tls / "cert.pem", tls / "key.pem"
    old_fp = cert_fingerprint_der(server_cert_der(d.addr, ca, cert, key))
    inspect_old = session_cli.json("certs", "inspect", tls / "server-cert.pem", "--format", "json")
    assert inspect_old.get("FingerprintSHA256") == old_fp, inspect_old

    session_cli.ok("certs", "server", "--ca-dir", tls)
    info = session_cli.json("certs", "inspect", tls / "server-cert.pem", "--format", "json")
    new_fp = info.get("FingerprintSHA256", "")
    assert len(new_fp) == 64 and new_fp != old_fp, (old_fp, info)

    # Before the signal the daemon still serves the old cert.
    assert cert_fingerprint_der(server_cert_der(d.addr, ca, cert, key)) == old_fp
    os.kill(d.proc.pid, signal.SIGHUP)

    seen = []

    def new_cert_served():
        # Every probe must connect: the listener never goes away.
        fp = cert_fingerprint_der(server_cert_der(d.addr, ca, cert, key))
        seen.append(fp)
        return fp == new_fp

    wait_for(new_cert_served, 10, "the re-issued server cert after SIGHUP")
    assert set(seen) <= {old_fp, new_fp}, seen
    assert d.proc.poll() is None, "berthd died on SIGHUP"
    assert int(d.pidfile.read_text()) == d.proc.pid, "pid changed across reload"


def test_sighup_with_broken_material_keeps_serving(make_daemon, pki, tmp_path):
    """A bad reload must not take the daemon down: the old material stays."""
    tls = copy_pki(pki, tmp_path / "tls")
    d = make_daemon(tls)
    ca, cert, key = tls / "ca.pem", tls / "cert.pem", tls / "key.pem"
    before = server_cert_der(d.addr, ca, cert, key)
    (tls / "server-cert.pem").write_text("garbage\n")
    seen = len(d.log_text())
    os.kill(d.proc.pid, signal.SIGHUP)
    # Poll for the daemon to have handled the signal: its log says so.
    wait_for(lambda: "server-cert.pem" in d.log_text()[seen:] or d.proc.poll() is not None, 10,
             "berthd to report the broken server-cert.pem")
    assert d.proc.poll() is None, f"berthd died on a bad reload:\n{d.log_text()}"
    assert server_cert_der(d.addr, ca, cert, key) == before


# ---- bad start-up input ----------------------------------------------------


def start_expect_failure(make_daemon, tls, port=None, **kw):
    """Starts berthd on bad input; it must exit non-zero without a pid file.
    Returns (daemon, its log)."""
    d = make_daemon(tls, start=False, **kw)
    d.spawn(port or free_port())
    try:
        rc = d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"berthd kept running on bad input:\n{d.log_text()}")
    log = d.log_text()
    assert rc != 0, f"berthd exited 0 on bad input:\n{log}"
    assert not d.pidfile.exists(), "pid file written although start-up failed"
    return d, log


def test_malformed_config_json(make_daemon, pki, tmp_path):
    cfg = tmp_path / "berthd.json"
    cfg.write_text('{"log-level": "info",,}')
    _, log = start_expect_failure(make_daemon, pki.dir, config=cfg)
    assert str(cfg) in log, f"message does not name {cfg}:\n{log}"


def test_missing_config_file(make_daemon, pki, tmp_path):
    cfg = tmp_path / "nope.json"
    _, log = start_expect_failure(make_daemon, pki.dir, config=cfg)
    assert str(cfg) in log, log


def test_cert_key_mismatch(make_daemon, pki, tmp_path):
    tls = copy_pki(pki, tmp_path / "tls")
    shutil.copy(tls / "key.pem", tls / "server-key.pem")  # the admin client's key
    _, log = start_expect_failure(make_daemon, tls)
    assert "server-key.pem" in log or "server-cert.pem" in log, log


def test_missing_tls_dir(make_daemon, tmp_path):
    tls = tmp_path / "absent"
    _, log = start_expect_failure(make_daemon, tls)
    assert str(tls) in log, log


def test_port_in_use(make_daemon, pki):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        _, log = start_expect_failure(make_daemon, pki.dir, port=port)
    assert "in use" in log.lower(), log
    assert str(port) in log, log


def test_log_holds_no_key_material(make_daemon, pki):
    d = make_daemon(pki.dir)
    server_cert_der(d.addr, pki.ca, pki.cert, pki.key)
    d.stop()
    log = d.log_text()
    assert "ready" in log, log
    assert "PRIVATE KEY" not in log
    for name in ("server-key.pem", "key.pem"):
        body = (pki.dir / name).read_text().splitlines()[1]
        assert body not in log, f"berthd logged part of {name}"


def test_tls_material_is_not_world_readable(pki):
    for name in ("ca-key.pem", "server-key.pem", "key.pem"):
        mode = (pki.dir / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name}: {oct(mode)}"


# ---- client-side transport errors -----------------------------------------


def test_daemon_down_exit_125(berth, pki):
    host = f"tcp://127.0.0.1:{free_port()}"
    p = berth.run("-H", host, "--tls-dir", pki.dir, "version")
    assert p.returncode == 125, (p.returncode, p.err)
    assert "cannot connect" in p.err.lower(), p.err
    assert host.split("//")[1] in p.err, p.err
    assert len(p.err.strip().splitlines()) == 1, p.err


def test_daemon_down_through_context_names_it(berth, pki):
    host = f"tcp://127.0.0.1:{free_port()}"
    berth.ok("context", "create", "gone", "--host", host, "--tls-dir", pki.dir)
    p = berth.run("-c", "gone", "version")
    assert p.returncode == 125, (p.returncode, p.err)
    assert "cannot connect" in p.err.lower() and "gone" in p.err, p.err
    assert host.split("//")[1] in p.err, p.err


def test_tcp_host_without_tls_material(berth, daemon):
    p = berth.run("-H", daemon.host, "version")
    assert p.returncode != 0, p.out
    assert "tls" in p.err.lower() or "cert" in p.err.lower(), p.err


def test_wrong_ca_on_client_side(berth, daemon, other_pki):
    """The client refuses a server its CA did not sign."""
    p = berth.run("-H", daemon.host, "--tls-dir", other_pki.dir, "version")
    assert p.returncode == 125, (p.returncode, p.err)


# ---- IPv6 loopback -----------------------------------------------------------


def free_port6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError as e:
        pytest.skip(f"no IPv6 loopback on this host: {e}")


def test_ipv6_listener_and_san(make_daemon, pki, berth):
    """The server cert names ::1, and berthd listens on [::1] when told to."""
    port6 = free_port6()
    d = make_daemon(pki.dir, extra=("--listen", f"tcp://[::1]:{port6}"))
    host6 = f"tcp://[::1]:{port6}"
    js = berth.json("-H", host6, "--tls-dir", pki.dir, "version", "--format", "json")
    assert js["Server"]["Version"], js
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.cert), str(pki.key))
    with socket.create_connection(("::1", port6), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="::1") as s:  # verifies the IP SAN
            assert s.getpeercert()["subjectAltName"], "no SANs"
    assert d.proc.poll() is None

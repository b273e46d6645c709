"""The daemon refuses bad client certificates AT THE TLS HANDSHAKE.

Each case goes through the same code path (Python's ssl module, then one
HTTP request): the good admin cert gets an HTTP answer, so the refusals below
are not an artefact of the client.  A refusal must show up as a TLS error or
a connection reset during the handshake or the first read, and no byte of
HTTP may ever arrive.  (STACK.md: lws accepts foreign-CA and expired certs
unless the daemon checks OpenSSL's verdict itself.)
"""

import concurrent.futures
import socket
import ssl

import pytest

from conftest import client_ssl_context, raw_request

# Flags of `berth certs issue` that make test certificates (client/cmd_certs.c).
EXPIRED_FLAGS = ("--days", "-1")  # expired yesterday


def expect_refused(daemon, ctx, what):
    try:
        got = raw_request(daemon.addr, ctx)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return e
    raise AssertionError(
        f"{what}: daemon did not refuse at the TLS layer; received {len(got)} bytes: {got[:200]!r}"
    )


def test_good_cert_gets_http_answer(daemon, pki):
    got = raw_request(daemon.addr, client_ssl_context(pki.ca, pki.cert, pki.key))
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert got.endswith(b"OK"), got[-100:]


def test_good_cert_tls12_gets_http_answer(daemon, pki):
    ctx = client_ssl_context(pki.ca, pki.cert, pki.key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    got = raw_request(daemon.addr, ctx)
    assert got.startswith(b"HTTP/1.1 200"), got[:200]


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_no_client_cert_refused(daemon, pki, tls12):
    ctx = client_ssl_context(pki.ca)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    expect_refused(daemon, ctx, "no client cert")


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_foreign_ca_cert_refused(daemon, pki, other_pki, tls12):
    # We still trust the real server; only the client cert is foreign.
    ctx = client_ssl_context(pki.ca, other_pki.cert, other_pki.key)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    expect_refused(daemon, ctx, "cert from another CA")


@pytest.fixture(scope="module")
def expired_cert(session_cli, pki, tmp_path_factory):
    out = tmp_path_factory.mktemp("expired")
    session_cli.ok("certs", "issue", "old-client", "--ca-dir", pki.dir, "--out", out,
                   *EXPIRED_FLAGS)
    info = session_cli.json("certs", "inspect", out / "cert.pem", "--format", "json")
    return out, info


def test_expired_cert_refused(daemon, pki, expired_cert):
    out, info = expired_cert
    assert info["Status"] == "EXPIRED", info
    assert info["ExtKeyUsage"] == ["clientAuth"], info
    ctx = client_ssl_context(pki.ca, out / "cert.pem", out / "key.pem")
    expect_refused(daemon, ctx, "expired client cert")


def test_server_only_cert_refused_as_client(daemon, pki, session_cli):
    """server-cert.pem is signed by the right CA and valid, but its EKU is
    serverAuth only: it must not pass as a client."""
    info = session_cli.json("certs", "inspect", pki.server_cert, "--format", "json")
    assert info["ExtKeyUsage"] == ["serverAuth"] and info["Status"] == "valid", info
    ctx = client_ssl_context(pki.ca, pki.server_cert, pki.server_key)
    expect_refused(daemon, ctx, "serverAuth-only cert (server-cert.pem)")


def test_issued_server_only_cert_refused_as_client(daemon, pki, session_cli, tmp_path):
    """The same with `berth certs issue --server` (written as cert.pem/key.pem)."""
    out = tmp_path / "srv"
    session_cli.ok("certs", "issue", "not-a-client", "--server", "--ca-dir", pki.dir, "--out", out)
    info = session_cli.json("certs", "inspect", out / "cert.pem", "--format", "json")
    assert info["ExtKeyUsage"] == ["serverAuth"], info
    ctx = client_ssl_context(pki.ca, out / "cert.pem", out / "key.pem")
    expect_refused(daemon, ctx, "serverAuth-only cert (issue --server)")


def test_server_presents_cert_with_loopback_sans(daemon, pki):
    """The client side checks the server: hostname 127.0.0.1 must verify."""
    ctx = client_ssl_context(pki.ca, pki.cert, pki.key)
    assert ctx.check_hostname
    got = raw_request(daemon.addr, ctx)
    assert got.startswith(b"HTTP/1.1 200")


def test_idle_and_half_open_connections_do_not_block_others(daemon, pki):
    """berthd serves everyone from one event loop: a peer that connects and
    says nothing, or stops mid-handshake, must not stall other clients."""
    good = client_ssl_context(pki.ca, pki.cert, pki.key)
    idle = socket.create_connection(daemon.addr, timeout=10)
    half = socket.create_connection(daemon.addr, timeout=10)
    try:
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a truncated ClientHello
        got = raw_request(daemon.addr, good)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    finally:
        idle.close()
        half.close()


def test_parallel_good_and_bad_handshakes(daemon, pki, other_pki):
    good = client_ssl_context(pki.ca, pki.cert, pki.key)
    bad = client_ssl_context(pki.ca, other_pki.cert, other_pki.key)

    def one(i):
        if i % 2:
            try:
                raw_request(daemon.addr, bad)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                return "refused"
            return "ACCEPTED"
        got = raw_request(daemon.addr, good)
        return "ok" if got.startswith(b"HTTP/1.1 200") else repr(got[:80])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(40)))
    assert results.count("ok") == 20 and results.count("refused") == 20, results
    assert daemon.proc.poll() is None, "berthd died under parallel handshakes"

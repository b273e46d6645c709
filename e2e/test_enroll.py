"""Enrollment end to end (issue 6, items 2 and 3): an admin makes a token, a
fresh client turns it into a context (its key made locally, the daemon pinned
by the key in the token), the context works with the token's role, and the
certificate is short-lived and renewable over mTLS.  Refusals: a replayed,
expired or forged token; a token whose address leads to another daemon (pin
mismatch); a lifetime above max-cert-days; an expired client cert.

Each test runs its own daemon (make_daemon): the trust store and the tokens
are per daemon.  Tokens come from `berth trust add NAME` when that command is
in the tree, else from the same API call made with the admin cert."""

import base64
import calendar
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import Berth, certs_init, https_conn, mktemp_dir

TOKEN_PREFIX = "berth1-"


# ---- helpers ------------------------------------------------------------------


class Site:
    """One daemon with its PKI and an admin CLI (the certs init admin cert)."""

    def __init__(self, make_daemon, pki, extra=()):
        self.pki = pki
        self.d = make_daemon(pki.dir, extra=extra)
        self.admin = Berth(mktemp_dir("enroll-admin-"))
        self.admin.ok("context", "create", "admin", "--host", self.d.host, "--tls-dir", pki.dir)

    def token(self, name, role="operator", expires=900, cert_days=None):
        """A token via the API as admin; (status, reply)."""
        body = {"Name": name, "Role": role, "ExpiresIn": expires}
        if cert_days is not None:
            body["CertDays"] = cert_days
        c = https_conn(self.d, self.pki)
        try:
            c.request("POST", "/_berth/trust/tokens", body=json.dumps(body),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            c.close()

    def make_token(self, name, role="operator", expires=900, cert_days=None):
        st, reply = self.token(name, role, expires, cert_days)
        assert st == 201, (st, reply)
        assert reply["Token"].startswith(TOKEN_PREFIX), reply
        return reply["Token"]


def token_doc(token):
    raw = token[len(TOKEN_PREFIX):]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def token_text(doc):
    raw = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    return TOKEN_PREFIX + raw


def trust_names(site):
    c = https_conn(site.d, site.pki)
    try:
        c.request("GET", "/_berth/trust")
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
    finally:
        c.close()
    entries = body if isinstance(body, list) else body.get("Identities", body.get("Entries", []))
    return [e.get("Name") for e in entries]


def not_after(cli, name):
    info = cli.json("context", "inspect", name)[0]
    return info["ClientCert"]["NotAfter"], info["ClientCert"]["Fingerprint"]


@pytest.fixture
def site(make_daemon, pki):
    return Site(make_daemon, pki)


@pytest.fixture
def client():
    return Berth(mktemp_dir("enroll-client-"))


# ---- the happy path -----------------------------------------------------------


def test_token_context_works_with_the_tokens_role(site, client):
    tok = site.make_token("viewer-1", role="viewer")
    doc = token_doc(tok)
    assert doc["n"] == "viewer-1" and doc["a"] == [f"127.0.0.1:{site.d.port}"], doc
    assert len(doc["s"]) == 64 and len(doc["p"]) == 44, doc

    p = client.ok("context", "create", "v1", "--token", tok)
    assert p.out.strip() == "v1"
    assert "viewer" in p.err, p.err
    # the key was made here, 0600, and matches a cert naming the token's name
    info = client.json("context", "inspect", "v1")[0]
    assert info["Host"] == f"tcp://127.0.0.1:{site.d.port}", info
    assert "CN=viewer-1" in info["ClientCert"]["Subject"].replace(" ", ""), info
    key = info["TLS"]["Key"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "viewer-1" in trust_names(site)

    assert client.run("-c", "v1", "ps").returncode == 0
    # viewer: reading works, creating is refused with the role named
    p = client.run("-c", "v1", "create", "busybox", "true")
    assert p.returncode != 0
    assert "needs role operator" in p.err and "viewer" in p.err, p.err


def test_operator_token_can_create(site, client):
    tok = site.make_token("op-1", role="operator")
    client.ok("context", "create", "op", "--token", tok)
    p = client.run("-c", "op", "create", "--name", "enroll-op", "no-such-image:1")
    # past the role gate: the daemon looked for the image
    assert "needs role" not in p.err, p.err


# ---- refusals -----------------------------------------------------------------


def test_replayed_token_is_refused(site, client):
    tok = site.make_token("once", role="viewer")
    pending = site.make_token("keeps-the-door-open", role="viewer")  # noqa: F841
    client.ok("context", "create", "first", "--token", tok)
    p = client.run("context", "create", "second", "--token", tok)
    assert p.returncode != 0
    assert "already used" in p.err, p.err
    assert "second" not in client.run("context", "ls", "-q").out.split()


def test_replay_with_no_token_pending_is_refused_at_the_handshake(site, client):
    tok = site.make_token("only", role="viewer")
    client.ok("context", "create", "first", "--token", tok)
    p = client.run("context", "create", "second", "--token", tok)
    assert p.returncode != 0
    assert "token" in p.err and "already used, expired or unknown" in p.err, p.err


def test_expired_token_is_refused(site, client):
    tok = site.make_token("late", role="viewer", expires=1)
    site.make_token("keeps-the-door-open", role="viewer")
    deadline = time.time() + 1.5
    while time.time() < deadline:  # the token's own lifetime has to pass (wall clock)
        time.sleep(deadline - time.time())
    p = client.run("context", "create", "late", "--token", tok)
    assert p.returncode != 0
    assert "token late expired" in p.err, p.err
    assert "late" not in trust_names(site)


def test_wrong_secret_is_refused(site, client):
    doc = token_doc(site.make_token("real", role="viewer"))
    doc["s"] = "0" * 64
    p = client.run("context", "create", "forged", "--token", token_text(doc))
    assert p.returncode != 0
    assert "unknown" in p.err and "expired" not in p.err, p.err
    assert "forged" not in client.run("context", "ls", "-q").out.split()
    assert "real" not in trust_names(site)  # nothing was entered


def test_malformed_token_is_refused_before_anything_is_sent(client):
    for bad in ("berth1-", "berth2-abc", "berth1-!!!", TOKEN_PREFIX + "A" * 5000):
        p = client.run("context", "create", "x", "--token", bad)
        assert p.returncode == 1, (bad, p.err)
        assert "token" in p.err, p.err


def test_token_with_host_or_tls_flags_is_refused(site, client):
    tok = site.make_token("flags", role="viewer")
    p = client.run("context", "create", "x", "--token", tok, "--host", site.d.host)
    assert p.returncode == 1 and "--token brings the host" in p.err, p.err
    # the token was not used up by the refusal
    client.ok("context", "create", "x", "--token", tok)


def test_existing_context_name_does_not_burn_the_token(site, client):
    client.ok("context", "create", "taken", "--host", site.d.host, "--tls-dir", site.pki.dir)
    tok = site.make_token("burn", role="viewer")
    p = client.run("context", "create", "taken", "--token", tok)
    assert p.returncode == 1 and "already exists" in p.err, p.err
    client.ok("context", "create", "fresh", "--token", tok)


def test_pin_mismatch_refuses_another_daemon(make_daemon, pki, site, client):
    """The token's address leads to a daemon with another server key: the
    client refuses it before sending the secret or the CSR."""
    other_pki = certs_init(Berth(mktemp_dir("enroll-other-")), mktemp_dir("enroll-opki-") / "tls")
    other = make_daemon(other_pki.dir)
    doc = token_doc(site.make_token("pinned", role="viewer"))
    doc["a"] = [f"127.0.0.1:{other.port}"]
    p = client.run("context", "create", "evil", "--token", token_text(doc))
    assert p.returncode == 125, (p.returncode, p.err)
    assert "does not match the token's pin" in p.err, p.err
    assert "/_berth/enroll" not in other.log_text()
    assert "pinned" not in trust_names(site)


def test_second_address_is_tried_when_the_first_is_unreachable(site, client):
    doc = token_doc(site.make_token("two-addrs", role="viewer"))
    doc["a"] = ["127.0.0.1:1"] + doc["a"]
    client.ok("context", "create", "two", "--token", token_text(doc))
    assert client.json("context", "inspect", "two")[0]["Host"] == site.d.host


# ---- lifetimes ----------------------------------------------------------------


def test_cert_days_above_the_max_is_refused(make_daemon, pki):
    s = Site(make_daemon, pki, extra=("--max-cert-days", "10"))
    st, reply = s.token("long", cert_days=11)
    assert st == 400, (st, reply)
    assert "max-cert-days (10)" in reply["message"], reply
    st, reply = s.token("ok", cert_days=10)
    assert st == 201, (st, reply)


def test_lowered_max_caps_a_pending_token_and_says_so(site, client):
    """max-cert-days lowered (restart) after the token was made: the cert is
    capped to the new max and the client is told."""
    doc = token_doc(site.make_token("capped", role="viewer", cert_days=30))
    assert site.d.stop() == 0
    site.d.extra = ["--max-cert-days", "2"]
    site.d.start()
    doc["a"] = [f"127.0.0.1:{site.d.port}"]  # a new port; the pin still holds
    p = client.ok("context", "create", "capped", "--token", token_text(doc))
    assert "capped to 2 days" in p.err, p.err
    na, _ = not_after(client, "capped")
    t = calendar.timegm(time.strptime(na[:19], "%Y-%m-%dT%H:%M:%S"))
    assert t - time.time() <= 2 * 86400 + 60, na


def test_cert_lifetime_is_the_tokens(site, client):
    client.ok("context", "create", "short", "--token",
              site.make_token("short", role="viewer", cert_days=3))
    na, _ = not_after(client, "short")
    t = calendar.timegm(time.strptime(na[:19], "%Y-%m-%dT%H:%M:%S"))
    assert 2.9 * 86400 < t - time.time() <= 3 * 86400 + 60, na


def test_renew_gives_a_later_cert_and_the_old_one_still_works(site, client):
    client.ok("context", "create", "r", "--token",
              site.make_token("renewer", role="viewer", cert_days=2))
    old_na, old_fp = not_after(client, "r")
    old = Berth(mktemp_dir("enroll-old-"))
    old.ok("context", "import", "r", "-", input=client.run("context", "export", "r", "-").stdout)

    p = client.ok("context", "renew", "r", "--cert-days", "5")
    assert p.out.strip() == "r"
    new_na, new_fp = not_after(client, "r")
    assert new_fp != old_fp and new_na > old_na, (old_na, new_na)
    assert client.run("-c", "r", "ps").returncode == 0  # the context uses the new cert
    assert old.run("-c", "r", "ps").returncode == 0  # the old one is valid until it expires
    assert trust_names(site).count("renewer") == 2

    p = client.run("context", "renew", "r", "--cert-days", "1000")
    assert p.returncode == 1 and "max-cert-days" in p.err, p.err
    assert not_after(client, "r")[1] == new_fp  # nothing written on a refusal


def test_renew_needs_a_context_with_a_cert(client):
    p = client.run("context", "renew", "default")
    assert p.returncode == 1 and "no client certificate" in p.err, p.err


def test_expired_client_cert_says_expired(site, client):
    out = mktemp_dir("enroll-expired-") / "tls"
    client.ok("certs", "issue", "gone", "--ca-dir", site.pki.dir, "--out", out, "--days", "-1")
    client.ok("context", "create", "gone", "--host", site.d.host, "--tls-dir", out)
    p = client.run("-c", "gone", "ps")
    assert p.returncode == 125, (p.returncode, p.err)
    assert "expired" in p.err, p.err
    p = client.run("context", "renew", "gone")
    assert p.returncode == 125 and "expired" in p.err, p.err


def test_enroll_without_ca_key_says_so(make_daemon, tmp_path):
    cli = Berth(mktemp_dir("enroll-nokey-"))
    pk = certs_init(cli, mktemp_dir("enroll-nokey-pki-") / "tls")
    os.unlink(pk.dir / "ca-key.pem")
    s = Site(make_daemon, pk)
    st, reply = s.token("nokey")
    assert st == 501, (st, reply)
    assert "ca-key.pem is missing" in reply["message"], reply


def test_trust_add_prints_a_token_when_the_command_exists(site, client):
    h = site.admin.run("trust", "--help")
    if h.returncode != 0:
        pytest.skip("berth trust (cmd_trust.c) is not in the tree yet")
    p = site.admin.ok("-c", "admin", "trust", "add", "cli-made", "--role", "viewer",
                      "--expires", "5m", "--cert-days", "7")
    tok = p.out.strip()
    assert tok.startswith(TOKEN_PREFIX) and "\n" not in tok, p.out
    client.ok("context", "create", "cli", "--token", tok)
    assert client.run("-c", "cli", "ps").returncode == 0

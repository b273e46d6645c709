"""Safe context selection and CI without files (issue 6, items 8 and 9):
protected contexts refuse destructive verbs unless named with -c, errors
name context and host, `context ls --check` probes every context at once,
`context ls` warns about client certs close to expiry, and
BERTH_CONTEXT_BUNDLE runs ps and exec from memory with a read-only HOME."""

import base64
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import Berth, Daemon, mktemp_dir
from test_containers import TEST_IMAGE, missing


# ---- a listener that counts connections: proves "nothing was sent" ---------


class Counter:
    """Accepts and closes TCP connections on a loopback port, counting them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    @property
    def host(self):
        return f"tcp://127.0.0.1:{self.port}"

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.count += 1
            c.close()

    def close(self):
        self.stop = True
        self.t.join(timeout=5)
        self.sock.close()


@pytest.fixture
def counter():
    c = Counter()
    yield c
    c.close()


DESTRUCTIVE = [
    ("rm", "-f", "web"),
    ("rmi", "busybox"),
    ("stop", "web"),
    ("kill", "web"),
    ("restart", "web"),
    ("image", "prune", "-f"),
    ("image", "rm", "busybox"),
    ("trust", "revoke", "alice"),
    ("volume", "rm", "data"),
]


def test_protected_refuses_destructive_verbs_without_c(berth, pki, counter):
    berth.ok("context", "create", "prod", "--host", counter.host, "--tls-dir", pki.dir,
             "--protected")
    berth.ok("context", "use", "prod")
    for argv in DESTRUCTIVE:
        p = berth.run(*argv, input=b"")
        if argv[0] in ("trust", "volume") and "unknown command" in p.err:
            continue  # not in this build yet; the guard covers it once it is
        assert p.returncode == 1, (argv, p.err)
        line = p.err.strip()
        assert "\n" not in line, p.err
        assert 'context "prod"' in line and counter.host in line, p.err
        assert "protected" in line and "-c prod" in line, p.err
    # The same through BERTH_CONTEXT, and --force changes nothing.
    p = berth.run("rm", "--force", "web", env={"BERTH_CONTEXT": "prod"})
    assert p.returncode == 1 and "from BERTH_CONTEXT" in p.err, p.err
    assert counter.count == 0, "a refused command connected to the daemon"


def test_protected_needs_the_exact_name(berth, pki, counter):
    berth.ok("context", "create", "prod", "--host", counter.host, "--tls-dir", pki.dir,
             "--protected")
    berth.ok("context", "create", "prod2", "--host", counter.host, "--tls-dir", pki.dir)
    for sel in ("prod*", "pro?", "[p]rod", "prod2,p*"):
        p = berth.run("-c", sel, "rm", "-f", "web")
        assert p.returncode == 1 and 'context "prod"' in p.err, (sel, p.err)
        assert "pattern" in p.err, p.err
    assert counter.count == 0
    # Named exactly: the guard lets it through (the fake daemon then fails it).
    p = berth.run("-c", "prod", "rm", "-f", "web")
    assert "protected" not in p.err, p.err
    assert counter.count >= 1, "rm -c prod never reached the daemon"
    # Named exactly inside a list (a fan-out): allowed too, on both hosts.
    before = counter.count
    p = berth.run("-c", "prod,prod2", "rm", "-f", "web")
    assert "protected" not in p.err, p.err
    assert counter.count >= before + 2, (counter.count, p.err)


def test_protected_label_selector_refused(berth, pki, counter):
    p = berth.run("context", "create", "prod", "--host", counter.host, "--tls-dir", pki.dir,
                  "--protected", "--label", "env=prod")
    if p.returncode != 0 and "label" in p.err:
        pytest.skip("context labels are not in this build")
    assert p.returncode == 0, p.err
    p = berth.run("-c", "@env=prod", "stop", "web")
    assert p.returncode == 1 and 'context "prod"' in p.err and "protected" in p.err, p.err
    assert counter.count == 0


def test_protected_flag_round_trip(berth, pki, counter):
    berth.ok("context", "create", "prod", "--host", counter.host, "--tls-dir", pki.dir,
             "--protected")
    [meta] = berth.json("context", "inspect", "prod")
    assert meta["Protected"] is True
    ls = {c["Name"]: c for c in berth.json("context", "ls", "--format", "json")}
    assert ls["prod"]["Protected"] is True and ls["default"]["Protected"] is False
    # Non-destructive verbs are not the guard's business.
    berth.ok("context", "use", "prod")
    p = berth.run("ps")
    assert "protected" not in p.err and counter.count >= 1, p.err
    before = counter.count
    p = berth.run("context", "update", "prod", "--protected=maybe")
    assert p.returncode == 1 and "true or false" in p.err, p.err
    berth.ok("context", "update", "prod", "--protected=false")
    assert berth.json("context", "inspect", "prod")[0]["Protected"] is False
    p = berth.run("rm", "-f", "web")
    assert "protected" not in p.err and counter.count > before, p.err
    berth.ok("context", "update", "prod", "--protected=true")
    assert berth.run("rm", "-f", "web").returncode == 1


def test_transport_error_names_context_and_host(berth, pki, counter):
    counter.close()  # nobody listens on that port any more
    berth.ok("context", "create", "gone", "--host", counter.host, "--tls-dir", pki.dir)
    p = berth.run("-c", "gone", "ps")
    assert p.returncode == 125, p.err
    assert p.err.startswith(f"berth: context gone (host {counter.host}): "), p.err
    p = berth.run("-c", "gone", "exec", "web", "true")
    assert p.returncode == 125, p.err
    assert f"context gone (host {counter.host})" in p.err, p.err


def test_daemon_error_names_context_and_host(berth, daemon, pki):
    berth.ok("context", "create", "up", "--host", daemon.host, "--tls-dir", pki.dir)
    berth.ok("context", "use", "up")
    p = berth.run("inspect", "no-such-ctr-ctxsafe")
    assert p.returncode == 1, p.err
    assert p.err.startswith("berth: Error response from daemon: "), p.err  # docker's words
    assert p.err.rstrip().endswith(f"(context up, host {daemon.host})"), p.err
    # After -H the host is on the command line: docker's line unchanged.
    p = berth.run("-H", daemon.host, "--tls-dir", pki.dir, "inspect", "no-such-ctr-ctxsafe")
    assert p.returncode == 1 and "(context" not in p.err, p.err


# ---- context ls --check and the expiry warning --------------------------------


def test_ls_check_probes_concurrently(berth, daemon, pki, counter):
    berth.ok("context", "create", "up", "--host", daemon.host, "--tls-dir", pki.dir)
    berth.ok("context", "create", "down", "--host", "tcp://127.0.0.1:1", "--tls-dir", pki.dir)
    # Three hosts that accept TCP and never speak TLS: each needs the timeout.
    silent = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        silent.append(s)
    try:
        for i, s in enumerate(silent):
            berth.ok("context", "create", f"mute{i}", "--host",
                     f"tcp://127.0.0.1:{s.getsockname()[1]}", "--tls-dir", pki.dir)
        t0 = time.monotonic()
        rows = berth.json("context", "ls", "--check", "--timeout", "3s", "--format", "json")
        took = time.monotonic() - t0
    finally:
        for s in silent:
            s.close()
    by = {r["Name"]: r for r in rows}
    assert by["up"]["Reachable"] is True and by["up"]["Version"], by["up"]
    assert 0 < by["up"]["RttMs"] < 3000, by["up"]
    assert by["up"]["CertExpires"][:2] == "20", by["up"]
    assert by["down"]["Reachable"] is False and "connection refused" in by["down"]["Error"]
    for i in range(3):
        r = by[f"mute{i}"]
        assert r["Reachable"] is False and "timed out" in r["Error"], r
    # Concurrent: three 3 s timeouts together (9 s one after the other).
    assert took < 7.0, f"ls --check took {took:.1f}s for three 3s timeouts"
    table = berth.ok("context", "ls", "--check", "--timeout", "3000ms").out
    head = table.splitlines()[0].split()
    assert head[:5] == ["NAME", "HOST", "REACHABLE", "RTT", "VERSION"], table
    up = next(l for l in table.splitlines() if l.startswith("up "))
    assert " yes " in up and by["up"]["Version"] in up, table


def test_ls_check_bad_timeout(berth):
    p = berth.run("context", "ls", "--check", "--timeout", "soon")
    assert p.returncode == 1 and "--timeout" in p.err, p.err


def test_ls_warns_about_expiring_certs(berth, pki, tmp_path):
    soon = tmp_path / "soon"
    old = tmp_path / "old"
    berth.ok("certs", "issue", "ci", "--ca-dir", pki.dir, "--out", soon, "--days", "3")
    berth.ok("certs", "issue", "ci", "--ca-dir", pki.dir, "--out", old, "--days", "-1")
    berth.ok("context", "create", "soon", "--host", "tcp://127.0.0.1:1", "--tls-dir", soon)
    berth.ok("context", "create", "old", "--host", "tcp://127.0.0.1:1", "--tls-dir", old)
    berth.ok("context", "create", "fine", "--host", "tcp://127.0.0.1:1", "--tls-dir", pki.dir)
    p = berth.ok("context", "ls")
    warn = [l for l in p.err.splitlines() if l.startswith("berth: warning:")]
    assert any('"soon"' in l and ("expires in 2 days" in l or "expires in 3 days" in l)
               for l in warn), p.err
    assert any('"old"' in l and "EXPIRED" in l for l in warn), p.err
    assert not any('"fine"' in l for l in warn), p.err
    assert "soon" in p.out and "EXPIRED" not in p.out  # stdout stays the table


# ---- BERTH_CONTEXT_BUNDLE ---------------------------------------------------------


def bundle_of(cli, name):
    tar = subprocess.run([cli.path, "context", "export", name, "-"], env=cli.env(),
                         capture_output=True, check=True).stdout
    return base64.encodebytes(tar).decode()  # wrapped at 76 columns, as base64(1)


@pytest.fixture
def readonly_home(tmp_path):
    """An empty directory mounted read-only (root ignores mode 0555)."""
    d = tmp_path / "ro-home"
    d.mkdir()
    os.chmod(d, 0o555)
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0555", "tmpfs", d],
                       check=True)
    yield d
    if os.geteuid() == 0:
        subprocess.run(["umount", d], check=True)


def tmp_files():
    out = {}
    for root, dirs, files in os.walk("/tmp"):
        for f in files:
            p = os.path.join(root, f)
            try:
                out[p] = os.stat(p).st_mtime_ns
            except OSError:
                pass
    return out


def holds(path, needle):
    try:
        with open(path, "rb") as f:
            return needle in f.read(16 << 20)
    except OSError:
        return False


@pytest.fixture(scope="module")
def bcli(pki):
    """A berthd with the image loaded and a running container "bx"."""
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    d = Daemon(pki.dir, mktemp_dir("ctxsafe-d-"))
    d.start()
    cli = Berth(mktemp_dir("ctxsafe-cli-"))
    cli.ok("context", "create", "ci", "--host", d.host, "--tls-dir", pki.dir)
    try:
        cli.ok("-c", "ci", "load", "-i", TEST_IMAGE)
        cli.ok("-c", "ci", "run", "-d", "--name", "bx", "busybox", "sleep", "100000")
        yield cli
    finally:
        try:
            cli.run("-c", "ci", "rm", "-f", "bx")
            d.stop()
        finally:
            d.kill()


def test_bundle_runs_from_memory_with_readonly_home(bcli, pki, readonly_home, tmp_path):
    bundle = bundle_of(bcli, "ci")
    key_body = b"".join(pki.key.read_bytes().splitlines()[1:-1])[:40]
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    env = {"BERTH_CONTEXT_BUNDLE": bundle, "TMPDIR": private_tmp}
    ci = Berth(tmp_path / "ci")
    ci.env = lambda **extra: {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DOCKER_", "CURL_"))},
        "HOME": str(readonly_home), "BERTH_CONFIG": str(readonly_home),
        **{k: str(v) for k, v in extra.items()}}
    before = tmp_files()

    show = ci.run("context", "show", env=env, input=b"")
    assert show.returncode == 0 and "from BERTH_CONTEXT_BUNDLE" in show.out, show
    ps = ci.run("ps", "--format", "json", env=env, input=b"")
    assert ps.returncode == 0, ps.err
    assert any(json.loads(l)["Names"] == "bx" for l in ps.out.splitlines()), ps.out
    ex = ci.run("exec", "bx", "sh", "-c", "echo bundled; exit 3", env=env, input=b"")
    assert ex.returncode == 3 and ex.out == "bundled\n", ex  # the WebSocket path
    ex = ci.run("exec", "-i", "bx", "cat", env=env, input=b"stdin through the bundle\n")
    assert ex.returncode == 0 and ex.out == "stdin through the bundle\n", ex
    chk = ci.run("context", "ls", "--check", "--format", "json", env=env, input=b"")
    assert chk.returncode == 0, chk.err
    [row] = [r for r in json.loads(chk.out) if r.get("Bundle")]
    assert row["Name"] == "ci" and row["Reachable"] is True and row["Version"], row

    assert list(readonly_home.iterdir()) == [], "something was written under HOME"
    assert list(private_tmp.iterdir()) == [], "something was written to TMPDIR"
    after = tmp_files()
    fresh = [p for p, m in after.items() if before.get(p) != m]
    leaked = [p for p in fresh if holds(p, key_body) or holds(p, bundle[:60].encode())]
    assert leaked == [], f"key material written to {leaked}"


def test_bundle_precedence_and_protection(bcli, pki, tmp_path):
    cli = Berth(tmp_path / "c")
    cli.ok("context", "create", "ci", "--host", "tcp://127.0.0.1:1", "--tls-dir", pki.dir,
           "--protected")
    tar = tmp_path / "ci.tar"
    cli.ok("context", "export", "ci", tar)
    # The exported context is protected and points nowhere; rebuild one that
    # points at bcli's daemon, protected, and pass it as the bundle.
    host = bcli.json("context", "inspect", "ci")[0]["Host"]
    cli.ok("context", "update", "ci", "--host", host)
    bundle = bundle_of(cli, "ci")
    env = {"BERTH_CONTEXT_BUNDLE": bundle, "BERTH_HOST": "tcp://127.0.0.1:1",
           "BERTH_CERT_PATH": str(pki.dir)}
    other = Berth(tmp_path / "other")
    # The bundle wins over BERTH_HOST / BERTH_CONTEXT (CI set it on purpose).
    assert "from BERTH_CONTEXT_BUNDLE" in other.ok("context", "show", env=env).out
    other.ok("ps", env=env)
    # Protected in the bundle: rm refuses, unless -c names the bundle.
    p = other.run("rm", "-f", "no-such-ctr", env=env)
    assert p.returncode == 1 and 'context "ci"' in p.err and "protected" in p.err, p.err
    p = other.run("-c", "ci", "rm", "-f", "no-such-ctr", env=env)
    assert "protected" not in p.err, p.err
    assert p.returncode == 0 or "No such container" in p.err, p.err
    # -H still beats the bundle.
    p = other.run("-H", "tcp://127.0.0.1:1", "--tls-dir", pki.dir, "context", "show", env=env)
    assert "from -H" in p.out, p.out


@pytest.mark.parametrize("value, needle", [
    ("not base64 at all!", "not base64"),
    (base64.b64encode(b"garbage, not a tar").decode(), "tar"),
])
def test_bad_bundle_is_one_clear_error(berth, value, needle):
    p = berth.run("ps", env={"BERTH_CONTEXT_BUNDLE": value}, input=b"")
    assert p.returncode == 1, p
    assert p.err.startswith("berth: BERTH_CONTEXT_BUNDLE: ") and needle in p.err, p.err
    assert p.err.count("\n") == 1, p.err


def test_no_prompt_without_a_terminal(berth, pki, counter):
    berth.ok("context", "create", "plain", "--host", counter.host, "--tls-dir", pki.dir)
    p = berth.run("-c", "plain", "image", "prune", input=b"y\n")
    assert p.returncode == 1 and "pass -f" in p.err, p.err
    assert "[y/N]" not in p.err and "Are you sure" not in p.err, p.err
    assert counter.count == 0, "prune went to the daemon without -f and without a terminal"


def test_bundle_with_encrypted_key_is_refused_not_a_crash(berth, pki, counter, tmp_path):
    """libcurl 7.88 dereferences a NULL pass phrase for an encrypted key blob
    (SIGSEGV), and OpenSSL's default would prompt on the terminal: refused
    before any connection instead."""
    import io
    import shutil
    import tarfile

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl tool to encrypt a key")
    enc = subprocess.run(["openssl", "ec", "-in", pki.key, "-aes256", "-passout", "pass:x"],
                         capture_output=True, check=True).stdout
    berth.ok("context", "create", "enc", "--host", counter.host, "--tls-dir", pki.dir)
    tar = subprocess.run([berth.path, "context", "export", "enc", "-"], env=berth.env(),
                         capture_output=True, check=True).stdout
    src, out = tarfile.open(fileobj=io.BytesIO(tar)), io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name == "tls/key.pem":
                data, m.size = enc, len(enc)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    env = {"BERTH_CONTEXT_BUNDLE": base64.b64encode(out.getvalue()).decode()}
    for argv in (("ps",), ("exec", "x", "true"), ("context", "ls", "--check")):
        p = Berth(tmp_path / "x").run(*argv, env=env, input=b"")
        assert p.returncode in (0, 1), (argv, p.returncode, p.err)  # 0: ls --check reports
        assert "the key is encrypted" in p.err + p.out, (argv, p.err, p.out)
    assert counter.count == 0


def test_bundle_with_expired_cert_says_so(berth, daemon, pki, tmp_path):
    old = tmp_path / "old"
    berth.ok("certs", "issue", "ci-old", "--ca-dir", pki.dir, "--out", old, "--days", "-1")
    berth.ok("context", "create", "old", "--host", daemon.host, "--tls-dir", old)
    env = {"BERTH_CONTEXT_BUNDLE": bundle_of(berth, "old")}
    p = Berth(tmp_path / "ci").run("ps", env=env, input=b"")
    assert p.returncode == 125, p.err
    assert "expired" in p.err and "context old" in p.err, p.err

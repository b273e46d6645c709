"""Black-box harness for berth: fresh certs, berthd on a free loopback port
with temporary roots, and the berth CLI run as a subprocess with its own
BERTH_CONFIG and HOME.  Every daemon started here is stopped by a finalizer,
and the session ends with a check that none is left running.

Binaries come from $BERTH_BIN_DIR, else <repo>/build/bin.  With
BERTH_E2E_STRICT=1 (scripts/test sets it) a missing binary fails the run
instead of skipping it.
"""

import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("BERTH_BIN_DIR") or REPO / "build" / "bin")
STRICT = os.environ.get("BERTH_E2E_STRICT") == "1"

# Variables of this machine that make TLS clients trust something other than
# the CA a test hands them, and berth's own variables a test sets explicitly.
SCRUB_ENV = (
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NIX_SSL_CERT_FILE",
    "AWS_CA_BUNDLE",
    "BERTH_HOST",
    "BERTH_CERT_PATH",
    "BERTH_CONTEXT",
    "BERTH_CONFIG",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONFIG",
)

CMD_TIMEOUT = 30  # seconds for one CLI run
READY_TIMEOUT = 15  # seconds for berthd to write its pid file
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL

# Every berthd this session started, so the session can prove none survives
# and that none hit a sanitizer report.  The Popen objects, not bare pids: a
# reaped berthd's pid is soon reused (pid_max 32768 and thousands of
# processes per session), and the check then flagged, and SIGKILLed, whatever
# process had it next (another session's container monitors).
_STARTED = []
_DAEMONS = []
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
_SESSION_TMP = tempfile.mkdtemp(prefix="berth-e2e-")

# Container cgroups (v1: the pids hierarchy; v2: the unified root) that exist
# before the session: only the ones the session makes are its business.
_CGROUP_GLOBS = ("/sys/fs/cgroup/pids/berth/*", "/sys/fs/cgroup/berth/*")


def _berth_cgroups():
    return {d for g in _CGROUP_GLOBS for d in glob.glob(g) if os.path.isdir(d)}


_CGROUPS_AT_START = _berth_cgroups()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # tmp_path dirs hold copies of private keys: keep them inside the session
    # dir that the session removes, instead of pytest's retained basetemp.
    if not config.option.basetemp:
        config.option.basetemp = os.path.join(_SESSION_TMP, "pytest")


def need_binary(name):
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        msg = f"{path} not built (set BERTH_BIN_DIR or build {name})"
        if STRICT:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return path


def scrubbed_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def mktemp_dir(prefix):
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_SESSION_TMP))


def free_port():
    """A loopback port nobody listens on right now (the caller retries if it
    is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.02):
    """Bounded polling for a condition; returns its truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except FileNotFoundError:
        return False


# ---- the CLI ---------------------------------------------------------------


class Berth:
    """Runs the berth CLI with a private config dir and HOME."""

    def __init__(self, root):
        self.path = str(need_binary("berth"))
        self.root = Path(root)
        self.config = self.root / "config"
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self, **extra):
        return scrubbed_env(BERTH_CONFIG=self.config, HOME=self.home, **extra)

    def run(self, *args, env=None, input=None, check=False, timeout=CMD_TIMEOUT):
        cmd = [self.path] + [str(a) for a in args]
        p = subprocess.run(
            cmd,
            env=self.env(**(env or {})),
            input=input,
            capture_output=True,
            timeout=timeout,
        )
        p.out = p.stdout.decode(errors="replace")
        p.err = p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.out}\nstderr: {p.err}"
            )
        return p

    def ok(self, *args, **kw):
        return self.run(*args, check=True, **kw)

    def json(self, *args, **kw):
        p = self.ok(*args, **kw)
        try:
            return json.loads(p.out)
        except ValueError as e:
            raise AssertionError(f"berth {' '.join(map(str, args))}: not JSON ({e}): {p.out!r}")


@pytest.fixture
def berth(tmp_path):
    return Berth(tmp_path / "cli")


# ---- certificates ----------------------------------------------------------


class Pki:
    """A `berth certs init` directory: ca.pem, server-*.pem, cert.pem, key.pem."""

    def __init__(self, d):
        self.dir = Path(d)
        self.ca = self.dir / "ca.pem"
        self.cert = self.dir / "cert.pem"
        self.key = self.dir / "key.pem"
        self.server_cert = self.dir / "server-cert.pem"
        self.server_key = self.dir / "server-key.pem"


def certs_init(cli, d, *extra):
    cli.ok("certs", "init", "--dir", d, *extra)
    pki = Pki(d)
    for f in (pki.ca, pki.cert, pki.key, pki.server_cert, pki.server_key):
        assert f.is_file(), f"berth certs init did not write {f}"
    return pki


@pytest.fixture(scope="session")
def session_cli():
    return Berth(mktemp_dir("cli-"))


@pytest.fixture(scope="session")
def pki(session_cli):
    return certs_init(session_cli, mktemp_dir("pki-") / "tls")


@pytest.fixture(scope="session")
def other_pki(session_cli):
    """A second, unrelated CA: its certs must be worthless to our daemon."""
    return certs_init(session_cli, mktemp_dir("other-pki-") / "tls")


def cert_fingerprint_der(der):
    return hashlib.sha256(der).hexdigest()


# ---- the daemon ------------------------------------------------------------


class Daemon:
    def __init__(self, tls_dir, root, config=None, extra=(), unix_listen=True):
        self.path = str(need_binary("berthd"))
        self.tls_dir = Path(tls_dir)
        self.root = Path(root)
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.sock = self.exec_root / "berthd.sock"
        self.pidfile = self.exec_root / "berthd.pid"
        self.log = self.root / "berthd.log"
        self.config = config
        self.extra = list(extra)
        self.unix_listen = unix_listen
        self.proc = None
        self.port = None
        self.ready = False  # came up (pid file written) at least once
        _DAEMONS.append(self)

    @property
    def host(self):
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def argv(self, port):
        a = [
            self.path,
            "--listen", f"tcp://127.0.0.1:{port}",
        ]
        if self.unix_listen:
            a += ["--listen", f"unix://{self.sock}"]
        a += [
            "--tls-dir", str(self.tls_dir),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--log-level", "debug",
        ]
        if self.config is not None:
            a += ["--config", str(self.config)]
        return a + self.extra

    def spawn(self, port):
        """Starts berthd without waiting; returns the Popen."""
        self.port = port
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.argv(port),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=scrubbed_env(),
            start_new_session=True,
        )
        logf.close()
        _STARTED.append(self.proc)
        return self.proc

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self):
        """Bounded wait for the pid file; fails early if berthd exits."""

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            return self.pidfile.exists() and "ready"

        state = wait_for(ready, READY_TIMEOUT, f"berthd pid file {self.pidfile}")
        return state == "ready"

    def start(self, attempts=5):
        last = ""
        for _ in range(attempts):
            self.spawn(free_port())
            if self.wait_ready():
                pid = int(self.pidfile.read_text().strip())
                assert pid == self.proc.pid, f"pid file says {pid}, process is {self.proc.pid}"
                self.ready = True
                return self
            last = self.log_text()
            # Another process grabbed the port between our probe and berthd's bind.
            if "in use" not in last.lower():
                break
        raise AssertionError(f"berthd did not start (exit {self.proc.returncode}):\n{last}")

    def stop(self):
        """SIGTERM, bounded wait, SIGKILL as the last resort.  Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(f"berthd ignored SIGTERM for {STOP_TIMEOUT}s; killed")

    def shutdown(self):
        """Fixture teardown: a daemon that came up must stop cleanly on
        SIGTERM (exit 0: under ASan this also means no leak report)."""
        try:
            rc = self.stop()
        finally:
            self.kill()
        if self.ready and rc != 0:
            tail = self.log_text()[-4000:]
            raise AssertionError(f"berthd exited {rc} after SIGTERM; log tail:\n{tail}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def make_daemon(tmp_path, no_stray_daemons):
    """Factory for private daemons; all are stopped when the test ends."""
    daemons = []

    def make(tls_dir, config=None, extra=(), start=True, unix_listen=True):
        d = Daemon(tls_dir, mktemp_dir("d-"), config=config, extra=extra, unix_listen=unix_listen)
        daemons.append(d)
        return d.start() if start else d

    yield make
    errors = []
    for d in daemons:
        try:
            d.shutdown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def daemon(pki, no_stray_daemons):
    """One shared daemon for the tests that only read from it."""
    d = Daemon(pki.dir, mktemp_dir("shared-d-"))
    try:
        d.start()
        yield d
    finally:
        d.shutdown()


def trust(daemon, cert, role="operator", name=None):
    """Enters a client cert issued offline (`berth certs issue`) into daemon's
    trust store, as an admin would with `berth trust add NAME --cert FILE`:
    over the root-only unix socket, or with the certs-init admin cert.
    Without this a CA-valid cert is refused at the handshake.  Returns NAME."""
    cert = Path(cert)
    name = name or "t-" + hashlib.sha256(cert.read_bytes()).hexdigest()[:12]
    cli = Berth(mktemp_dir("trust-cli-"))
    if daemon.unix_listen:
        target = ["-H", f"unix://{daemon.sock}"]
    else:
        target = ["-H", daemon.host, "--tls-dir", daemon.tls_dir]
    p = cli.run(*target, "trust", "add", name, "--cert", cert, "--role", role)
    if p.returncode != 0 and "already trusted" not in p.err:
        raise AssertionError(f"berth trust add {name} exited {p.returncode}: {p.err}")
    return name


# ---- raw TLS / HTTP clients ------------------------------------------------


def client_ssl_context(ca, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def tls_connect(addr, ctx, timeout=10):
    raw = socket.create_connection(addr, timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=addr[0])
    except BaseException:
        raw.close()
        raise


def raw_request(addr, ctx, request=b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"):
    """Handshake, one request, read until close.  Returns the bytes received;
    raises whatever the TLS layer raises."""
    with tls_connect(addr, ctx) as s:
        s.sendall(request)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def server_cert_der(addr, ca, cert, key):
    with tls_connect(addr, client_ssl_context(ca, cert, key)) as s:
        return s.getpeercert(binary_form=True)


def https_conn(daemon, pki):
    import http.client

    ctx = client_ssl_context(pki.ca, pki.cert, pki.key)
    return http.client.HTTPSConnection("127.0.0.1", daemon.port, context=ctx, timeout=15)


def http_get_json(daemon, pki, path):
    c = https_conn(daemon, pki)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, f"GET {path}: {r.status} {body[:300]!r}"
        return json.loads(body)
    finally:
        c.close()


# ---- session end: no daemon survives --------------------------------------


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _strays():
    """Our berthd pids still alive, plus any process whose command line
    points into this session's temp dir: {pid: command line}."""
    # poll() reaps our own child or says it runs: never another process.
    out = {p.pid: _cmdline(p.pid) for p in _STARTED if p.poll() is None}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if _SESSION_TMP.encode() in cmd and pid_alive(int(d)):
            out[int(d)] = _cmdline(int(d))
    return out


def _ours(cid):
    """Is container cid one of this session's daemons' (its directory is in
    a data root under the session's temp dir: a daemon's or a fleet node's)?"""
    return any(glob.glob(os.path.join(_SESSION_TMP, *["*"] * depth, "containers", cid))
               for depth in range(1, 7))


def _stray_containers():
    """Containers this session started that still have processes (a test
    that left one running, or a monitor that died under it): {cgroup: pids}."""
    out = {}
    for d in sorted(_berth_cgroups() - _CGROUPS_AT_START):
        # Only this session's: other sessions and benches on the machine
        # make containers meanwhile, and killing theirs broke their runs.
        if not _ours(os.path.basename(d)):
            continue
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        if pids:
            out[d] = pids
    return out


def _sanitizer_reports():
    """ASan/LSan/UBSan reports in the log of any daemon of this session
    (also those a test stopped itself without checking the exit status)."""
    out = []
    for d in _DAEMONS:
        log = d.log_text()
        hits = [i for m in SANITIZER_MARKS if (i := log.find(m)) >= 0]
        if hits:
            out.append(f"{d.log}:\n{log[max(0, min(hits) - 200):min(hits) + 3000]}")
    return out


def _mounts_under(root):
    """Mount points at or below root (mountinfo field 5; octal escapes kept)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == root or p.startswith(root + "/")]


@pytest.fixture(scope="session", autouse=True)
def no_stray_daemons():
    """Session end: nothing we started may survive.  The daemon fixtures
    depend on this one so that it is torn down after them."""
    yield
    strays = _strays()
    for p in strays:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    containers = _stray_containers()
    for pids in containers.values():
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    reports = _sanitizer_reports()
    mounts = _mounts_under(_SESSION_TMP)
    for m in reversed(mounts):  # innermost last in mountinfo
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    assert not strays, f"processes left running at session end: {strays}"
    assert not containers, f"containers left running at session end: {containers}"
    assert not mounts, f"mounts left under {_SESSION_TMP} at session end: {mounts}"
    assert not reports, "sanitizer reports in berthd logs:\n" + "\n\n".join(reports)

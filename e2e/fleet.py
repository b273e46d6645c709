"""A fleet of berthd daemons for the fan-out and fleet-access tests (issue 6):
a test bridge in the host namespace, N network namespaces each joined to it
by a veth pair and holding one berthd on its own address, one CA for the
fleet, a real registry (docker-registry) on the bridge address that every
daemon may pull from over plain HTTP, and an admin CLI with one context per
host.  Everything is made by Fleet.setup() and removed by Fleet.teardown(),
which runs every step even when an earlier one failed.

berthd is started with `nsenter --net=` (not `ip netns exec`, which also
remounts /sys in a private mount namespace and so hides the cgroup mounts
the daemon needs); nsenter execs, so the Popen pid is berthd's pid.
Traffic goes only to the bridge subnet (10.231.X.0/24, X random and unused)
and loopback."""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import registry as regmod
from conftest import READY_TIMEOUT, Berth, Daemon, mktemp_dir, wait_for

FLEET_SIZE = 20
PORT = 7443  # every daemon has a namespace of its own, so all use the same port
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else (shutil.which("ip") or "ip")
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"


def sh(*cmd, timeout=30):
    """Runs a command, raising with its stderr when it fails."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace').strip()}")
    return p.stdout.decode(errors="replace")


def tools_missing():
    """Why a fleet cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the fleet needs root (network namespaces, berthd's image store)"
    for t in (IP, NSENTER):
        if not os.access(t, os.X_OK):
            return f"{t} is needed (iproute2, util-linux)"
    if not regmod.available():
        return "docker-registry and skopeo are needed (scripts/install-deps)"
    return None


def pick_subnet():
    """A 10.231.X prefix that no address or route on this host uses yet."""
    used = sh(IP, "-4", "-o", "addr", "show") + sh(IP, "-4", "route", "show", "table", "all")
    for _ in range(64):
        prefix = f"10.231.{secrets.randbelow(254) + 1}"
        if prefix + "." not in used:
            return prefix
    raise AssertionError("no free 10.231.X.0/24 subnet for the test bridge")


class UnixHttp(http.client.HTTPConnection):
    """HTTP over berthd's unix socket (root only, admin): the teardown path
    that works whatever a test did to the trust store."""

    def __init__(self, path, timeout=15):
        super().__init__("berth", timeout=timeout)
        self.path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def unix_call(sock, method, path, body=None):
    c = UnixHttp(sock)
    try:
        if body is None:
            c.request(method, path)
        else:
            c.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class FleetRegistry(regmod.Registry):
    """docker-registry listening on the bridge address instead of loopback."""

    def __init__(self, root, addr):
        super().__init__(root)
        self.addr = addr

    @property
    def host(self):
        return f"{self.addr}:{self.port}"

    def _config(self):
        path = super()._config()
        text = path.read_text().replace(f"addr: 127.0.0.1:{self.port}", f"addr: {self.host}")
        path.write_text(text)
        return path


class FleetHost(Daemon):
    """One berthd in its own network namespace."""

    def __init__(self, fleet, index):
        self.index = index
        self.name = f"fleet-{index:02d}"
        self.ns = f"bfl{fleet.suffix}-{index}"
        self.veth = f"bfl{fleet.suffix}v{index}"
        self.ip = f"{fleet.prefix}.{index + 1}"
        root = fleet.root / self.name
        root.mkdir()
        tls = root / "tls"
        super().__init__(tls, root, extra=["--insecure-registry", fleet.registry.host])

    @property
    def host(self):
        return f"tcp://{self.ip}:{self.port}"

    @property
    def addr(self):
        return (self.ip, self.port)

    def argv(self, port):
        return [NSENTER, f"--net=/run/netns/{self.ns}", "--", self.path,
                "--listen", f"tcp://{self.ip}:{port}", "--listen", f"unix://{self.sock}",
                "--tls-dir", str(self.tls_dir), "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root), "--log-level", "info"] + self.extra

    def wait_up(self):
        """Bounded wait for this start's pid file (it names our pid)."""

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return int(self.pidfile.read_text().strip()) == self.proc.pid and "ready"
            except (FileNotFoundError, ValueError):
                return False

        if wait_for(ready, READY_TIMEOUT, f"{self.name}'s pid file") != "ready":
            raise AssertionError(f"{self.name}: berthd exited {self.proc.returncode}:\n"
                                 f"{self.log_text()[-3000:]}")
        self.ready = True

    def crash(self):
        """SIGKILL: the daemon dies mid-whatever (its containers keep running)."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self):
        self.pidfile.unlink(missing_ok=True)
        self.spawn(PORT)
        self.wait_up()

    def containers(self):
        st, body = unix_call(self.sock, "GET", "/containers/json?all=1")
        assert st == 200, f"{self.name}: list containers: {st} {body[:200]!r}"
        return [c["Id"] for c in json.loads(body)]

    def remove_containers(self):
        for cid in self.containers():
            st, body = unix_call(self.sock, "DELETE", f"/containers/{cid}?force=1")
            assert st in (204, 404), f"{self.name}: rm {cid[:12]}: {st} {body[:200]!r}"


class Fleet:
    def __init__(self, size=FLEET_SIZE):
        self.size = size
        self.root = mktemp_dir("fleet-")
        self.suffix = secrets.token_hex(3)
        self.bridge = f"bfl{self.suffix}"
        self.prefix = None
        self.gw = None
        self.ca = self.root / "ca"
        self.cli = Berth(self.root / "admin-cli")  # contexts fleet-NN, admin cert
        self.registry = None
        self.hosts = []
        self._namespaces = []
        self._bridge_made = False
        self.setup_seconds = None

    @property
    def image(self):
        return f"{self.registry.host}/busybox:latest"

    # ---- setup -----------------------------------------------------------------

    def setup(self, test_image):
        t0 = time.monotonic()
        self.prefix = pick_subnet()
        self.gw = f"{self.prefix}.1"
        sh(IP, "link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        sh(IP, "addr", "add", f"{self.gw}/24", "dev", self.bridge)
        sh(IP, "link", "set", self.bridge, "up")
        self.registry = FleetRegistry(self.root / "registry", self.gw).start()
        with ThreadPoolExecutor(4) as pool:
            filled = pool.submit(self.registry.skopeo_copy, f"docker-archive:{test_image}",
                                 "busybox:latest", "--format", "v2s2")
            self.cli.ok("certs", "init", "--dir", self.ca)
            self.hosts = [FleetHost(self, i) for i in range(1, self.size + 1)]
            list(pool.map(self._make_tls, self.hosts))
            for h in self.hosts:  # serially: `ip netns add` mounts /run/netns once
                self._make_netns(h)
            for h in self.hosts:
                h.spawn(PORT)
            for h in self.hosts:
                h.wait_up()
            for h in self.hosts:
                self.cli.ok("context", "create", h.name, "--host", h.host, "--tls-dir", self.ca)
            filled.result()
        self.setup_seconds = time.monotonic() - t0
        return self

    def _make_tls(self, h):
        """The host's own server cert (its IP as SAN) from the fleet CA, plus
        ca-key.pem (berthd signs enrolled clients) and the admin cert.pem (the
        trust store's first admin)."""
        self.cli.ok("certs", "server", "--ca-dir", self.ca, "--out", h.tls_dir, "--ip", h.ip)
        for f in ("ca-key.pem", "cert.pem"):
            shutil.copy(self.ca / f, h.tls_dir / f)
        os.chmod(h.tls_dir / "ca-key.pem", 0o600)

    def _make_netns(self, h):
        sh(IP, "netns", "add", h.ns)
        self._namespaces.append(h.ns)
        sh(IP, "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
        sh(IP, "link", "set", h.veth, "master", self.bridge, "up")
        sh(IP, "-n", h.ns, "addr", "add", f"{h.ip}/24", "dev", "eth0")
        sh(IP, "-n", h.ns, "link", "set", "eth0", "up")
        sh(IP, "-n", h.ns, "link", "set", "lo", "up")

    # ---- teardown --------------------------------------------------------------

    def teardown(self):
        """Every step runs; the errors are raised together at the end."""
        errors = []

        def step(fn, *a):
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - keep tearing down
                errors.append(f"{getattr(fn, '__name__', fn)}: {e}")

        live = [h for h in self.hosts if h.proc is not None and h.proc.poll() is None]
        with ThreadPoolExecutor(4) as pool:
            for h, f in [(h, pool.submit(h.remove_containers)) for h in live]:
                step(f.result)
        for h in live:
            step(h.proc.send_signal, signal.SIGTERM)
        for h in self.hosts:
            step(h.shutdown)
        if self.registry is not None:
            step(self.registry.stop)
        for ns in self._namespaces:
            step(sh, IP, "netns", "del", ns)
        if self._bridge_made:
            step(sh, IP, "link", "del", self.bridge)
        assert not errors, "fleet teardown:\n" + "\n".join(errors)

    # ---- helpers ---------------------------------------------------------------

    def by_name(self, name):
        return next(h for h in self.hosts if h.name == name)

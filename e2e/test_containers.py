"""berth's container commands: run/create/start/stop/kill/restart/rm/wait/
inspect/ps/logs.

Two parts.  The first drives the CLI against a small fake daemon on a unix
socket (Docker Engine API shapes, recorded requests): it pins the client's side
of the contract, such as wait-before-start, demuxing, exit codes and error
lines, whatever state the real daemon is in.  The second runs real containers
through a real berthd with the test image build/images/busybox.tar; it skips
loudly while berthd does not serve the container endpoints.
"""

import json
import os
import re
import socketserver
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import BIN_DIR, STRICT, Berth, Daemon, mktemp_dir, wait_for

# ---- a fake daemon ---------------------------------------------------------


def frame(stream, data):
    return struct.pack(">BxxxI", stream, len(data)) + data


class FakeContainer:
    def __init__(self, cid, name, body):
        self.id = cid
        self.name = name
        self.body = body
        self.state = "created"
        self.exit_code = 0
        self.output = []  # (stream, bytes)
        self.exited = threading.Event()
        self.created = int(time.time()) - 5

    def run(self):
        """What the fake "executes": the Cmd is a tiny script."""
        cmd = self.body.get("Cmd") or ["sh"]
        if cmd[0] == "nope":
            self.exit_code = 127
            self.state = "exited"
            return (400, {"message": 'exec: "nope": executable file not found in $PATH'})
        self.state = "running"
        if cmd[0] == "out":
            self.output = [(1, cmd[1].encode()), (2, cmd[2].encode())]
            self.finish(int(cmd[3]))
        elif cmd[0] == "waitfails":
            self.finish(0)
        elif cmd[0] == "binary":
            self.output = [(1, bytes(range(256))), (2, b"\x00err\xff")]
            self.finish(0)
        return (204, None)

    def finish(self, code):
        self.exit_code = code
        self.state = "exited"
        self.exited.set()

    def summary(self):
        return {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": self.body.get("Image"),
            "ImageID": "sha256:" + "ab" * 32,
            "Command": " ".join(self.body.get("Cmd") or ["sh"]),
            "Created": self.created,
            "State": self.state,
            "Status": "Up 5 seconds" if self.state == "running" else
                      f"Exited ({self.exit_code}) 2 seconds ago",
            "Labels": self.body.get("Labels") or {},
            "HostConfig": {"NetworkMode": self.body.get("HostConfig", {}).get("NetworkMode", "none")},
        }

    def inspect(self):
        return {
            "Id": self.id,
            "Name": "/" + self.name,
            "State": {"Status": self.state, "Running": self.state == "running",
                      "ExitCode": self.exit_code, "OOMKilled": False},
            "Config": {"Tty": False, "Image": self.body.get("Image")},
            "HostConfig": self.body.get("HostConfig", {}),
            "RestartCount": 0,
        }


class FakeState:
    def __init__(self):
        self.lock = threading.Lock()
        self.containers = {}
        self.requests = []  # (method, path)
        self.bodies = []  # (path, bytes)
        self.images = [{"Id": "sha256:" + "cd" * 32, "RepoTags": ["busybox:latest"],
                        "RepoDigests": [], "Created": 0, "Size": 1234567}]

    def find(self, ref):
        with self.lock:
            for c in self.containers.values():
                if ref in (c.id, c.name) or (len(ref) >= 3 and c.id.startswith(ref)):
                    return c
        return None


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    @property
    def st(self):
        return self.server.state

    def reply(self, status, doc=None, ctype="application/json", raw=None):
        body = raw if raw is not None else (b"" if doc is None else json.dumps(doc).encode())
        self.send_response(status)
        if status != 204 and status != 304:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and status != 304:
            self.wfile.write(body)

    def no_such(self, ref):
        self.reply(404, {"message": f"No such container: {ref}"})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self, method):
        body = self.read_body()
        with self.st.lock:
            self.st.requests.append((method, self.path))
            self.st.bodies.append((self.path, body))
        m = re.match(r"^/v1\.43(/[^?]*)(?:\?(.*))?$", self.path)
        if not m:
            return self.reply(404, {"message": "page not found"})
        path, query = m.group(1), m.group(2) or ""
        q = dict(kv.split("=", 1) if "=" in kv else (kv, "") for kv in query.split("&") if kv)
        handler = getattr(self, "h_" + method.lower(), None)
        return handler(path, q, body)

    do_GET = lambda self: self.route("GET")
    do_POST = lambda self: self.route("POST")
    do_DELETE = lambda self: self.route("DELETE")

    def h_post(self, path, q, body):
        if path == "/containers/create":
            return self.create(q, body)
        if path == "/images/load":
            return self.load(q, body)
        m = re.match(r"^/containers/([^/]+)/(start|stop|kill|restart|wait)$", path)
        if not m:
            return self.reply(404, {"message": "page not found"})
        c = self.st.find(m.group(1))
        if c is None:
            return self.no_such(m.group(1))
        if m.group(2) == "start":
            status, doc = c.run()
            return self.reply(status, doc)
        if m.group(2) == "wait":
            return self.wait(c)
        if m.group(2) in ("stop", "kill"):
            sig = q.get("signal", "9")
            c.finish(128 + int(sig) if sig.isdigit() else 137)
        return self.reply(204)

    def create(self, q, body):
        doc = json.loads(body)
        name = q.get("name") or "fake_" + uuid.uuid4().hex[:6]
        if doc.get("Image") not in ("busybox", "busybox:latest"):
            return self.reply(404, {"message": f"No such image: {doc.get('Image')}"})
        if any(c.name == name for c in self.st.containers.values()):
            return self.reply(409, {"message": f'Conflict. The container name "/{name}" is already in use'})
        c = FakeContainer(uuid.uuid4().hex + uuid.uuid4().hex, name, doc)
        with self.st.lock:
            self.st.containers[c.id] = c
        return self.reply(201, {"Id": c.id, "Warnings": []})

    def wait(self, c):
        if (c.body.get("Cmd") or [""])[0] == "waitfails":
            return self.reply(400, {"message": "wait broke"})
        # Headers at once, the body when the container exits.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        c.exited.wait(20)
        data = json.dumps({"StatusCode": c.exit_code, "Error": None}).encode()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))

    def load(self, q, body):
        if self.headers.get("Content-Type") != "application/x-tar":
            return self.reply(400, {"message": "want application/x-tar"})
        if len(body) < 512 or body[257:262] != b"ustar":
            return self.reply(200, raw=b'{"errorDetail":{"message":"not a tar archive"},"error":"not a tar archive"}\n')
        lines = b'{"stream":"Loaded image: busybox:latest\\n"}\n'
        return self.reply(200, raw=lines)

    def h_get(self, path, q, body):
        if path == "/containers/json":
            return self.reply(200, [c.summary() for c in self.st.containers.values()
                                    if q.get("all") == "1" or c.state == "running"])
        if path == "/images/json":
            return self.reply(200, self.st.images)
        m = re.match(r"^/containers/([^/]+)/(json|logs)$", path)
        c = self.st.find(m.group(1)) if m else None
        if c is None:
            return self.no_such(m.group(1) if m else path)
        if m.group(2) == "json":
            return self.reply(200, c.inspect())
        if q.get("follow") == "1":
            c.exited.wait(20)
        out = b"".join(frame(s, d) for s, d in c.output)
        return self.reply(200, ctype="application/vnd.docker.multiplexed-stream", raw=out)

    def h_delete(self, path, q, body):
        m = re.match(r"^/containers/([^/]+)$", path)
        c = self.st.find(m.group(1)) if m else None
        if c is None:
            return self.no_such(m.group(1) if m else path)
        if c.state == "running" and q.get("force") != "1":
            return self.reply(409, {"message": "You cannot remove a running container"})
        with self.st.lock:
            del self.st.containers[c.id]
        return self.reply(204)


class FakeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def fake(tmp_path):
    sock = Path(mktemp_dir("fake-")) / "d.sock"
    srv = FakeServer(str(sock), FakeHandler)
    srv.state = FakeState()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.host = f"unix://{sock}"
    yield srv
    for c in srv.state.containers.values():
        c.exited.set()  # release held waits
    srv.shutdown()
    srv.server_close()


def fcli(berth, fake, *args, **kw):
    return berth.run("-H", fake.host, *args, **kw)


def paths(fake, method=None):
    return [p for m, p in fake.state.requests if method is None or m == method]


# ---- the client against the fake -------------------------------------------


def test_fake_run_asks_for_the_exit_after_the_output_and_demuxes(berth, fake):
    # No restart policy: one connection; the exit code is asked for once the
    # output has ended (not-running answers at once for an exited container).
    p = fcli(berth, fake, "run", "--name", "a", "busybox", "out", "to stdout\n", "to stderr\n", "3")
    assert p.returncode == 3, p.err
    assert p.out == "to stdout\n"
    assert p.err == "to stderr\n"
    reqs = fake.state.requests
    wait = next(i for i, (m, x) in enumerate(reqs) if "/wait" in x)
    start = next(i for i, (m, x) in enumerate(reqs) if x.endswith("/start"))
    logs = next(i for i, (m, x) in enumerate(reqs) if "/logs" in x)
    assert start < logs < wait, f"start, logs, then the wait: {reqs}"
    assert "condition=not-running" in reqs[wait][1]
    assert "follow=1" in reqs[logs][1] and "stdout=1" in reqs[logs][1]
    assert "stderr=1" in reqs[logs][1]


def test_fake_run_with_restart_policy_waits_before_start(berth, fake):
    # The container may run again when its output ends: only a next-exit wait
    # sent before the start sees this run's exit.
    p = fcli(berth, fake, "run", "--restart", "on-failure", "busybox", "out", "x\n", "", "3")
    assert p.returncode == 3, p.err
    posts = paths(fake, "POST")
    wait = next(i for i, x in enumerate(posts) if "/wait" in x)
    start = next(i for i, x in enumerate(posts) if x.endswith("/start"))
    assert wait < start, f"wait must be sent before start: {posts}"
    assert "condition=next-exit" in posts[wait]


def test_fake_run_wait_answered_at_once(berth, fake):
    # The wait's whole reply arrives before start: berth must not hang on it.
    p = fcli(berth, fake, "run", "busybox", "waitfails", timeout=15)
    assert p.returncode == 125
    assert p.err == "berth: Error response from daemon: wait broke\n"


def test_fake_run_is_binary_safe(berth, fake):
    p = fcli(berth, fake, "run", "busybox", "binary")
    assert p.returncode == 0, p.err
    assert p.stdout == bytes(range(256))
    assert p.stderr == b"\x00err\xff"


def test_fake_run_stops_option_parsing_at_image(berth, fake):
    p = fcli(berth, fake, "run", "-d", "-e", "A=1", "busybox", "ls", "-l", "--name", "x")
    assert p.returncode == 0, p.err
    assert re.fullmatch(r"[0-9a-f]{64}\n", p.out), p.out
    create = next(b for pth, b in fake.state.bodies if pth.startswith("/v1.43/containers/create"))
    doc = json.loads(create)
    assert doc["Cmd"] == ["ls", "-l", "--name", "x"]
    assert doc["Env"] == ["A=1"]
    assert doc["AttachStdout"] is False


def test_fake_run_rm_removes_after_exit(berth, fake):
    p = fcli(berth, fake, "run", "--rm", "busybox", "out", "x", "", "0")
    assert p.returncode == 0, p.err
    assert fake.state.containers == {}
    assert any(m == "DELETE" for m, _ in fake.state.requests)


def test_fake_run_forwards_a_signal(berth, fake):
    import signal
    import subprocess

    p = subprocess.Popen([berth.path, "-H", fake.host, "run", "busybox", "sleepy"],
                         env=berth.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until = time.monotonic() + 10
        while not any("/logs" in x for x in paths(fake, "GET")):
            assert time.monotonic() < wait_until, "berth run never asked for the logs"
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        p.kill()
        p.wait()
    assert any(x.endswith("/kill?signal=2") for x in paths(fake, "POST")), fake.state.requests
    assert p.returncode == 130, err


def test_fake_run_command_not_found_exits_127(berth, fake):
    p = fcli(berth, fake, "run", "busybox", "nope")
    assert p.returncode == 127, (p.out, p.err)
    assert p.err.startswith("berth: Error response from daemon: exec: \"nope\""), p.err
    assert len(p.err.strip().splitlines()) == 1


def test_fake_run_unknown_image_exits_125(berth, fake):
    p = fcli(berth, fake, "run", "--pull", "never", "busybox:nope")
    assert p.returncode == 125
    # as docker with --pull never: the daemon's answer alone, nothing pulled
    assert p.err.splitlines() == [
        "berth: Error response from daemon: No such image: busybox:nope",
    ]
    p = fcli(berth, fake, "create", "--pull", "never", "alpine")
    assert p.returncode == 1
    assert "No such image: alpine" in p.err and "Unable to find" not in p.err


@pytest.mark.parametrize("args, needle", [
    (["--memory", "12q"], "invalid --memory \"12q\""),
    (["--cpus", "-1"], "invalid --cpus \"-1\""),
    (["--pids-limit", "x"], "invalid --pids-limit \"x\""),
    (["--restart", "sometimes"], "invalid --restart \"sometimes\""),
])
def test_fake_run_bad_flags_send_nothing(berth, fake, args, needle):
    p = fcli(berth, fake, "run", *args, "busybox", "true")
    assert p.returncode == 125
    assert needle in p.err and len(p.err.splitlines()) == 1, p.err
    assert fake.state.requests == []


def test_fake_name_conflict(berth, fake):
    fcli(berth, fake, "create", "--name", "dup", "busybox", check=True)
    p = fcli(berth, fake, "create", "--name", "dup", "busybox")
    assert p.returncode == 1
    assert p.err == 'berth: Error response from daemon: Conflict. The container name "/dup" is already in use\n'


def test_fake_multi_target_goes_on_after_errors(berth, fake):
    fcli(berth, fake, "create", "--name", "one", "busybox", check=True)
    fcli(berth, fake, "create", "--name", "two", "busybox", check=True)
    p = fcli(berth, fake, "rm", "ghost1", "one", "ghost2", "two")
    assert p.returncode == 1
    assert p.out.splitlines() == ["one", "two"]
    assert p.err.splitlines() == [
        "berth: Error response from daemon: No such container: ghost1",
        "berth: Error response from daemon: No such container: ghost2",
    ]
    assert fake.state.containers == {}


def test_fake_inspect_wait_ps_logs(berth, fake):
    p = fcli(berth, fake, "run", "-d", "--name", "w", "busybox", "out", "o\n", "e\n", "4")
    assert p.returncode == 0, p.err
    js = json.loads(fcli(berth, fake, "inspect", "w", check=True).out)
    assert isinstance(js, list) and js[0]["Name"] == "/w"
    p = fcli(berth, fake, "inspect", "w", "ghost")
    assert p.returncode == 1 and json.loads(p.out)[0]["Name"] == "/w"
    assert "No such container: ghost" in p.err
    assert fcli(berth, fake, "wait", "w", check=True).out == "4\n"
    p = fcli(berth, fake, "logs", "--tail", "5", "w", check=True)
    assert (p.out, p.err) == ("o\n", "e\n")
    assert any("tail=5" in x for x in paths(fake, "GET"))
    table = fcli(berth, fake, "ps", "-a", check=True).out.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES"]
    assert re.match(r'^[0-9a-f]{12}   busybox   "out o\\n e\\n 4"   [5-7] seconds ago   Exited \(4\) 2 seconds ago\s+w$', table[1]), table[1]
    ids = fcli(berth, fake, "ps", "-aq", check=True).out.split()
    assert len(ids) == 1 and len(ids[0]) == 12
    line = json.loads(fcli(berth, fake, "ps", "-a", "--format", "json", check=True).out)
    assert line["Names"] == "w" and line["State"] == "exited"
    assert fcli(berth, fake, "ps", check=True).out.count("\n") == 1  # running only: header
    fcli(berth, fake, "ps", "-a", "--filter", "name=w", check=True)
    assert any('filters=%7B%22name%22%3A%5B%22w%22%5D%7D' in x for x in paths(fake, "GET"))


def test_fake_unknown_container(berth, fake):
    for args in (["logs", "nope"], ["inspect", "nope"], ["start", "nope"], ["stop", "nope"],
                 ["kill", "nope"], ["wait", "nope"], ["rm", "-f", "nope"]):
        p = fcli(berth, fake, *args)
        assert p.returncode == 1, args
        assert "berth: Error response from daemon: No such container: nope\n" in p.err, (args, p.err)


# ---- real containers through berthd ----------------------------------------

TEST_IMAGE = Path(os.environ.get("BERTH_TEST_IMAGE") or BIN_DIR.parent / "images" / "busybox.tar")
CAPS_DEFAULT = "00000000a80425fb"


def missing(what):
    """A missing build product fails under BERTH_E2E_STRICT, else skips."""
    if STRICT:
        pytest.fail(what, pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def real(pki):
    """A berthd of this module's own (containers need root), the image loaded."""
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    d = Daemon(pki.dir, mktemp_dir("ctr-d-"))
    d.start()
    cli = Berth(mktemp_dir("ctr-cli-"))
    cli.ok("context", "create", "e2e", "--host", d.host, "--tls-dir", pki.dir)
    cli.ok("context", "use", "e2e")
    try:
        probe = cli.run("ps", "-a")
        if probe.returncode != 0 and "page not found" in probe.err:
            missing(f"berthd does not serve the container endpoints yet: {probe.err.strip()}")
        load = cli.run("load", "-i", TEST_IMAGE)
        if load.returncode != 0:
            missing(f"berthd cannot load images yet: {load.err.strip()}")
        yield cli
    finally:
        try:
            d.stop()
        finally:
            d.kill()


@pytest.fixture
def ctr(real):
    """Names for this test's containers; all are force-removed at the end."""
    names = []

    def name(prefix="t"):
        n = f"{prefix}-{uuid.uuid4().hex[:8]}"
        names.append(n)
        return n

    yield name
    if names:
        real.run("rm", "-f", *names)


def run(cli, *args, **kw):
    return cli.run("run", *args, **kw)


def inspect(cli, name):
    return cli.json("inspect", name)[0]


def test_exit_codes(real, ctr):
    for cmd, code in ((["true"], 0), (["false"], 1), (["sh", "-c", "exit 3"], 3),
                      (["/no/such/binary"], 127), (["/etc/passwd"], 126)):
        p = run(real, "--name", ctr(), "busybox", *cmd)
        assert p.returncode == code, (cmd, p.returncode, p.err)
        if code >= 126:
            assert p.err.startswith("berth: Error response from daemon: "), p.err


def background_run(cli, *args):
    import subprocess

    return subprocess.Popen([cli.path, "run", *args], env=cli.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_running(cli, name):
    def running():
        p = cli.run("inspect", name)
        return p.returncode == 0 and json.loads(p.out)[0]["State"]["Running"]

    wait_for(running, 15, f"container {name} to run", interval=0.05)


def finish(p, timeout=15):
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        p.kill()
        p.wait()
    return out, err


def test_run_killed_from_outside_exits_137(real, ctr):
    # (A SIGKILL from inside would hit pid 1 of the namespace: ignored.)
    n = ctr()
    p = background_run(real, "--name", n, "busybox", "sleep", "30")
    wait_running(real, n)
    real.ok("kill", n)
    out, err = finish(p)
    assert p.returncode == 137, err


def test_run_forwards_sigterm(real, ctr):
    import signal

    n = ctr()
    p = background_run(real, "--name", n, "busybox", "sh", "-c",
                       'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done')
    wait_running(real, n)
    wait_for(lambda: "ready" in real.run("logs", n).out, 10, "the trap to be set", interval=0.05)
    p.send_signal(signal.SIGTERM)
    out, err = finish(p)
    assert p.returncode == 7, err
    assert out == b"ready\ngot TERM\n"


def test_output_streams(real, ctr):
    p = run(real, "--name", ctr(), "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (p.returncode, p.out, p.err) == (0, "out\n", "err\n")


def test_rm_attached_and_detached(real, ctr):
    n = ctr()
    p = run(real, "--rm", "--name", n, "busybox", "sh", "-c", "echo bye; exit 5")
    assert (p.returncode, p.out) == (5, "bye\n"), p.err
    assert n not in real.ok("ps", "-a").out
    d = ctr()
    real.ok("run", "-d", "--rm", "--name", d, "busybox", "true")
    wait_for(lambda: d not in real.ok("ps", "-a").out, 15, "the daemon to auto-remove " + d,
             interval=0.05)


def test_config_flags(real, ctr):
    p = run(real, "--name", ctr(), "-e", "FOO=bar baz", "-w", "/tmp", "-u", "65534",
            "--hostname", "boxy", "busybox", "sh", "-c", 'echo "$FOO|$(pwd)|$(id -u)|$(hostname)"')
    assert p.returncode == 0, p.err
    assert p.out == "bar baz|/tmp|65534|boxy\n"


def test_read_only_root(real, ctr):
    p = run(real, "--name", ctr(), "--read-only", "busybox", "touch", "/x")
    assert p.returncode != 0
    assert "Read-only file system" in p.err


def test_memory_limit_oom(real, ctr):
    n = ctr()
    p = run(real, "--name", n, "--memory", "16m", "busybox", "sh", "-c",
            'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived')
    assert p.returncode == 137, (p.returncode, p.out, p.err)
    assert inspect(real, n)["State"]["OOMKilled"] is True


def test_pids_limit(real, ctr):
    p = run(real, "--name", ctr(), "--pids-limit", "10", "busybox", "sh", "-c",
            "for i in $(seq 30); do sleep 1 & done; wait")
    assert re.search(r"can't fork|Resource temporarily unavailable", p.err), (p.returncode, p.err)


def test_pid_namespace(real, ctr):
    p = run(real, "--name", ctr(), "busybox", "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$'")
    assert p.returncode == 0, p.err
    lines = p.out.split()
    assert lines[0] == "1", p.out
    assert len(lines) <= 4, f"the container sees foreign pids: {p.out}"


def test_mount_and_unshare_fail(real, ctr):
    p = run(real, "--name", ctr(), "busybox", "mount", "-t", "tmpfs", "none", "/mnt")
    assert p.returncode != 0, "mount worked inside the container"
    p = run(real, "--name", ctr(), "busybox", "unshare", "-U", "true")
    assert p.returncode != 0, "unshare -U worked inside the container"


PROBE = BIN_DIR.parent / "tests" / "berth-probe"


def probe_image_tar(probe_bytes):
    """A docker-archive holding berth-probe:latest: the static probe at /probe
    and the directories the runtime mounts over."""
    import hashlib
    import io
    import tarfile

    def tar_of(entries):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
            for name, data, mode in entries:
                ti = tarfile.TarInfo(name)
                ti.mode = mode
                if data is None:
                    ti.type = tarfile.DIRTYPE
                    t.addfile(ti)
                else:
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
        return buf.getvalue()

    layer = tar_of([(d, None, 0o755) for d in ("dev", "etc", "proc", "sys", "tmp")]
                   + [("probe", probe_bytes, 0o755)])
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/probe"], "WorkingDir": "/"},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["berth-probe:latest"],
                            "Layers": ["layer.tar"]}]).encode()
    return tar_of([("manifest.json", manifest, 0o644), (cfg_name, config, 0o644),
                   ("layer.tar", layer, 0o644)])


@pytest.fixture(scope="module")
def probe_image(real):
    if not PROBE.is_file():
        missing(f"{PROBE} not built (the static probe of runtime/tests)")
    p = real.run("load", input=probe_image_tar(PROBE.read_bytes()))
    assert p.returncode == 0 and "berth-probe:latest" in p.out, p.err
    return "berth-probe:latest"


def test_probe_from_the_inside(real, ctr, probe_image):
    """keyctl (busybox has no applet for it), mount, unshare(CLONE_NEWUSER),
    capabilities and open fds, seen by a static program that is pid 1."""
    p = run(real, "--name", ctr(), probe_image)
    assert p.returncode == 0, p.err
    facts = json.loads(p.out)
    for call in ("keyctl", "mount", "unshare_user"):
        assert facts[f"{call}_errno"] != 0, f"{call} worked inside the container: {facts}"
    assert facts["pid"] == 1
    assert facts["fds"] == [0, 1, 2]
    assert facts["cap_eff"] == CAPS_DEFAULT
    assert facts["seccomp"] == "2", "no seccomp filter"


def test_default_capabilities(real, ctr):
    p = run(real, "--name", ctr(), "busybox", "grep", "CapEff", "/proc/self/status")
    assert p.returncode == 0, p.err
    assert p.out.split() == ["CapEff:", CAPS_DEFAULT]


def test_only_stdio_fds(real, ctr):
    p = run(real, "--name", ctr(), "busybox", "ls", "/proc/self/fd")
    assert p.returncode == 0, p.err
    # 0, 1, 2 and the directory ls itself has open.
    assert p.out.split() == ["0", "1", "2", "3"], p.out


def test_logs_tail_and_follow(real, ctr):
    n = ctr()
    real.ok("run", "-d", "--name", n, "busybox", "sh", "-c",
            "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo late")
    f = real.run("logs", "-f", n, timeout=20)
    assert f.returncode == 0, f.err
    assert f.out == "line1\nline2\nline3\nline4\nline5\nlate\n"
    t = real.ok("logs", "--tail", "2", n)
    assert t.out == "line5\nlate\n"


def test_logs_timestamps_and_since(real, ctr):
    n = ctr()
    assert run(real, "--name", n, "busybox", "sh", "-c", "echo one; echo two >&2").returncode == 0
    p = real.ok("logs", "-t", n)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z one\n", p.out), p.out
    assert re.fullmatch(r"\S+Z two\n", p.err), p.err
    assert real.ok("logs", "--since", "2099-01-01T00:00:00Z", n).out == ""
    assert real.ok("logs", "--since", "10m", n).out == "one\n"
    p = real.run("logs", "--since", "someday", n)
    assert p.returncode == 1 and "invalid --since" in p.err


def test_restart_on_failure(real, ctr):
    n = ctr()
    real.ok("run", "-d", "--name", n, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")

    def settled():
        js = inspect(real, n)
        st = js["State"]
        return js["RestartCount"] == 2 and not st["Running"] and not st.get("Restarting") and js

    js = wait_for(settled, 20, "RestartCount 2 and the container exited", interval=0.1)
    assert js["State"]["ExitCode"] == 3, js["State"]
    # Absence of a third restart can only be shown by giving it time.
    time.sleep(1)
    assert inspect(real, n)["RestartCount"] == 2, "restarted past its maximum"


def test_restart_always(real, ctr):
    n = ctr()
    real.ok("run", "-d", "--name", n, "--restart", "always", "busybox", "sh", "-c", "exit 0")
    wait_for(lambda: inspect(real, n)["RestartCount"] >= 1, 20,
             "--restart always to restart after exit 0", interval=0.1)


def test_rm_force_running(real, ctr):
    n = ctr()
    real.ok("run", "-d", "--name", n, "busybox", "sleep", "60")
    assert real.ok("ps", "-q", "--filter", f"name={n}").out.strip() != ""
    p = real.run("rm", n)
    assert p.returncode == 1 and "Error response from daemon" in p.err
    assert real.ok("rm", "-f", n).out == f"{n}\n"
    assert n not in real.ok("ps", "-a").out


def test_stop_kill_start_wait(real, ctr):
    n = ctr()
    real.ok("run", "-d", "--name", n, "busybox", "sleep", "60")
    assert real.ok("kill", n).out == f"{n}\n"
    assert real.ok("wait", n).out == "137\n"
    real.ok("start", n)
    assert inspect(real, n)["State"]["Running"] is True
    assert real.ok("stop", "-t", "1", n).out == f"{n}\n"
    assert inspect(real, n)["State"]["Running"] is False


def test_errors(real, ctr):
    n = ctr()
    real.ok("create", "--name", n, "busybox", "true")
    p = real.run("create", "--name", n, "busybox", "true")
    assert p.returncode == 1 and "Error response from daemon" in p.err and n in p.err, p.err
    p = real.run("inspect", "nope-" + uuid.uuid4().hex[:6])
    assert p.returncode == 1 and "No such container" in p.err
    p = real.run("run", "--rm", "--pull", "never", "busybox:nope")
    assert p.returncode == 125
    assert "No such image" in p.err


def test_bad_input_leaves_nothing(real, ctr):
    before = real.ok("ps", "-aq", "--no-trunc").out.split()
    for args in (["--memory", "12q", "busybox"], ["--cpus", "-1", "busybox"],
                 ["--pids-limit", "x", "busybox"], ["--restart", "sometimes", "busybox"],
                 ["--name", "bad/name!", "busybox", "true"], ["--name", "x", "busybox"]):
        p = real.run("run", *args)
        assert p.returncode == 125, (args, p.returncode, p.err)
        assert len(p.err.strip().splitlines()) == 1, p.err
    assert real.ok("ps", "-aq", "--no-trunc").out.split() == before


def test_empty_command_is_refused_at_create(real, ctr):
    before = real.ok("ps", "-aq", "--no-trunc").out.split()
    n = ctr()
    p = real.run("run", "--name", n, "--entrypoint", "", "busybox")
    assert p.returncode == 125, p.err
    assert real.ok("ps", "-aq", "--no-trunc").out.split() == before


def test_daemon_stops_with_a_failed_start_container(pki, make_daemon, real):
    import signal
    import subprocess

    d = make_daemon(pki.dir)
    cli = Berth(mktemp_dir("stop-cli-"))
    cli.ok("-H", d.host, "--tls-dir", pki.dir, "load", "-i", TEST_IMAGE)
    p = cli.run("-H", d.host, "--tls-dir", pki.dir, "run", "busybox", "/etc/passwd")
    assert p.returncode == 126, p.err
    d.proc.send_signal(signal.SIGTERM)
    try:
        assert d.proc.wait(timeout=5) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("berthd still running 5 s after SIGTERM")


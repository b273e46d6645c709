"""The container and image API of berthd over mTLS with raw HTTP (Python's
http.client and the admin cert): Docker Engine API shapes for create, start,
wait, logs, stop, kill, rm, inspect, list and the image endpoints; 400/404/409
answers; and nothing half-created (no record dir, cgroup or mount) after a
request that failed.  Needs root (mounts, cgroups, namespaces)."""

import json
import os
import re
import signal
import socket
import subprocess
import ssl
import struct
import time
from pathlib import Path

import pytest

from conftest import BIN_DIR, STRICT, client_ssl_context, https_conn, wait_for

IMAGE_TAR = Path(os.environ.get("BERTH_TEST_IMAGE") or BIN_DIR.parent / "images" / "busybox.tar")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def need_root_and_image():
    why = None
    if os.geteuid() != 0:
        why = "containers need root"
    elif not IMAGE_TAR.is_file():
        why = f"{IMAGE_TAR} not built (target test-image)"
    if why:
        if STRICT:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


class Api:
    """One request per connection, like a CLI run."""

    def __init__(self, daemon, pki):
        self.daemon = daemon
        self.pki = pki

    def call(self, method, path, body=None, headers=None, timeout=60):
        c = https_conn(self.daemon, self.pki)
        c.timeout = timeout
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if method in ("POST", "PUT") and body is None:
            body = b""  # berthd wants a Content-Length on every POST
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, want=200):
        status, _, data = self.call(method, path, body)
        assert status == want, f"{method} {path}: {status} {data[:400]!r}"
        return json.loads(data) if data.strip() else None

    def error(self, method, path, body=None, want=400):
        status, headers, data = self.call(method, path, body)
        assert status == want, f"{method} {path}: {status} (wanted {want}) {data[:400]!r}"
        assert "json" in headers.get("content-type", ""), headers
        return json.loads(data)["message"]

    def create(self, name=None, **body):
        body.setdefault("Image", "busybox")
        path = "/containers/create" + (f"?name={name}" if name else "")
        js = self.json("POST", path, body, want=201)
        assert HEX64.match(js["Id"]), js
        assert js["Warnings"] == [], js
        return js["Id"]

    def start(self, ref, want=204):
        status, _, data = self.call("POST", f"/containers/{ref}/start")
        assert status == want, f"start {ref}: {status} {data[:300]!r}"

    def inspect(self, ref):
        return self.json("GET", f"/containers/{ref}/json")

    def logs(self, ref, query="stdout=1&stderr=1"):
        status, headers, data = self.call("GET", f"/containers/{ref}/logs?{query}")
        assert status == 200, (status, data[:300])
        return headers, data

    def wait(self, ref, condition="not-running"):
        return self.json("POST", f"/containers/{ref}/wait?condition={condition}")

    def rm(self, ref, force=True):
        status, _, data = self.call("DELETE", f"/containers/{ref}?force={int(force)}")
        assert status in (204, 404), (status, data[:300])


def demux(data):
    """Docker's multiplexed stream -> [(stream, bytes)]."""
    out, i = [], 0
    while i < len(data):
        assert len(data) - i >= 8, f"truncated frame header at {i}: {data[i:]!r}"
        stream, size = data[i], struct.unpack(">I", data[i + 4 : i + 8])[0]
        assert data[i + 1 : i + 4] == b"\0\0\0", data[i : i + 8]
        assert stream in (1, 2), stream
        out.append((stream, data[i + 8 : i + 8 + size]))
        i += 8 + size
    return out


def load_busybox(api):
    data = IMAGE_TAR.read_bytes()
    status, headers, body = api.call(
        "POST", "/images/load", data, {"Content-Type": "application/x-tar"}, timeout=120
    )
    assert status == 200, (status, body[:300])
    lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
    assert {"stream": "Loaded image: busybox:latest\n"} in lines, lines
    return lines


# ---- what a daemon leaves on the host -------------------------------------


def container_dirs(daemon):
    d = daemon.data_root / "containers"
    return sorted(os.listdir(d)) if d.is_dir() else []


def mounts_under(path):
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(prefix)]


def berth_cgroups(cid=None):
    """Container cgroups berth made, in any hierarchy (v1 or v2)."""
    found = []
    for base in Path("/sys/fs/cgroup").glob("**/berth"):
        for p in base.iterdir():
            if p.is_dir() and (cid is None or p.name == cid):
                found.append(str(p))
    return found


def monitors_for(daemon):
    """berth-monitor processes whose --dir is under this daemon's exec root."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"berth-monitor" in a for a in cmd[:1]) and any(
            str(daemon.exec_root).encode() in a for a in cmd
        ):
            out.append(int(d))
    return out


def assert_clean(daemon, cid=None):
    if cid is None:
        assert container_dirs(daemon) == [], container_dirs(daemon)
    else:
        assert cid not in container_dirs(daemon)
        assert not (daemon.exec_root / "containers" / cid).exists()
    assert mounts_under(daemon.root) == [], mounts_under(daemon.root)
    if cid is not None:
        assert berth_cgroups(cid) == [], berth_cgroups(cid)


def force_cleanup(daemon):
    """Last resort after a failed test: the daemon's containers, monitors,
    mounts and cgroups go, so that nothing outlives the test session."""
    for pid in monitors_for(daemon):
        os.kill(pid, signal.SIGKILL)
    for cid in container_dirs(daemon):
        for cg in berth_cgroups(cid):
            procs = Path(cg, "cgroup.procs")
            for pid in procs.read_text().split() if procs.exists() else []:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    for mnt in sorted(mounts_under(daemon.root), reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False)
    for cid in container_dirs(daemon):
        for cg in berth_cgroups(cid):
            wait_for(lambda: _rmdir(cg), 5, f"cgroup {cg} to empty")


def _rmdir(path):
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def remove_all(daemon, api):
    """Normal clean-up through the API, falling back to force_cleanup."""
    try:
        if daemon.proc.poll() is not None:
            daemon.pidfile.unlink(missing_ok=True)
            daemon.start()
        for c in api.json("GET", "/containers/json?all=1"):
            api.rm(c["Id"])
        rc = daemon.stop()
        assert rc == 0, f"berthd exited {rc}:\n{daemon.log_text()[-4000:]}"
    except BaseException:
        daemon.kill()
        force_cleanup(daemon)
        raise
    wait_for(lambda: not monitors_for(daemon), 10, "berth-monitor processes to exit")
    assert mounts_under(daemon.root) == []


@pytest.fixture
def api(make_daemon, pki):
    need_root_and_image()
    d = make_daemon(pki.dir)
    a = Api(d, pki)
    load_busybox(a)
    yield a
    # Whatever a test left: removed, and no monitor survives the daemon.
    remove_all(d, a)


# ---- images ------------------------------------------------------------------


def test_image_list_inspect_remove_conflict(api):
    images = api.json("GET", "/images/json")
    tagged = [i for i in images if "busybox:latest" in i.get("RepoTags", [])]
    assert len(tagged) == 1, images
    image_id = tagged[0]["Id"]
    assert image_id.startswith("sha256:"), image_id
    js = api.json("GET", "/images/busybox/json")
    assert js["Id"] == image_id
    msg = api.error("GET", "/images/nope/json", want=404)
    assert "No such image" in msg, msg

    cid = api.create(Cmd=["true"])
    msg = api.error("DELETE", "/images/busybox", want=409)
    assert msg.startswith('conflict: unable to remove repository reference "busybox" (must force)'), msg
    assert cid[:12] in msg, msg
    api.rm(cid)
    report = api.json("DELETE", "/images/busybox")
    assert {"Untagged": "busybox:latest"} in report, report
    assert api.json("GET", "/images/json") == []


def test_image_load_too_large_is_413(api):
    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    with socket.create_connection(api.daemon.addr, timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"POST /images/load HTTP/1.1\r\nHost: b\r\n"
                      b"Content-Type: application/x-tar\r\nContent-Length: 9000000000\r\n\r\n")
            got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert os.listdir(api.daemon.data_root / "tmp") == []


def test_image_load_bad_archive(api):
    status, _, body = api.call(
        "POST", "/images/load", b"this is not a tar" * 100, {"Content-Type": "application/x-tar"}
    )
    assert status == 400, (status, body)
    assert json.loads(body)["message"].startswith("load:"), body


# ---- the container life cycle ------------------------------------------------------


def open_wait(api, cid, condition):
    """Sends a wait request and returns the socket once the 200 headers are
    in: they must come at once, before the container even runs."""
    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    raw = socket.create_connection(api.daemon.addr, timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(
        f"POST /containers/{cid}/wait?condition={condition} HTTP/1.1\r\nHost: b\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"connection closed before the wait headers: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return s, head.split(b"\r\n\r\n", 1)[1]


def read_wait_body(s, got):
    while b"StatusCode" not in got or not got.rstrip().endswith(b"0\r\n\r\n".rstrip()):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    m = re.search(rb"\{.*\}", got)
    assert m, got
    return json.loads(m.group(0))


def test_create_start_wait_logs_inspect_list_rm(api):
    cid = api.create(
        "first",
        Cmd=["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        Env=["GREETING=hi"],
        Labels={"team": "berth"},
    )
    s, rest = open_wait(api, cid, "next-exit")
    js = api.inspect("first")
    assert js["State"]["Status"] == "created"
    api.start(cid)
    assert read_wait_body(s, rest) == {"StatusCode": 3, "Error": None}

    js = api.inspect(cid[:10])
    assert js["Id"] == cid and js["Name"] == "/first"
    assert js["Path"] == "sh" and js["Args"][0] == "-c"
    st = js["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 3 and not st["Running"], st
    assert st["StartedAt"] <= st["FinishedAt"], st
    for key in ("Created", "Image", "LogPath", "RestartCount", "HostConfig", "GraphDriver",
                "Mounts", "Config", "NetworkSettings", "Driver", "Platform"):
        assert key in js, f"inspect lacks {key}"
    assert js["Driver"] == "overlay2" and js["GraphDriver"]["Name"] == "overlay2"
    assert "GREETING=hi" in js["Config"]["Env"]
    assert js["Config"]["Labels"]["team"] == "berth"
    assert js["HostConfig"]["NetworkMode"] == "none"
    assert js["HostConfig"]["RestartPolicy"]["Name"] == "no"

    headers, data = api.logs(cid)
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert demux(data) == [(1, b"hello\n"), (2, b"oops\n")]
    _, data = api.logs(cid, "stderr=1")
    assert demux(data) == [(2, b"oops\n")]
    _, data = api.logs(cid, "stdout=1&timestamps=1&tail=1")
    frames = demux(data)
    assert len(frames) == 1 and frames[0][1].endswith(b" hello\n"), frames
    _, data = api.logs(cid, "stdout=1&since=4102444800")  # 2100-01-01: nothing yet
    assert data == b""
    _, data = api.logs(cid, "stdout=1&until=1")
    assert data == b""
    _, data = api.logs(cid, "stdout=1&since=1.5")
    assert demux(data) == [(1, b"hello\n")]
    msg = api.error("GET", f"/containers/{cid}/logs")
    assert msg == "You must choose at least one stream"

    assert api.json("GET", "/containers/json") == []  # only running ones
    listed = api.json("GET", "/containers/json?all=1")
    assert len(listed) == 1, listed
    e = listed[0]
    assert e["Id"] == cid and e["Names"] == ["/first"] and e["Image"] == "busybox"
    assert e["State"] == "exited" and re.match(r"^Exited \(3\) .* ago$", e["Status"]), e
    assert e["Command"] == "sh -c echo hello; echo oops >&2; exit 3"
    assert e["HostConfig"] == {"NetworkMode": "none"} and e["Ports"] == [] and e["Mounts"] == []
    f = json.dumps({"label": ["team=berth"], "status": ["exited"]})
    assert len(api.json("GET", "/containers/json?all=1&filters=" + f.replace(" ", ""))) == 1
    f = json.dumps({"name": ["other"]})
    assert api.json("GET", "/containers/json?all=1&filters=" + f.replace(" ", "")) == []

    status, _, _ = api.call("DELETE", "/containers/first")
    assert status == 204
    assert api.error("GET", f"/containers/{cid}/json", want=404) == f"No such container: {cid}"
    assert_clean(api.daemon, cid)


def test_tty_logs_are_raw(api):
    cid = api.create(Cmd=["echo", "tty out"], Tty=True)
    api.start(cid)
    assert api.wait(cid) == {"StatusCode": 0, "Error": None}
    headers, data = api.logs(cid)
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert data == b"tty out\r\n", data
    api.rm(cid)


def test_stop_kill_restart_and_running_list(api):
    cid = api.create("sleeper", Cmd=["sleep", "1000"])
    api.start(cid)
    api.start(cid, want=304)
    listed = api.json("GET", "/containers/json")
    assert [c["Id"] for c in listed] == [cid]
    assert re.match(r"^Up ", listed[0]["Status"]), listed
    pid = api.inspect(cid)["State"]["Pid"]
    assert pid > 0 and os.path.exists(f"/proc/{pid}")

    t0 = time.monotonic()
    status, _, _ = api.call("POST", f"/containers/{cid}/stop?t=1")
    assert status == 204
    assert time.monotonic() - t0 < 10
    st = api.inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st  # sleep as pid 1 ignores TERM
    status, _, _ = api.call("POST", f"/containers/{cid}/stop")
    assert status == 304
    msg = api.error("POST", f"/containers/{cid}/kill", want=409)
    assert "is not running" in msg

    api.start(cid)
    status, _, _ = api.call("POST", f"/containers/{cid}/kill?signal=SIGTERM")
    assert status == 204
    status, _, _ = api.call("POST", f"/containers/{cid}/kill?signal=KILL")
    assert status in (204, 409)
    assert api.wait(cid)["StatusCode"] in (137, 143)
    assert api.error("POST", f"/containers/{cid}/kill?signal=NOPE") == "Invalid signal: NOPE"

    api.start(cid)
    status, _, _ = api.call("POST", f"/containers/{cid}/restart?t=0")
    assert status == 204
    st = api.inspect(cid)["State"]
    assert st["Status"] == "running" and st["Pid"] != pid, st
    api.rm(cid)


def test_remove_running_needs_force_and_cleans_everything(api):
    cid = api.create(Cmd=["sleep", "1000"])
    api.start(cid)
    assert berth_cgroups(cid), "a running container has cgroups"
    assert mounts_under(api.daemon.data_root), "a running container has its rootfs mounted"
    msg = api.error("DELETE", f"/containers/{cid}", want=409)
    assert msg == (
        f"You cannot remove a running container {cid}. Stop the container before "
        "attempting removal or force remove"
    ), msg
    status, _, _ = api.call("DELETE", f"/containers/{cid}?force=1&v=1")
    assert status == 204
    assert_clean(api.daemon, cid)
    wait_for(lambda: not monitors_for(api.daemon), 10, "the monitor to exit")


def test_logs_follow_ends_when_the_container_stops(api):
    cid = api.create(Cmd=["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"])
    api.start(cid)
    t0 = time.monotonic()
    _, data = api.logs(cid, "stdout=1&follow=1")
    assert time.monotonic() - t0 < 20
    assert demux(data) == [(1, b"1\n"), (1, b"2\n"), (1, b"3\n")]
    api.rm(cid)


def test_restart_policy_on_failure_and_auto_remove(api):
    cid = api.create(
        Cmd=["sh", "-c", "echo try; exit 2"],
        HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
    )
    api.start(cid)

    def settled():
        js = api.inspect(cid)
        return js if js["State"]["Status"] == "exited" and js["RestartCount"] == 2 else None

    js = wait_for(settled, 20, "two restarts, then exited", interval=0.1)
    assert js["State"]["ExitCode"] == 2
    _, data = api.logs(cid, "stdout=1")
    assert [f[1] for f in demux(data)] == [b"try\n"] * 3

    # A signal that does not ask for the end is not a user's stop: the
    # policy still restarts after it (unless-stopped keeps it alive).
    hid = api.create(Cmd=["sh", "-c", "trap 'exit 9' HUP; sleep 1000 & wait"],
                     HostConfig={"RestartPolicy": {"Name": "unless-stopped"}})
    api.start(hid)
    status, _, _ = api.call("POST", f"/containers/{hid}/kill?signal=HUP")
    assert status == 204
    wait_for(lambda: (lambda js: js["RestartCount"] == 1 and js["State"]["Running"])(
        api.inspect(hid)), 10, "a restart after SIGHUP", interval=0.1)
    status, _, _ = api.call("POST", f"/containers/{hid}/kill?signal=KILL")
    assert status == 204
    assert api.wait(hid)["StatusCode"] == 137
    st = api.inspect(hid)
    assert st["State"]["Status"] == "exited" and st["RestartCount"] == 1, st["State"]

    rid = api.create(Cmd=["true"], HostConfig={"AutoRemove": True})
    s, rest = open_wait(api, rid, "removed")
    api.start(rid)
    assert read_wait_body(s, rest)["StatusCode"] == 0
    api.error("GET", f"/containers/{rid}/json", want=404)
    assert_clean(api.daemon, rid)
    api.rm(cid)


def test_exec_failure_leaves_created_with_127(api):
    cid = api.create("broken", Cmd=["nope"])
    msg = api.error("POST", f"/containers/{cid}/start")
    assert msg == (
        'failed to create task for container: exec: "nope": executable file not found in $PATH'
    ), msg
    st = api.inspect(cid)["State"]
    assert st["Status"] == "created" and st["ExitCode"] == 127, st
    assert "executable file not found" in st["Error"]
    assert mounts_under(api.daemon.root) == []
    assert berth_cgroups(cid) == []
    api.rm(cid)

    uid = api.create(Cmd=["true"], User="nosuchuser")
    msg = api.error("POST", f"/containers/{uid}/start")
    assert "unable to find user nosuchuser" in msg, msg
    st = api.inspect(uid)["State"]
    assert st["Status"] == "created" and st["ExitCode"] == 128, st
    assert mounts_under(api.daemon.root) == []
    assert berth_cgroups(uid) == []
    api.rm(uid)


BAD_CREATES = [
    ({"Image": "busybox:nope", "Cmd": ["true"]}, 404, "No such image: busybox:nope"),
    ({"Image": "busybox", "Cmd": [], "Entrypoint": []}, 400, "no command specified"),
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1024}}, 400,
     "Minimum memory limit allowed is 6MB"),
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NanoCpus": -5}}, 400, "CPUs"),
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NanoCpus": 10**15}}, 400, "CPUs"),
    ({"Image": "busybox", "Cmd": "true", "Env": "A=1"}, 400, "Env"),
    ({"Image": "busybox", "Cmd": ["true"],
      "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, 400, "restart policy"),
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["/:/host"]}}, 400,
     "HostConfig.Binds is not supported by berth yet"),
]


def test_bad_requests_leave_nothing(api):
    for body, want, text in BAD_CREATES:
        msg = api.error("POST", "/containers/create?name=x1", body, want=want)
        assert text in msg, (body, msg)
    msg = api.error("POST", "/containers/create?name=-bad", {"Image": "busybox", "Cmd": ["x"]})
    assert msg.startswith("Invalid container name (-bad)"), msg
    assert api.error("POST", "/containers/create", b"{not json") .startswith("invalid JSON")
    assert container_dirs(api.daemon) == []
    assert berth_cgroups() == [] or all(
        not Path(p).name in container_dirs(api.daemon) for p in berth_cgroups()
    )
    assert mounts_under(api.daemon.root) == []

    cid = api.create("taken", Cmd=["true"])
    msg = api.error("POST", "/containers/create?name=taken", {"Image": "busybox", "Cmd": ["x"]},
                    want=409)
    assert msg == (
        f'Conflict. The container name "/taken" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    ), msg
    assert container_dirs(api.daemon) == [cid]
    assert api.error("GET", "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D") == (
        "invalid filter 'bogus'"
    )
    assert api.error("GET", "/containers/nope/json", want=404) == "No such container: nope"
    assert api.error("POST", "/containers/nope/start", want=404) == "No such container: nope"
    assert api.error("DELETE", "/containers/nope", want=404) == "No such container: nope"


def test_info_counts(api):
    a = api.create(Cmd=["sleep", "1000"])
    api.create(Cmd=["true"])
    api.start(a)
    info = api.json("GET", "/info")
    assert info["Containers"] == 2 and info["ContainersRunning"] == 1, info
    assert info["ContainersStopped"] == 1 and info["ContainersPaused"] == 0, info
    assert info["Images"] == 1, info


def open_follow(api, cid):
    """A logs -f request on a raw TLS socket; returns it after some output."""
    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    raw = socket.create_connection(api.daemon.addr, timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(
        f"GET /containers/{cid}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    )
    got = b""
    while got.count(b"\n") < 12:  # headers plus a few frames
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return s


def test_follow_clients_that_leave_and_a_graceful_stop(api):
    cid = api.create(Cmd=["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"])
    api.start(cid)
    for _ in range(3):
        open_follow(api, cid).close()  # the reader thread must notice and end
    kept = open_follow(api, cid)
    waiter, _ = open_wait(api, cid, "not-running")
    assert api.inspect(cid)["State"]["Running"]
    t0 = time.monotonic()
    assert api.daemon.stop() == 0  # a follower in flight does not stop the stop
    assert time.monotonic() - t0 < 12
    kept.close()
    waiter.close()
    # Containers survive a graceful stop (live restore).
    api.daemon.pidfile.unlink(missing_ok=True)
    api.daemon.start()
    assert api.inspect(cid)["State"]["Running"]


def test_big_logs_rotate_and_stream_to_a_slow_client(api):
    """30+ MB of 8 KB lines: the json-file log rotates at 20 MiB and the logs
    body, read slowly, still carries every byte in order (the daemon backs
    off when a client's queue is full instead of buffering without bound)."""
    n, size = 4000, 8000
    cid = api.create(
        Cmd=["sh", "-c", f"l=$(head -c {size} /dev/zero | tr '\\0' x); yes \"$l\" | head -n {n}"]
    )
    api.start(cid)
    assert api.wait(cid)["StatusCode"] == 0
    logs = api.daemon.data_root / "containers" / cid
    assert (logs / f"{cid}-json.log.1").exists(), sorted(os.listdir(logs))

    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    raw = socket.create_connection(api.daemon.addr, timeout=60)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(f"GET /containers/{cid}/logs?stdout=1 HTTP/1.1\r\nHost: b\r\n\r\n".encode())
    first = s.recv(65536)
    time.sleep(1)  # a slow reader: the server's queue for us fills up meanwhile
    chunks = [first]
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        chunks.append(b)
        if b.endswith(b"\r\n0\r\n\r\n"):
            break
    s.close()
    head, body = b"".join(chunks).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower(), head
    data = dechunk(body)
    frames = demux(data)
    assert len(frames) == n, len(frames)
    assert all(f == (1, b"x" * size + b"\n") for f in frames)
    api.rm(cid)


def dechunk(body):
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[j + 2 : j + 2 + size])
        i = j + 2 + size + 2

"""The Exec API and the exec/attach WebSocket streams of berthd
(docs/streams.md), black-box over mTLS with the admin cert: exit codes,
stdin EOF, stdout/stderr apart, TTY size, detach semantics, kill, a 100 MB
round trip, concurrency, fd hygiene after clients that vanish, refused
upgrades and malformed frames.  Needs root and the test image (like
test_container_api.py, whose helpers it uses)."""

import hashlib
import json
import os
import socket
import subprocess
import ssl
import struct
import threading
import time

import pytest

from conftest import Berth, Daemon, client_ssl_context, mktemp_dir, wait_for
from test_container_api import (
    HEX64,
    Api,
    force_cleanup,
    load_busybox,
    monitors_for,
    need_root_and_image,
    remove_all,
)
from wsclient import (
    CONTROL,
    STDERR,
    STDOUT,
    Closed,
    HandshakeError,
    Session,
    WebSocket,
    tls_ws,
    unix_ws,
)


class ExecApi(Api):
    def exec_create(self, cid, cmd, want=201, **body):
        body = {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, **body}
        status, _, data = self.call("POST", f"/containers/{cid}/exec", body)
        assert status == want, (status, data[:300])
        js = json.loads(data)
        if want == 201:
            assert HEX64.match(js["Id"]), js
            return js["Id"]
        return js["message"]

    def ws(self, path):
        ctx = client_ssl_context(self.pki.ca, self.pki.cert, self.pki.key)
        return tls_ws(self.daemon.addr, ctx, path)

    def session(self, eid):
        return Session(self.ws(f"/exec/{eid}/ws"))

    def run(self, cid, cmd, stdin=None, **body):
        """One exec to its end: (exit dict, stdout, stderr)."""
        if stdin is not None:
            body["AttachStdin"] = True
        s = self.session(self.exec_create(cid, cmd, **body))
        if stdin is not None:
            s.write(stdin)
            s.control(type="eof")
        e = s.finish()
        return e, bytes(s.out[STDOUT]), bytes(s.out[STDERR])

    def exec_json(self, eid):
        return self.json("GET", f"/exec/{eid}/json")


@pytest.fixture(scope="module")
def env(pki, no_stray_daemons):
    """One daemon and one long-running container for the module."""
    need_root_and_image()
    d = Daemon(pki.dir, mktemp_dir("exec-d-"))
    d.start()
    api = ExecApi(d, pki)
    try:
        load_busybox(api)
        cid = api.create(Cmd=["sleep", "100000"])
        api.start(cid)
        yield api, cid
    finally:
        remove_all(d, api)


def berthd_fds(api):
    return len(os.listdir(f"/proc/{api.daemon.proc.pid}/fd"))


# ---- exit codes, streams, stdin ------------------------------------------------


def test_exit_codes_and_streams_apart(env):
    api, cid = env
    e, out, err = api.run(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert e == {"type": "exit", "code": 3, "signal": 0, "oom": False}
    assert (out, err) == (b"out\n", b"err\n")
    e, out, err = api.run(cid, ["true"])
    assert e["code"] == 0 and out == b"" and err == b""
    e, out, err = api.run(cid, ["no-such-command"])
    assert e["code"] == 127, e
    assert b"executable file not found" in err, err


def test_exec_json_shape_and_kept_after_exit(env):
    api, cid = env
    eid = api.exec_create(cid, ["sh", "-c", "exit 4"], User="0", DetachKeys="ctrl-x")
    js = api.exec_json(eid)
    assert js["ID"] == eid and js["ContainerID"] == cid
    assert js["Running"] is False and js["ExitCode"] is None
    assert js["ProcessConfig"] == {"entrypoint": "sh", "arguments": ["-c", "exit 4"],
                                   "tty": False, "user": "0", "privileged": False}
    assert js["OpenStdout"] and js["OpenStderr"] and not js["OpenStdin"]
    assert js["DetachKeys"] == "ctrl-x" and js["CanRemove"] is False
    assert api.session(eid).finish()["code"] == 4
    js = api.exec_json(eid)
    assert js["Running"] is False and js["ExitCode"] == 4


def test_stdin_eof_ends_cat(env):
    api, cid = env
    e, out, _ = api.run(cid, ["cat"], stdin=b"hello\nworld")
    assert e["code"] == 0 and out == b"hello\nworld"


def test_kill_endpoint_and_control_signal_give_137(env):
    api, cid = env
    eid = api.exec_create(cid, ["sleep", "1000"])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    wait_for(lambda: api.exec_json(eid)["Running"], 10, "exec running")
    assert api.exec_json(eid)["Pid"] > 0
    status, _, _ = api.call("POST", f"/exec/{eid}/kill?signal=KILL")
    assert status == 204
    assert s.finish() == {"type": "exit", "code": 137, "signal": 9, "oom": False}
    assert api.exec_json(eid)["ExitCode"] == 137
    # the same through the control channel
    s = api.session(api.exec_create(cid, ["sleep", "1000"]))
    s.pump(until=lambda s: s.hello is not None)
    s.control(type="signal", signal="SIGKILL")
    assert s.finish()["code"] == 137


def test_100mb_round_trip(env):
    api, cid = env
    data = os.urandom(100 * 1024 * 1024)
    s = api.session(api.exec_create(cid, ["cat"], AttachStdin=True))
    start = time.monotonic()
    e = s.exchange(data, chunk=256 * 1024 - 16)
    s.ws.close()
    took = time.monotonic() - start
    assert e["code"] == 0
    assert len(s.out[STDOUT]) == len(data)
    assert hashlib.sha256(s.out[STDOUT]).digest() == hashlib.sha256(data).digest()
    print(f"100 MB through exec -i cat and back: {took:.1f}s")


# ---- TTY ------------------------------------------------------------------------------


def test_tty_size_at_once_and_after_resize(env):
    api, cid = env
    e, out, err = api.run(cid, ["stty", "size"], Tty=True, ConsoleSize=[37, 101])
    assert e["code"] == 0 and out.strip() == b"37 101" and err == b""
    eid = api.exec_create(cid, ["sh", "-c", "read x; stty size"], Tty=True, AttachStdin=True,
                          ConsoleSize=[24, 80])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    assert s.hello["tty"] is True and s.hello["stdin"] is True
    s.control(type="resize", rows=50, cols=120)
    # the REST resize too, with absurd sizes refused
    assert api.call("POST", f"/exec/{eid}/resize?h=51&w=121")[0] == 200
    assert api.call("POST", f"/exec/{eid}/resize?h=0&w=80")[0] == 400
    assert api.call("POST", f"/exec/{eid}/resize?h=24&w=100000")[0] == 400
    s.write(b"\n")
    assert s.finish()["code"] == 0
    assert b"51 121" in bytes(s.out[STDOUT]), bytes(s.out[STDOUT])


# ---- detach ------------------------------------------------------------------------------


def test_detach_non_tty_keeps_running_tty_gets_sighup(env):
    api, cid = env
    eid = api.exec_create(cid, ["sleep", "1000"])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    s.ws.close()  # no eof, no exit: a detach
    time.sleep(0.5)  # give a wrong SIGHUP time to land
    assert api.exec_json(eid)["Running"] is True
    # a re-join sees the same process and its end
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    assert api.call("POST", f"/exec/{eid}/kill?signal=TERM")[0] == 204
    assert s.finish()["code"] == 143
    eid = api.exec_create(cid, ["sleep", "1000"], Tty=True, AttachStdin=True)
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    s.ws.close()
    js = wait_for(lambda: (lambda j: not j["Running"] and j)(api.exec_json(eid)), 10,
                  "the TTY exec to end after its client left")
    assert js["ExitCode"] == 128 + 1, js  # SIGHUP


def test_start_detached_and_plain_http_attach_refused(env):
    api, cid = env
    eid = api.exec_create(cid, ["sh", "-c", "exit 5"])
    status, _, data = api.call("POST", f"/exec/{eid}/start", {"Detach": False})
    assert status == 400 and b"/ws" in data, data
    status, _, data = api.call("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status in (200, 204), data
    js = wait_for(lambda: (lambda j: not j["Running"] and j)(api.exec_json(eid)), 10, "exit")
    assert js["ExitCode"] == 5
    status, _, _ = api.call("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status == 409


# ---- many sessions, vanishing clients -------------------------------------------------


def test_50_concurrent_sessions(env):
    api, cid = env
    results, errors = {}, []

    def one(i):
        try:
            results[i] = api.run(cid, ["sh", "-c", f"echo {i}; echo e{i} >&2; exit {i % 7}"])
        except Exception as e:  # reported below
            errors.append(f"{i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i in range(50):
        e, out, err = results[i]
        assert (e["code"], out, err) == (i % 7, f"{i}\n".encode(), f"e{i}\n".encode())


def _abort(ws):
    # RST, not a close handshake: the client "was killed"
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.sock.close()


def test_clients_killed_mid_stream_leave_no_fds(env):
    api, cid = env
    api.run(cid, ["true"])  # warm up lazily allocated state
    base = berthd_fds(api)
    errors = []

    def worker(n):
        try:
            for _ in range(n):
                eid = api.exec_create(cid, ["cat", "/dev/zero"], Tty=True, AttachStdin=True)
                s = api.session(eid)
                got = 0
                while got < 200000:
                    ch, _, data = s.ws.recv_stream()
                    got += len(data) if ch != CONTROL else 0
                _abort(s.ws)
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    wait_for(lambda: berthd_fds(api) <= base, 20,
             f"berthd's fd count back to {base} (now {berthd_fds(api)})")
    # and every TTY exec got its SIGHUP: no cat left in the container
    wait_for(lambda: not _procs_in(cid, "cat"), 20, "the cats to end")
    # The monitors keep a TTY's unread output for RT_MONITOR_STUCK_MS (30 s)
    # after the exit, then go: none may stay for good.
    wait_for(lambda: not exec_monitors(api.daemon), 45, "the exec monitors to exit")


def exec_monitors(daemon):
    out = []
    for pid in monitors_for(daemon):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--exec" in f.read().split(b"\0"):
                    out.append(pid)
        except OSError:
            pass
    return out


def _procs_in(cid, name):
    """Processes called name in container cid (by its cgroup)."""
    out = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            with open(f"/proc/{p}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if argv0 == name.encode() and cid in cg:
            out.append(int(p))
    return out


# ---- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["no cert", "foreign CA"])
def test_upgrade_without_a_valid_client_cert_is_refused_by_tls(env, other_pki, who):
    api, cid = env
    eid = api.exec_create(cid, ["true"])
    if who == "no cert":
        ctx = client_ssl_context(api.pki.ca)  # trusts the server, shows no cert
    else:
        ctx = client_ssl_context(api.pki.ca, other_pki.cert, other_pki.key)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)) as ei:
        ws = tls_ws(api.daemon.addr, ctx, f"/exec/{eid}/ws")
        ws.close()
    assert not isinstance(ei.value, HandshakeError), "an HTTP answer came without a valid cert"
    assert api.exec_json(eid)["Running"] is False and api.exec_json(eid)["ExitCode"] is None


def test_unknown_exec_and_stopped_container(env):
    api, cid = env
    msg = api.error("GET", "/exec/nope/json", want=404)
    assert msg == "No such exec instance: nope"
    assert api.call("POST", "/exec/nope/start", {"Detach": True})[0] == 404
    assert api.call("POST", "/exec/nope/kill?signal=KILL")[0] == 404
    with pytest.raises(HandshakeError) as ei:
        api.ws("/exec/nope/ws")
    assert ei.value.status == 404
    assert json.loads(ei.value.body)["message"] == "No such exec instance: nope"
    stopped = api.create(Cmd=["true"])
    msg = api.exec_create(stopped, ["true"], want=409)
    assert msg == f"Container {stopped} is not running"
    # a created container takes an attach (it waits for the start:
    # test_attach_start.py); an exited one does not
    api.start(stopped)
    assert api.wait(stopped)["StatusCode"] == 0
    with pytest.raises(HandshakeError) as ei:
        api.ws(f"/containers/{stopped}/attach/ws")
    assert ei.value.status == 409
    assert api.exec_create("no-such-container", ["true"], want=404).startswith("No such container")
    assert "Cmd" in api.exec_create(cid, [], want=400)
    assert "privileged" in api.exec_create(cid, ["true"], want=400, Privileged=True)
    assert "ConsoleSize" in api.exec_create(cid, ["true"], want=400, ConsoleSize=[0, 99999])


BAD_FRAMES = [
    ("short frame", b"\x00\x00\x00", 1008),
    ("unknown channel", b"\x07" + b"\x00" * 8 + b"x", 1008),
    ("oversized control", b"\x03" + b" " * 5000, 1008),
    ("non-JSON control", b"\x03not json", 1008),
    ("absurd resize", b"\x03" + json.dumps({"type": "resize", "rows": 0, "cols": 1}).encode(),
     1008),
]


@pytest.mark.parametrize("what,frame,code", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_malformed_frames_close_only_that_session(env, what, frame, code):
    api, cid = env
    other = api.session(api.exec_create(cid, ["cat"], AttachStdin=True))
    other.pump(until=lambda s: s.hello is not None)
    eid = api.exec_create(cid, ["sleep", "1000"])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    s.ws.send_frame(2, frame)
    msgs = []
    with pytest.raises(Closed) as ei:
        while True:
            msgs.append(s.ws.recv_stream())
    assert ei.value.code == code, (ei.value.code, ei.value.reason)
    assert msgs and msgs[-1][0] == CONTROL and msgs[-1][2]["type"] == "error", msgs
    assert msgs[-1][2]["message"], msgs
    s.ws.close()
    # the other session still works
    other.write(b"still here")
    other.control(type="eof")
    assert other.finish()["code"] == 0 and bytes(other.out[STDOUT]) == b"still here"
    assert api.call("POST", f"/exec/{eid}/kill?signal=KILL")[0] == 204


def test_text_message_is_refused_with_1003(env):
    api, cid = env
    eid = api.exec_create(cid, ["sleep", "1000"])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    s.ws.send_frame(1, b'{"type":"eof"}')
    with pytest.raises(Closed) as ei:
        while True:
            s.ws.recv_stream()
    assert ei.value.code == 1003
    s.ws.close()
    assert api.call("POST", f"/exec/{eid}/kill?signal=KILL")[0] == 204


# ---- attach -------------------------------------------------------------------------------------


def test_attach_stdin_and_exit_over_unix_socket(env):
    api, _ = env
    cid = api.create(Cmd=["cat"], OpenStdin=True, AttachStdin=True)
    api.start(cid)
    s = Session(unix_ws(api.daemon.sock, f"/v1.43/containers/{cid}/attach/ws?stdin=1&stdout=1"))
    s.pump(until=lambda s: s.hello is not None)
    assert s.hello["stdin"] is True and s.hello["tty"] is False
    s.write(b"attached\n")
    s.control(type="eof")
    assert s.finish()["code"] == 0
    assert bytes(s.out[STDOUT]) == b"attached\n"


# ---- backpressure and ending ----------------------------------------------------------------


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_slow_client_slows_the_producer(env):
    api, cid = env
    n = 64 * 1024 * 1024
    eid = api.exec_create(cid, ["head", "-c", str(n), "/dev/zero"])
    s = api.session(eid)
    s.pump(until=lambda s: s.hello is not None)
    before = _rss_kb(api.daemon.proc.pid)
    time.sleep(2)  # the client reads nothing meanwhile (a duration, not a sync)
    grown = _rss_kb(api.daemon.proc.pid) - before
    assert api.exec_json(eid)["Running"] is True, "the producer was not held back"
    assert grown < 8 * 1024, f"berthd grew by {grown} kB for a client that reads nothing"
    assert s.finish()["code"] == 0
    assert len(s.out[STDOUT]) == n


def test_server_closes_a_client_that_stays_after_exit(env):
    api, cid = env
    s = api.session(api.exec_create(cid, ["true"]))
    assert s.pump()["code"] == 0
    start = time.monotonic()
    with pytest.raises((Closed, ConnectionError, OSError)):
        while True:
            s.ws.recv_frame()
    took = time.monotonic() - start
    assert 8 <= took <= 20, f"closed after {took:.1f}s (docs/streams.md: 10 s)"
    s.ws.close()


# ---- denial of service: a client whose stdin is always full ------------------------


def _ping(api):
    status, _, body = api.call("GET", "/_ping")
    return status == 200 and body == b"OK"


def test_cli_full_stdin_pipe_cannot_wedge_berthd(pki, no_stray_daemons):
    """`berth exec -i c cat` with 100 MB on an always-full stdin pipe and
    stdout read concurrently made berthd spin inside lws (rx flow control
    with TLS data OpenSSL had already decrypted): afterwards it answered
    nothing and ignored SIGTERM.  The exec must finish (or fail) in bounded
    time, berthd must still answer /_ping, and exit 0 on SIGTERM."""
    need_root_and_image()
    d = Daemon(pki.dir, mktemp_dir("exec-dos-d-"))
    d.start()
    api = ExecApi(d, pki)
    cli = Berth(mktemp_dir("exec-dos-cli-"))
    try:
        load_busybox(api)
        cid = api.create(Cmd=["sleep", "100000"])
        api.start(cid)
        cli.ok("context", "create", "e2e", "--host", d.host, "--tls-dir", pki.dir)
        cli.ok("context", "use", "e2e")
        data = os.urandom(100 * 1024 * 1024)
        p = subprocess.run([cli.path, "exec", "-i", cid, "cat"], input=data,
                           capture_output=True, env=cli.env(), timeout=60)
        assert p.returncode == 0, p.stderr[-2000:]
        assert len(p.stdout) == len(data)
        assert hashlib.sha256(p.stdout).digest() == hashlib.sha256(data).digest()
        assert _ping(api)
        for c in api.json("GET", "/containers/json?all=1"):
            api.rm(c["Id"])
        assert d.stop() == 0, d.log_text()[-4000:]
    finally:
        if d.proc.poll() is None:
            d.kill()
            force_cleanup(d)


# ---- the berth.stream.v1 subprotocol -------------------------------------------------


def _ws_with_subprotocol(api, path, proto):
    raw = socket.create_connection(api.daemon.addr, timeout=60)
    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    s = ctx.wrap_socket(raw, server_hostname=api.daemon.addr[0])
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: berth\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Protocol: {proto}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    ws = WebSocket(s)
    status, headers = ws._read_head()
    return ws, status, headers


def test_offered_subprotocol_is_selected(env):
    api, cid = env
    eid = api.exec_create(cid, ["sh", "-c", "echo sub; exit 5"])
    ws, status, headers = _ws_with_subprotocol(api, f"/exec/{eid}/ws", "berth.stream.v1")
    assert status == 101, (status, headers)
    assert headers.get("sec-websocket-protocol") == "berth.stream.v1", headers
    s = Session(ws)
    assert s.finish()["code"] == 5
    assert bytes(s.out[STDOUT]) == b"sub\n"
    # and without a subprotocol, as before
    e, out, _ = api.run(cid, ["echo", "plain"])
    assert e["code"] == 0 and out == b"plain\n"


def test_stdin_and_eof_sent_before_hello_are_kept(env):
    """Frames that arrive before berthd has connected to the monitor (the
    connect runs on the worker pool) are kept and replayed, not dropped."""
    api, cid = env
    data = os.urandom(200 * 1024)
    s = api.session(api.exec_create(cid, ["cat"], AttachStdin=True))
    s.write(data, chunk=50 * 1024)  # at once, without waiting for hello
    s.control(type="eof")
    e = s.finish()
    assert e["code"] == 0 and s.hello is not None
    assert bytes(s.out[STDOUT]) == data


@pytest.mark.parametrize("proto", ["berth-signal", "berth-stream", "no-such-protocol"])
def test_internal_or_unknown_subprotocol_is_refused(env, proto):
    api, cid = env
    eid = api.exec_create(cid, ["true"])
    try:
        ws, status, _ = _ws_with_subprotocol(api, f"/exec/{eid}/ws", proto)
    except (ConnectionError, OSError):
        return  # dropped: refused
    ws.sock.close()
    assert status != 101

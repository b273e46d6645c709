"""Attach before start (docs/streams.md): `berth run -i/-t` attaches to the
created container, then starts it, and berthd's monitor holds the output
until the attach is connected, so the first bytes (a prompt without a
newline, the whole output of a quick command) are never lost.  Also the
API side: an attach upgrade to a created container waits for its start,
fails with a clear error when the container is removed or cannot start,
and a client that leaves before the start holds nothing back.  Needs root
and the test image."""

import os
import subprocess
import time

import pytest

from conftest import Berth, Daemon, mktemp_dir, wait_for
from test_container_api import load_busybox, need_root_and_image, remove_all
from test_exec import Tty
from test_exec_api import ExecApi
from wsclient import CONTROL, STDOUT, Closed, HandshakeError, Session

RUNS = 20


@pytest.fixture(scope="module")
def env(pki, no_stray_daemons):
    """A daemon of its own, the image loaded, the API and a CLI context on it."""
    need_root_and_image()
    d = Daemon(pki.dir, mktemp_dir("attach-start-d-"))
    d.start()
    api = ExecApi(d, pki)
    cli = Berth(mktemp_dir("attach-start-cli-"))
    try:
        load_busybox(api)
        cli.ok("context", "create", "e2e", "--host", d.host, "--tls-dir", pki.dir)
        cli.ok("context", "use", "e2e")
        yield api, cli
    finally:
        remove_all(d, api)


def leftovers(api):
    return [c["Names"] for c in api.json("GET", "/containers/json?all=1")]


# ---- the CLI ----------------------------------------------------------------------


def test_run_it_never_loses_the_first_prompt(env):
    api, cli = env
    for i in range(RUNS):
        t = Tty(cli, ["run", "-it", "--rm", "busybox", "sh", "-c",
                      "printf PROMPT; read x; echo got-$x"])
        t.read_until(b"PROMPT", timeout=30)
        t.write(f"n{i}\r".encode())
        t.read_until(f"got-n{i}".encode(), timeout=30)
        assert t.wait(timeout=30) == 0, (i, t.buf)
    assert leftovers(api) == []


def test_run_i_never_loses_a_quick_commands_output(env):
    api, cli = env
    for i in range(RUNS):
        p = cli.run("run", "-i", "--rm", "busybox", "echo", f"hi{i}", input=b"")
        assert (p.returncode, p.out, p.err) == (0, f"hi{i}\n", ""), i
    assert leftovers(api) == []


def test_run_i_rm_keeps_exit_codes(env):
    api, cli = env
    p = cli.run("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo bye >&2; exit 7",
                input=b"from-stdin")
    assert (p.returncode, p.out, p.err) == (7, "from-stdin", "bye\n")
    p = cli.run("run", "-i", "--rm", "busybox", "sh", "-c",
                "sh -c 'kill -9 $$'; exit $?", input=b"")
    assert p.returncode == 137, p.err
    p = cli.run("run", "-i", "--rm", "busybox", "no-such-command", input=b"")
    assert p.returncode == 127, p.err
    assert "executable file not found" in p.err
    assert leftovers(api) == []


def test_run_i_output_is_also_in_the_log(env):
    api, cli = env
    name = "log-" + os.urandom(4).hex()
    try:
        p = cli.run("run", "-i", "--name", name, "busybox", "sh", "-c",
                    "printf 'no newline'; echo; echo second", input=b"")
        assert (p.returncode, p.out) == (0, "no newline\nsecond\n"), p.err
        assert cli.run("logs", name).out == "no newline\nsecond\n"
    finally:
        cli.run("rm", "-f", name)


def _logged(api, line):
    return line in api.daemon.log_text()


def test_attach_cli_to_created_container_then_rm(env):
    api, cli = env
    cid = api.create(Cmd=["cat"], OpenStdin=True, AttachStdin=True)
    p = subprocess.Popen([cli.path, "attach", cid], env=cli.env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # berth attach to a created container waits for its start
        wait_for(lambda: _logged(api, f"stream {cid}: waiting for the start"), 20,
                 "berth attach to wait for the start")
        api.rm(cid)
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    msg = err.decode()
    assert p.returncode == 125, (p.returncode, msg)
    assert f"container {cid[:12]} was removed before it started" in msg, msg


# ---- the API ----------------------------------------------------------------------


def _error_then_close(s):
    """The control messages until the server's close: (error message, close code)."""
    msg = None
    try:
        while True:
            ch, _, data = s.ws.recv_stream()
            if ch == CONTROL and data.get("type") == "error":
                msg = data["message"]
    except Closed as e:
        return msg, e.code


def test_attach_created_then_start_gets_everything_from_offset_0(env):
    api, _ = env
    cid = api.create(Cmd=["sh", "-c", "printf 'a prompt> '; echo more; exit 5"])
    s = Session(api.ws(f"/containers/{cid}/attach/ws?stdout=1&stderr=1"))
    try:
        api.start(cid)
        e = s.pump()
        assert e["code"] == 5
        assert s.hello["offset"] == 0
        assert bytes(s.out[STDOUT]) == b"a prompt> more\n"
    finally:
        s.ws.close()
        api.rm(cid)


def test_attach_created_then_rm_fails_with_1011(env):
    api, _ = env
    cid = api.create(Cmd=["true"])
    s = Session(api.ws(f"/containers/{cid}/attach/ws"))
    try:
        api.rm(cid)
        msg, code = _error_then_close(s)
        assert code == 1011
        assert msg == f"container {cid[:12]} was removed before it started"
    finally:
        s.ws.close()


def test_attach_created_whose_start_fails_names_why(env):
    api, _ = env
    cid = api.create(Cmd=["/no/such/binary"])
    s = Session(api.ws(f"/containers/{cid}/attach/ws"))
    try:
        status, _, _ = api.call("POST", f"/containers/{cid}/start")
        assert status >= 400
        msg, code = _error_then_close(s)
        assert code == 1011
        assert msg.startswith(f"container {cid[:12]} did not start: "), msg
        assert "/no/such/binary" in msg, msg
    finally:
        s.ws.close()
        api.rm(cid)


def test_attach_that_left_before_the_start_holds_nothing(env):
    api, _ = env
    cid = api.create(Cmd=["echo", "nobody-watching"])
    s = Session(api.ws(f"/containers/{cid}/attach/ws"))
    s.ws.close()
    wait_for(lambda: _logged(api, f"stream {cid}: client left"), 20, "berthd to see the close")
    try:
        t0 = time.monotonic()
        api.start(cid)
        assert api.wait(cid)["StatusCode"] == 0
        # a monitor holding the output for nobody would keep exit.json back
        # for RT_MONITOR_STUCK_MS (30 s)
        assert time.monotonic() - t0 < 15
        _, log = api.logs(cid)
        assert b"nobody-watching\n" in log
    finally:
        api.rm(cid)


def test_attach_to_an_exited_container_is_still_409(env):
    api, _ = env
    cid = api.create(Cmd=["true"])
    try:
        api.start(cid)
        assert api.wait(cid)["StatusCode"] == 0
        with pytest.raises(HandshakeError) as ei:
            api.ws(f"/containers/{cid}/attach/ws")
        assert ei.value.status == 409
    finally:
        api.rm(cid)


def test_attach_without_output_waits_but_holds_nothing(env):
    api, _ = env
    cid = api.create(Cmd=["sh", "-c", "echo not-for-this-client; exit 3"])
    s = Session(api.ws(f"/containers/{cid}/attach/ws?stdout=0&stderr=0"))
    try:
        t0 = time.monotonic()
        api.start(cid)
        assert s.pump()["code"] == 3
        assert bytes(s.out[STDOUT]) == b""
        # it never takes output, so it must not hold any (30 s after the exit)
        assert api.wait(cid)["StatusCode"] == 3
        assert time.monotonic() - t0 < 15
        assert b"not-for-this-client\n" in api.logs(cid)[1]
    finally:
        s.ws.close()
        api.rm(cid)


def test_attach_leaving_around_the_start_never_leaves_the_output_held(env):
    """The client leaves at different moments around the start: before the
    spawn, during it (the monitor was told to hold for it), or after the
    start while its connect is on the way.  Whatever the moment, nobody will
    take the held output, so berthd must release it: a TTY container whose
    output stays held blocks on the full pty and never exits."""
    import json
    import threading

    api, _ = env
    script = "head -c 300000 /dev/zero | tr '\\0' x; echo; echo finished"
    for i, delay in enumerate([0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.04, 0.08] * 2):
        cid = api.create(Cmd=["sh", "-c", script], Tty=True)
        s = Session(api.ws(f"/containers/{cid}/attach/ws?stdout=1"))
        try:
            starter = threading.Thread(target=api.start, args=(cid,))
            starter.start()
            time.sleep(delay)  # where the close lands, not a synchronisation
            s.ws.close()
            starter.join(60)
            status, _, data = api.call("POST", f"/containers/{cid}/wait?condition=not-running",
                                       timeout=20)
            assert status == 200, (i, delay, status, data[:200])
            assert json.loads(data)["StatusCode"] == 0, (i, delay, data)
            assert b"finished" in api.logs(cid)[1], (i, delay)
        finally:
            api.rm(cid)

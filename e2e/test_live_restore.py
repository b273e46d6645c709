"""Live restore: SIGKILL berthd while 5 containers run and log, restart it on
the same roots: all 5 are still listed running with the same pids, their
logs have no gap, stop works, an exit that happened while berthd was down is
recorded with its code, and a --restart always container that exited
meanwhile is restarted.  Also: a graceful stop (SIGTERM) leaves containers
running."""

import json
import os
import signal

import pytest

from conftest import wait_for
from test_container_api import (
    Api,
    demux,
    load_busybox,
    mounts_under,
    need_root_and_image,
    remove_all,
)

COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"


def counter_values(api, cid):
    _, data = api.logs(cid, "stdout=1")
    return [int(f[1]) for f in demux(data)]


def assert_no_gap(values):
    assert values, "no log lines"
    assert values == list(range(len(values))), f"log sequence has a gap or repeat: {values}"


def kill_daemon(d):
    d.kill()  # SIGKILL: no chance to clean up
    assert d.proc.returncode == -signal.SIGKILL
    # The harness takes the pid file as "ready": a stale one would fool it.
    d.pidfile.unlink()


@pytest.fixture
def restored(make_daemon, pki):
    need_root_and_image()
    d = make_daemon(pki.dir)
    api = Api(d, pki)
    load_busybox(api)
    yield d, api
    remove_all(d, api)


def test_sigkill_and_restart_keeps_containers(restored):
    d, api = restored
    ids = [api.create(f"count{i}", Cmd=["sh", "-c", COUNTER]) for i in range(5)]
    quitter = api.create("quitter", Cmd=["sh", "-c", "sleep 1; exit 7"])
    always = api.create(
        "always", Cmd=["sh", "-c", "sleep 1; exit 1"], HostConfig={"RestartPolicy": {"Name": "always"}}
    )
    for cid in ids + [quitter, always]:
        api.start(cid)
    pids = {cid: api.inspect(cid)["State"]["Pid"] for cid in ids}
    assert all(p > 0 for p in pids.values()), pids
    wait_for(lambda: all(len(counter_values(api, c)) >= 3 for c in ids), 10, "logs")

    kill_daemon(d)
    # The exits happen while nobody is watching: the monitors record them.
    for cid in (quitter, always):
        wait_for(lambda: (d.exec_root / "containers" / cid / "exit.json").exists(), 15,
                 f"exit.json of {cid[:12]} while berthd is down")
    before = {cid: len(counter_values_from_file(d, cid)) for cid in ids}
    d.start()

    running = {c["Id"] for c in api.json("GET", "/containers/json")}
    for cid in ids:
        assert cid in running, f"{cid[:12]} not listed running after restore"
        st = api.inspect(cid)["State"]
        assert st["Status"] == "running" and st["Pid"] == pids[cid], (st, pids[cid])
    st = api.inspect(quitter)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 7, st

    def restarted():
        js = api.inspect(always)
        return js["RestartCount"] >= 1 and js

    js = wait_for(restarted, 15, "the always container to be restarted", interval=0.1)
    assert js["State"]["Status"] in ("running", "restarting", "exited"), js["State"]

    # Output continued across the restart, with no gap.
    for cid in ids:
        wait_for(lambda: len(counter_values(api, cid)) > before[cid] + 3, 10, "more logs")
        assert_no_gap(counter_values(api, cid))

    # The restored containers answer to stop.
    status, _, _ = api.call("POST", f"/containers/{ids[0]}/stop?t=1")
    assert status == 204
    st = api.inspect(ids[0])["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st
    assert not os.path.exists(f"/proc/{pids[ids[0]]}") or pid_is_zombie(pids[ids[0]])


def counter_values_from_file(d, cid):
    log = d.data_root / "containers" / cid / f"{cid}-json.log"
    return [json.loads(l)["log"] for l in log.read_text().splitlines() if l.strip()]


def pid_is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_graceful_stop_keeps_containers_running(restored):
    d, api = restored
    cid = api.create("keeps", Cmd=["sh", "-c", COUNTER])
    api.start(cid)
    pid = api.inspect(cid)["State"]["Pid"]
    assert d.stop() == 0
    assert os.path.exists(f"/proc/{pid}") and not pid_is_zombie(pid), "SIGTERM killed a container"
    d.start()
    st = api.inspect(cid)["State"]
    assert st["Status"] == "running" and st["Pid"] == pid, st


def test_lost_monitor_is_recorded_as_exited(restored):
    d, api = restored
    cid = api.create("lost", Cmd=["sleep", "1000"])
    api.start(cid)
    kill_daemon(d)
    mon = int((d.exec_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: pid_is_zombie(mon), 10, "the monitor to die")
    d.start()
    st = api.inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 255, st
    assert "without an exit status" in st["Error"], st
    assert mounts_under(d.data_root) == []


def test_daemon_start_applies_always_but_not_unless_stopped(restored):
    d, api = restored
    policy = {}
    for name in ("always", "unless-stopped"):
        cid = api.create(f"p-{name}", Cmd=["sleep", "1000"],
                         HostConfig={"RestartPolicy": {"Name": name}})
        api.start(cid)
        status, _, _ = api.call("POST", f"/containers/{cid}/stop?t=0")
        assert status == 204
        st = api.inspect(cid)["State"]
        assert st["Status"] == "exited", st  # a user's stop is never undone at once
        policy[name] = cid
    assert d.stop() == 0
    d.start()
    wait_for(lambda: api.inspect(policy["always"])["State"]["Running"], 10,
             "the always container to come back at daemon start", interval=0.1)
    assert api.inspect(policy["unless-stopped"])["State"]["Status"] == "exited"


def test_running_container_behind_a_stale_record_is_adopted(restored):
    """berthd died between spawning the monitor and saving "running": the
    record still says created, the container runs.  It is adopted, not lost."""
    d, api = restored
    cid = api.create("orphan", Cmd=["sleep", "1000"])
    api.start(cid)
    pid = api.inspect(cid)["State"]["Pid"]
    kill_daemon(d)
    rec = d.data_root / "containers" / cid / "config.v2.json"
    js = json.loads(rec.read_text())
    js["State"]["Status"] = "created"
    rec.write_text(json.dumps(js))
    d.start()
    st = api.inspect(cid)["State"]
    assert st["Status"] == "running" and st["Pid"] == pid, st
    status, _, _ = api.call("POST", f"/containers/{cid}/kill")
    assert status == 204
    assert api.wait(cid)["StatusCode"] == 137

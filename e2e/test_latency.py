"""What the start/rm latency work changed, checked on a real daemon: rm
renames the container's data dir into DATA_ROOT/tmp and deletes it after
the reply (nothing of the container is left once the poll ends, and a
half-deleted dir from a killed daemon is wiped at the next start); an
AutoRemove container's overlay is volatile (no syncfs of the data root when
it is unmounted) while a kept container's is not; exec-root state written
without fsync is still whole (no temp files left beside it)."""

import os

from conftest import wait_for
from test_container_api import (
    Api,
    assert_clean,
    load_busybox,
    need_root_and_image,
    remove_all,
)

import pytest


@pytest.fixture
def lat(make_daemon, pki):
    need_root_and_image()
    d = make_daemon(pki.dir)
    api = Api(d, pki)
    load_busybox(api)
    yield d, api
    remove_all(d, api)


def overlay_options(d, cid):
    """The mount options of the container's rootfs overlay, or None."""
    merged = str(d.data_root / "containers" / cid / "merged")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == merged:
                return fields[-1].split(",")  # the superblock options
    return None


def is_volatile(opts):
    # Older kernels list "volatile"; 6.x spells it "fsync=volatile".
    return opts is not None and ("volatile" in opts or "fsync=volatile" in opts)


def test_rm_is_whole_at_once_and_the_files_go_after(lat):
    d, api = lat
    cid = api.create(Cmd=["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=16 && sync"])
    api.start(cid)
    assert api.wait(cid)["StatusCode"] == 0
    assert (d.data_root / "containers" / cid / "upper" / "big").stat().st_size == 16 << 20
    api.rm(cid)
    # At the reply: gone from the store, the exec root, the mounts, cgroups.
    assert_clean(d, cid)
    status, _, _ = api.call("GET", f"/containers/{cid}/json")
    assert status == 404
    tmp = d.data_root / "tmp"
    wait_for(lambda: not any(p.name.startswith("rm-") for p in tmp.iterdir()), 10,
             "the renamed data dir deleted")
    # The name is free again at once and a new container works.
    cid2 = api.create(Cmd=["true"])
    api.start(cid2)
    assert api.wait(cid2)["StatusCode"] == 0
    api.rm(cid2)
    assert_clean(d, cid2)


def test_half_deleted_dir_of_a_killed_daemon_is_wiped_at_start(lat):
    d, api = lat
    left = d.data_root / "tmp" / ("rm-" + "ab" * 32)
    (left / "upper" / "etc").mkdir(parents=True)
    (left / "upper" / "etc" / "f").write_text("x")
    (left / "config.v2.json").write_text("{}")
    d.kill()
    d.pidfile.unlink()
    d.start()
    assert not left.exists()
    assert api.json("GET", "/containers/json?all=1") == []


def test_autoremove_overlay_is_volatile_a_kept_one_is_not(lat):
    d, api = lat
    gone = api.create(Cmd=["sleep", "30"], HostConfig={"AutoRemove": True})
    kept = api.create(Cmd=["sleep", "30"])
    api.start(gone)
    api.start(kept)
    assert is_volatile(overlay_options(d, gone)), overlay_options(d, gone)
    assert overlay_options(d, kept) and not is_volatile(overlay_options(d, kept))
    api.call("POST", f"/containers/{gone}/kill")
    wait_for(lambda: api.call("GET", f"/containers/{gone}/json")[0] == 404, 10,
             "the AutoRemove container removed")
    api.rm(kept)
    assert_clean(d, gone)
    assert_clean(d, kept)


def test_exec_root_state_is_whole_without_temp_files(lat):
    d, api = lat
    cid = api.create(Cmd=["sleep", "30"])
    api.start(cid)
    state = d.exec_root / "runtime" / cid / "state.json"
    pid = int((d.exec_root / "containers" / cid / "container.pid").read_text())
    assert f'"pid":{pid}' in state.read_text()
    for top in (d.exec_root / "runtime" / cid, d.exec_root / "containers" / cid):
        temps = [n for n in os.listdir(top) if ".tmp-" in n]
        assert temps == [], temps
    api.rm(cid)
    assert_clean(d, cid)

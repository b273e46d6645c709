"""Faults, loopback only and bounded: berthd SIGKILLed in the middle of
creating and starting containers and in the middle of a pull (the moments
found by polling the state on disk, never by sleeping), a data root on a
small loop-mounted ext4 that fills up, and a container flooding stdout while
nobody (or a slow `logs -f`) reads.  After each: clear errors, berthd still
serving, no half-registered container or image, and the store check passes.

Needs root (containers, mount) and the test image."""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import registry as regmod
from conftest import client_ssl_context, mktemp_dir, wait_for
from test_container_api import (
    Api,
    container_dirs,
    force_cleanup,
    load_busybox,
    monitors_for,
    mounts_under,
    need_root_and_image,
    remove_all,
)
from test_containers import missing
from test_registry import SlowProxy, multi_layer_layout

# ---- helpers ---------------------------------------------------------------------


def container_cgroups(cid):
    """The container's cgroup in every hierarchy (v1 and v2).  glob.glob, not
    a recursive walk: other tests' cgroups come and go meanwhile."""
    return glob.glob(f"/sys/fs/cgroup/*/berth/{cid}") + glob.glob(f"/sys/fs/cgroup/berth/{cid}")


def cgroup_procs(cg):
    try:
        with open(os.path.join(cg, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # removed meanwhile
        return []


def store_check(api):
    doc = api.json("GET", "/_berth/store/check")
    assert doc["OK"] is True, doc
    return doc


def containers(api):
    return api.json("GET", "/containers/json?all=1")


def assert_only_whole_containers(api):
    """Every container dir on disk is one `ps -a` lists, and every listed
    container inspects and has its record."""
    listed = {c["Id"] for c in containers(api)}
    on_disk = set(container_dirs(api.daemon))
    assert on_disk == listed, f"on disk but not listed: {on_disk - listed}, " \
                              f"listed but not on disk: {listed - on_disk}"
    for cid in listed:
        js = api.inspect(cid)
        assert js["Id"] == cid and js["State"]["Status"] in (
            "created", "running", "exited", "restarting"), js["State"]
    return listed


def restart_after_kill(d):
    d.proc.wait(timeout=10)
    d.pidfile.unlink(missing_ok=True)  # SIGKILL leaves it; start() waits for a new one
    d.start()


def kill_when(d, cond, what, timeout=30):
    """Polls (no sleep between polls) until cond() and SIGKILLs berthd at
    once; returns True if it was killed at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            d.proc.send_signal(signal.SIGKILL)
            return True
        if d.proc.poll() is not None:
            return False
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def in_background(fn):
    """Runs fn in a thread; its outcome does not matter (the connection
    dies with berthd), only what is on disk afterwards."""

    def run():
        try:
            fn()
        except Exception:  # noqa: BLE001
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---- SIGKILL during container creation ---------------------------------------------


def new_container_dir(d, before):
    cdir = d.data_root / "containers"
    new = set(os.listdir(cdir)) - before if cdir.is_dir() else set()
    return next(iter(new), None)


def moment_dir(d, before):
    return new_container_dir(d, before) is not None


def moment_record(d, before):
    cid = new_container_dir(d, before)
    return cid is not None and (d.data_root / "containers" / cid / "config.v2.json").exists()


def moment_bundle(d, before):
    cid = new_container_dir(d, before)
    return cid is not None and (d.data_root / "containers" / cid / "bundle" / "config.json").exists()


def moment_monitor(d, before):
    cid = new_container_dir(d, before)
    return cid is not None and (d.exec_root / "containers" / cid).exists()


MOMENTS = [moment_dir, moment_record, moment_bundle, moment_monitor]


@pytest.fixture
def node(make_daemon, pki):
    need_root_and_image()
    d = make_daemon(pki.dir)
    api = Api(d, pki)
    try:
        load_busybox(api)
        yield api
    finally:
        remove_all(d, api)


def test_sigkill_during_create_and_start_leaves_only_whole_containers(node):
    api, d = node, node.daemon
    seen, cids = [], []
    for moment in MOMENTS:
        before = set(container_dirs(d))

        def create_and_start():
            cid = api.create(Cmd=["sleep", "1000"])
            api.start(cid)
            return cid

        t = in_background(create_and_start)
        killed = kill_when(d, lambda: moment(d, before), moment.__name__)
        t.join(30)
        assert killed, f"berthd died by itself before {moment.__name__}: {d.log_text()[-2000:]}"
        restart_after_kill(d)
        listed = assert_only_whole_containers(api)
        store_check(api)
        cid = new_container_dir(d, before)
        cids.append(cid) if cid else None
        # a container that survived is usable: it runs or can be started
        state = None
        if cid is not None:
            assert cid in listed
            state = api.inspect(cid)["State"]["Status"]
            if state != "running":
                api.start(cid)
            assert api.inspect(cid)["State"]["Running"], api.inspect(cid)["State"]
        seen.append(f"{moment.__name__[7:]}: {state or 'no container'}")
    print("after SIGKILL at", "; ".join(seen))
    # and everything goes away cleanly through the API
    for c in containers(api):
        api.rm(c["Id"])
    assert container_dirs(d) == []
    assert mounts_under(d.data_root) == [], mounts_under(d.data_root)
    wait_for(lambda: not monitors_for(d), 10, "every berth-monitor to exit")
    for cid in cids:
        left = [cg for cg in container_cgroups(cid) if cgroup_procs(cg)]
        assert not left, f"container {cid[:12]} still has processes: " + "; ".join(
            f"{cg}: {cgroup_procs(cg)}" for cg in left)
    cid = api.create(Cmd=["true"])
    api.start(cid)
    assert api.wait(cid)["StatusCode"] == 0


# ---- SIGKILL during a pull ------------------------------------------------------------

LAYER_BYTES = 3 * 1024 * 1024


def store_dir(d, *parts):
    return d.data_root.joinpath("image", *parts)


def entries(path):
    try:
        return [p for p in path.iterdir() if not p.name.startswith(".")]
    except FileNotFoundError:
        return []


def pull_moment_partial_blob(d):
    return any(p.name.startswith("blob-") and p.stat().st_size > 256 * 1024
               for p in entries(store_dir(d, "tmp")))


def pull_moment_whole_blob(d):
    return len(entries(store_dir(d, "blobs", "sha256"))) > 0


def pull_moment_layer_committed(d):
    return len(entries(store_dir(d, "layers", "sha256"))) > 0


def pull_moment_registered(d):
    return len(entries(store_dir(d, "imagedb", "sha256"))) > 0


PULL_MOMENTS = [pull_moment_partial_blob, pull_moment_whole_blob, pull_moment_layer_committed,
                pull_moment_registered]


@pytest.fixture
def slow_registry(tmp_path):
    need_root_and_image()
    if not regmod.available():
        missing("docker-registry and skopeo are needed (scripts/install-deps)")
    reg = regmod.Registry(mktemp_dir("reg-fault-")).start()
    proxy = None
    try:
        layers = [{f"l{i}.bin": os.urandom(LAYER_BYTES)} for i in range(3)]
        diffs, _, cfg = multi_layer_layout(tmp_path / "oci", layers)
        reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "ml/big:latest")
        # ~4 MB/s per connection: a few seconds per pull, room for each moment
        proxy = SlowProxy(reg.port, rate=4 * 1024 * 1024)
        yield f"127.0.0.1:{proxy.port}/ml/big:latest", diffs, cfg
    finally:
        if proxy is not None:
            proxy.close()
        reg.stop()


def pull_api(api, ref):
    name, tag = ref.rsplit(":", 1)
    status, _, body = api.call("POST", f"/images/create?fromImage={name}&tag={tag}", timeout=120)
    return status, body


def images(api):
    return api.json("GET", "/images/json")


def test_sigkill_during_pull_leaves_no_half_image(make_daemon, pki, slow_registry):
    ref, diffs, cfg = slow_registry
    seen = []
    for moment in PULL_MOMENTS:
        d = make_daemon(pki.dir)
        api = Api(d, pki)
        t = in_background(lambda: pull_api(api, ref))
        killed = kill_when(d, lambda: moment(d), moment.__name__, timeout=60)
        t.join(60)
        assert killed, f"berthd died by itself before {moment.__name__}"
        restart_after_kill(d)
        store_check(api)
        assert entries(store_dir(d, "tmp")) == [], entries(store_dir(d, "tmp"))
        imgs = images(api)
        # whole or absent: the image and all its layers, tagged unless the
        # kill fell between registering the image and writing its tag
        assert len(imgs) <= 1, imgs
        if imgs:
            assert imgs[0]["Id"] == cfg and imgs[0]["RepoTags"] in ([ref], []), imgs
            layers = api.json("GET", f"/images/{cfg}/json")["RootFS"]["Layers"]
            assert layers == diffs, layers
        seen.append(f"{moment.__name__[12:]}: " + (
            "no image" if not imgs else "image" if imgs[0]["RepoTags"] else "untagged image"))
        # the pull resumes and gives the whole image
        status, body = pull_api(api, ref)
        assert status == 200 and b"errorDetail" not in body, (status, body[-400:])
        js = api.json("GET", f"/images/{ref}/json")
        assert js["Id"] == cfg and js["RootFS"]["Layers"] == diffs, js
        store_check(api)
        d.stop()
    print("after SIGKILL during a pull at", "; ".join(seen))


# ---- disk full ---------------------------------------------------------------------------

FS_MB = 64


def docker_archive(tag, payload):
    """A one-layer `docker save` archive holding payload as /blob.bin."""
    import hashlib
    import io
    import tarfile

    def tar(files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in files.items():
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
        return buf.getvalue()

    layer = tar({"blob.bin": payload})
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/blob.bin"]},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}})
    cfg_name = hashlib.sha256(cfg.encode()).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}])
    return tar({"manifest.json": manifest.encode(), cfg_name: cfg.encode(),
                "l/layer.tar": layer})


def fill(path):
    """Writes path until the filesystem is full; returns the bytes written."""
    n = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        while True:
            try:
                n += os.write(f.fileno(), chunk)
                os.fsync(f.fileno())
            except OSError as e:
                assert e.errno == 28, e  # ENOSPC
                break
    # the last bytes of the last block, and the journal's slack
    with open(path, "ab") as f:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(f.fileno(), b"\0" * size)
                    os.fsync(f.fileno())
                    n += size
                except OSError:
                    break
    return n


@pytest.fixture
def small_data_root(make_daemon, pki):
    """A berthd whose data root is a FS_MB MiB ext4 on a loop device."""
    need_root_and_image()
    for tool in ("mkfs.ext4", "losetup"):
        if shutil.which(tool) is None:
            missing(f"{tool} is needed (scripts/install-deps: e2fsprogs, util-linux)")
    d = make_daemon(pki.dir, start=False)
    img = d.root / "fs.img"
    with open(img, "wb") as f:
        f.truncate(FS_MB << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True,
                   capture_output=True)
    d.data_root.mkdir(parents=True)
    subprocess.run(["mount", "-o", "loop", str(img), str(d.data_root)], check=True)
    api = Api(d, pki)
    try:
        d.start()
        yield api
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                for c in containers(api):
                    api.rm(c["Id"])
                assert d.stop() == 0, d.log_text()[-3000:]
            wait_for(lambda: not monitors_for(d), 10, "berth-monitor processes to exit")
            inner = [m for m in mounts_under(d.data_root) if m != str(d.data_root)]
            assert inner == [], inner
        except BaseException:
            d.kill()
            force_cleanup(d)
            raise
        finally:
            r = subprocess.run(["umount", str(d.data_root)], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(d.data_root)], capture_output=True)


def error_of(api, method, path, body=None, headers=None):
    try:
        status, _, data = api.call(method, path, body, headers)
    except OSError as e:
        raise AssertionError(f"{method} {path}: {e}; berthd log:\n" + api.daemon.log_text()[-1500:])
    try:
        msg = json.loads(data)["message"]
    except (ValueError, KeyError):
        msg = data[:300].decode(errors="replace")
    return status, msg


def log_lines(api, cid):
    _, data = api.logs(cid)
    return data.count(b"tick ")


def test_disk_full_gives_clear_errors_and_recovers(small_data_root):
    api = small_data_root
    d = api.daemon
    load_busybox(api)
    ticker = api.create(Cmd=["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"])
    api.start(ticker)
    wait_for(lambda: log_lines(api, ticker) > 5, 10, "the ticker's first log lines")
    archive = docker_archive("full:1", os.urandom(2 << 20))
    filler = d.data_root / "filler"
    fill(filler)
    try:
        # loading an image: a clear error naming what ran out, nothing half-loaded
        status, msg = error_of(api, "POST", "/images/load", archive,
                               {"Content-Type": "application/x-tar"})
        assert status in (500, 507) and "No space left" in msg, (status, msg)
        assert str(d.data_root) in msg, f"the error does not say where: {msg}"
        said = [f"load: {status} {msg}"]
        # creating a container
        status, msg = error_of(api, "POST", "/containers/create", {"Image": "busybox",
                                                                   "Cmd": ["true"]})
        assert status in (500, 507) and "No space left" in msg, (status, msg)
        assert str(d.data_root) in msg, f"the error does not say where: {msg}"
        said.append(f"create: {status} {msg}")
        print("disk full:", "; ".join(said))
        # berthd keeps serving, and nothing is half-registered
        assert api.call("GET", "/_ping")[2] == b"OK"
        assert [i["RepoTags"] for i in images(api)] == [["busybox:latest"]]
        assert_only_whole_containers(api)
        store_check(api)
        assert api.inspect(ticker)["State"]["Running"]
        # the logs of a container that wrote into a full disk are still served
        stalled = log_lines(api, ticker)
        # room for the request body but not for the unpacked layer as well:
        # the load fails inside the store, which is left as it was
        os.truncate(filler, filler.stat().st_size - (3 << 20))
        status, msg = error_of(api, "POST", "/images/load", archive,
                               {"Content-Type": "application/x-tar"})
        assert status in (500, 507) and "No space left" in msg, (status, msg)
        print(f"disk almost full: load: {status} {msg}")
        assert [i["RepoTags"] for i in images(api)] == [["busybox:latest"]]
        store_check(api)
    finally:
        filler.unlink()
    # after freeing space everything works again
    status, _, body = api.call("POST", "/images/load", archive,
                               {"Content-Type": "application/x-tar"})
    assert status == 200 and b"Loaded image: full:1" in body, (status, body[:300])
    cid = api.create(Cmd=["sh", "-c", "echo fine"])
    api.start(cid)
    assert api.wait(cid)["StatusCode"] == 0
    assert b"fine" in api.logs(cid)[1]
    wait_for(lambda: log_lines(api, ticker) > stalled + 5, 10, "the ticker's log to grow again")
    assert_only_whole_containers(api)
    store_check(api)


# ---- a container flooding stdout ----------------------------------------------------------

FLOOD_S = 5
RSS_GROWTH_KB = 20 * 1024


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def peak_rss_over(pid, seconds, tick=None):
    """Samples VmRSS for `seconds` (a measurement window, not a wait for
    an event); tick() runs between samples.  Returns the peak in kB."""
    peak, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, rss_kb(pid))
        if tick is not None:
            tick()
        else:
            time.sleep(0.1)
    return peak


@pytest.fixture
def flood_node(make_daemon, pki, monkeypatch):
    """Like node, but an ASan berthd gets a 1 MB quarantine: ASan keeps up to
    256 MB of freed memory by default, which would be measured as berthd's
    own.  Leak and bounds checks are unchanged."""
    need_root_and_image()
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "detect_leaks=1") +
                       ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64")
    d = make_daemon(pki.dir)
    api = Api(d, pki)
    try:
        load_busybox(api)
        yield api
    finally:
        remove_all(d, api)


def test_stdout_flood_does_not_grow_berthd(flood_node):
    api, d = flood_node, flood_node.daemon
    cid = api.create(Cmd=["yes", "flooding stdout into the log, nobody reads it"])
    log = d.data_root / "containers" / cid / f"{cid}-json.log"
    base = rss_kb(d.proc.pid)
    api.start(cid)
    wait_for(lambda: log.exists() and log.stat().st_size > (1 << 20), 20, "the flood to start")
    alone = peak_rss_over(d.proc.pid, FLOOD_S)
    assert api.call("GET", "/_ping")[2] == b"OK"
    # a slow `logs -f` reader: one recv (at most 4 KiB) every 20 ms while the
    # container floods on
    ctx = client_ssl_context(api.pki.ca, api.pki.cert, api.pki.key)
    s = ctx.wrap_socket(socket.create_connection(d.addr, timeout=20), server_hostname="127.0.0.1")
    got = [0]

    def read_slowly():
        got[0] += len(s.recv(4096))
        time.sleep(0.02)

    try:
        s.sendall(f"GET /containers/{cid}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: b\r\n\r\n"
                  .encode())
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        slow = peak_rss_over(d.proc.pid, FLOOD_S, read_slowly)
        assert got[0] > 16 * 1024, f"the slow reader got only {got[0]} bytes"
        assert api.call("GET", "/_ping")[2] == b"OK"  # served beside the flood
    finally:
        s.close()
    print(f"berthd VmRSS: {base} kB before, peak {alone} kB flooded without a reader, "
          f"{slow} kB with a slow logs -f reader ({got[0] >> 10} KiB read)")
    assert alone - base < RSS_GROWTH_KB, (base, alone)
    assert slow - base < RSS_GROWTH_KB, (base, slow)
    # the log on disk is bounded by its rotation (20 MiB x 3)
    total = sum(p.stat().st_size for p in log.parent.glob(f"{cid}-json.log*"))
    assert total <= 3 * 21 * (1 << 20), total
    api.rm(cid)

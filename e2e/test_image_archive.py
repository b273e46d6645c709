"""Image archives through `berth` against real berthd daemons: save/load
round trips (docker-archive and OCI, checked by skopeo), commit with added
and deleted files, import, export, rmi with containers and shared layers,
history, image prune, and the store consistency check after every step."""

import io
import json
import shutil
import subprocess
import tarfile

import pytest

from conftest import Berth, http_get_json, mktemp_dir
from test_containers import TEST_IMAGE, missing


class Env:
    def __init__(self, pki, daemon, cli):
        self.pki, self.daemon, self.cli = pki, daemon, cli

    def check_store(self):
        r = http_get_json(self.daemon, self.pki, "/_berth/store/check")
        assert r["OK"] and r["Problems"] == [], r["Problems"]

    def image_id(self, ref):
        return self.cli.json("image", "inspect", ref)[0]["Id"]


def new_env(pki, make_daemon, name):
    d = make_daemon(pki.dir)
    cli = Berth(mktemp_dir(f"arc-{name}-"))
    cli.ok("context", "create", "e2e", "--host", d.host, "--tls-dir", pki.dir)
    cli.ok("context", "use", "e2e")
    return Env(pki, d, cli)


@pytest.fixture
def env(pki, make_daemon):
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    e = new_env(pki, make_daemon, "a")
    e.cli.ok("load", "-i", TEST_IMAGE)
    yield e
    e.check_store()


def skopeo():
    if shutil.which("skopeo") is None:
        missing("skopeo is not installed")
    return "skopeo"


def run_skopeo(*args):
    p = subprocess.run([skopeo(), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def names_in(path):
    with tarfile.open(path) as t:
        return t.getnames()


def test_save_load_round_trip_on_second_daemon(env, pki, make_daemon, tmp_path):
    src_id = env.image_id("busybox")
    out = tmp_path / "bb.tar"
    env.cli.ok("save", "-o", out, "busybox")
    names = names_in(out)
    assert "manifest.json" in names and "repositories" in names
    assert not (tmp_path / "bb.tar.part").exists()
    env.check_store()
    other = new_env(pki, make_daemon, "b")
    p = other.cli.ok("load", input=out.read_bytes())  # berth load < FILE (a pipe)
    assert "Loaded image: busybox:latest" in p.out
    assert other.image_id("busybox") == src_id
    other.check_store()
    # Deterministic: saving again gives the same bytes.
    again = tmp_path / "bb2.tar"
    env.cli.ok("save", "-o", again, "busybox")
    assert again.read_bytes() == out.read_bytes()


def test_save_to_stdout_and_unknown_image(env):
    p = env.cli.run("save", "busybox")
    assert p.returncode == 0, p.err
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    p = env.cli.run("save", "-o", "/dev/null", "nosuch:image")
    assert p.returncode == 1 and "No such image: nosuch:image" in p.err, p.err


def test_saved_archives_accepted_by_skopeo(env, tmp_path):
    docker_tar = tmp_path / "d.tar"
    env.cli.ok("save", "-o", docker_tar, "busybox")
    info = json.loads(run_skopeo("inspect", f"docker-archive:{docker_tar}"))
    assert info["Os"] == "linux" and len(info["Layers"]) == 1
    run_skopeo("copy", f"docker-archive:{docker_tar}", f"oci:{tmp_path / 'copy'}:x")
    oci_tar = tmp_path / "o.tar"
    env.cli.ok("save", "--format", "oci", "-o", oci_tar, "busybox")
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(oci_tar) as t:
        t.extractall(layout)
    info = json.loads(run_skopeo("inspect", f"oci:{layout}"))
    assert info["Layers"] == json.loads(run_skopeo("inspect", f"docker-archive:{docker_tar}"))["Layers"]


def test_commit_captures_added_and_deleted_files(env):
    env.cli.ok("run", "--name", "c1", "busybox", "sh", "-c",
               "echo added > /added; rm /bin/ls; rm -rf /etc; mkdir /etc; echo only > /etc/only")
    p = env.cli.ok("commit", "-m", "my change", "c1", "committed:v1")
    new_id = p.out.strip()
    assert new_id.startswith("sha256:") and env.image_id("committed:v1") == new_id
    env.check_store()
    out = env.cli.ok("run", "--rm", "committed:v1", "sh", "-c",
                     "cat /added; test -e /bin/ls && echo ls-present; ls /etc").out
    assert out.split() == ["added", "only"], out
    hist = env.cli.ok("history", "committed:v1").out.splitlines()
    assert hist[0].split()[:4] == ["IMAGE", "CREATED", "CREATED", "BY"]
    assert len(hist) == 3 and "my change" in hist[1] and hist[2].startswith("<missing>")
    rows = env.cli.json("history", "--format", "json", "committed:v1")
    assert [r["Id"] for r in rows][1:] == ["<missing>"] and rows[0]["Id"] == new_id
    assert rows[0]["Tags"] == ["committed:v1"] and rows[0]["Comment"] == "my change"
    env.cli.ok("rm", "c1")


def test_import_then_run(env, tmp_path):
    root = tmp_path / "rootfs.tar"
    env.cli.ok("run", "--name", "src", "busybox", "sh", "-c", "echo imported > /marker")
    env.cli.ok("export", "-o", root, "src")
    names = names_in(root)
    assert "marker" in names and "bin/busybox" in names
    env.cli.ok("rm", "src")
    subprocess.run(["gzip", "-k", root], check=True)
    p = env.cli.ok("import", "-c", 'CMD ["cat", "/marker"]', f"{root}.gz", "imported:gz")
    assert p.out.strip() == env.image_id("imported:gz")
    assert env.cli.ok("run", "--rm", "imported:gz").out == "imported\n"
    cfg = env.cli.json("image", "inspect", "imported:gz")[0]
    assert cfg["Os"] == "linux" and cfg["Config"]["Cmd"] == ["cat", "/marker"]
    plain = env.cli.ok("import", "-", "imported:plain", input=root.read_bytes()).out.strip()
    assert env.cli.json("image", "inspect", plain)[0]["Config"].get("Cmd") is None  # as docker
    # Same decompressed tar -> same layer.
    assert cfg["RootFS"]["Layers"] == env.cli.json("image", "inspect", plain)[0]["RootFS"]["Layers"]
    env.check_store()


def test_export_has_container_files(env):
    env.cli.ok("create", "--name", "fresh", "busybox", "true")  # never started: no upper dir
    p = env.cli.run("export", "fresh")
    assert p.returncode == 0, p.err
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        assert t.getmember("bin/busybox").isfile()
    env.cli.ok("rm", "fresh")
    env.cli.ok("create", "--name", "ex", "busybox", "true")
    env.cli.ok("start", "ex")
    env.cli.ok("wait", "ex")
    p = env.cli.run("export", "ex")
    assert p.returncode == 0, p.err
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        assert t.getmember("bin/busybox").isfile()
    env.cli.ok("rm", "ex")


def test_rmi_in_use_and_shared_layers(env):
    base_layer = env.cli.json("image", "inspect", "busybox")[0]["RootFS"]["Layers"][0]
    env.cli.ok("run", "--name", "user", "busybox", "true")
    p = env.cli.run("rmi", "busybox")
    assert p.returncode == 1 and "container" in p.err and "is using" in p.err, p.err
    env.cli.ok("run", "--name", "c2", "busybox", "sh", "-c", "echo x > /x")
    env.cli.ok("commit", "c2", "child:v1")
    env.cli.ok("rm", "c2", "user")
    p = env.cli.ok("rmi", "busybox")
    assert "Untagged: busybox:latest" in p.out and base_layer not in p.out, p.out
    env.check_store()
    # The child still runs: the layer it shares with the removed image stayed.
    assert env.cli.ok("run", "--name", "user2", "child:v1", "cat", "/x").out == "x\n"
    # -f on an image in use untags it; the image stays for the container.
    p = env.cli.ok("rmi", "-f", "child:v1")
    assert p.out == "Untagged: child:v1\n", p.out
    assert env.cli.ok("start", "user2").returncode == 0
    env.check_store()
    env.cli.ok("rm", "user2")


def test_image_prune_dangling(env):
    env.cli.ok("run", "--name", "c3", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /big")
    env.cli.ok("commit", "c3", "tmp:v1")
    env.cli.ok("run", "--name", "c4", "busybox", "true")
    env.cli.ok("commit", "c4", "tmp:v1")  # the first commit is now dangling
    env.cli.ok("rm", "c3", "c4")
    dangling = [line for line in env.cli.ok("images").out.splitlines() if line.startswith("<none>")]
    assert len(dangling) == 1, dangling
    p = env.cli.ok("image", "prune", "-f")
    assert "deleted: sha256:" in p.out
    reclaimed = p.out.strip().splitlines()[-1]
    assert reclaimed.startswith("Total reclaimed space: 10"), p.out  # 100 kB of /big
    assert not [line for line in env.cli.ok("images").out.splitlines() if line.startswith("<none>")]
    assert env.cli.ok("run", "--rm", "tmp:v1", "true").returncode == 0
    env.check_store()
    # -a removes every image no container uses.
    env.cli.ok("image", "prune", "-a", "-f")
    assert env.cli.ok("image", "ls", "-q").out == ""
    env.check_store()


def test_save_of_pulled_image_keeps_its_id(pki, make_daemon, tmp_path):
    """A pulled layer has no kept tar: save sends the compressed blob the
    pull kept, so the config (and the image id) stay as pulled."""
    import registry as regmod

    if not TEST_IMAGE.is_file() or not regmod.available():
        missing("docker-registry, skopeo or the test image is missing")
    reg = regmod.Registry(mktemp_dir("arc-reg-")).start()
    try:
        reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "arc/bb:1")
        ref = f"{reg.host}/arc/bb:1"
        a = new_env(pki, make_daemon, "pull")
        a.cli.ok("pull", "-q", ref)
        pulled = a.image_id(ref)
        out = tmp_path / "pulled.tar"
        a.cli.ok("save", "-o", out, ref)
        info = json.loads(run_skopeo("inspect", f"docker-archive:{out}"))
        assert len(info["Layers"]) == 1
        b = new_env(pki, make_daemon, "load")
        assert ref in b.cli.ok("load", "-i", out).out
        assert b.image_id(ref) == pulled
        assert "<missing>" not in b.cli.ok("history", ref).out  # a '/' in the name routes
        assert b.cli.ok("rmi", ref).out.startswith(f"Untagged: {ref}\n")
        a.check_store()
        b.check_store()
    finally:
        reg.stop()


def _tar_num(v, width):
    """A tar numeric field: octal, or GNU base-256 when it does not fit."""
    if v < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, v)
    return b"\x80" + v.to_bytes(width - 1, "big")


def sparse_bomb_layer(n, size=10 << 30):
    """n GNU sparse entries, each declaring size bytes and storing 1 KiB."""
    out = b""
    for i in range(n):
        h = bytearray(512)
        name = b"bomb%d" % i
        h[0:len(name)] = name
        h[100:108] = _tar_num(0o644, 8)
        h[108:116] = _tar_num(0, 8)
        h[116:124] = _tar_num(0, 8)
        h[124:136] = _tar_num(1024, 12)
        h[136:148] = _tar_num(0, 12)
        h[156:157] = b"S"
        h[257:265] = b"ustar  \0"
        h[386:410] = _tar_num(0, 12) + _tar_num(512, 12)
        h[410:434] = _tar_num(size - 512, 12) + _tar_num(512, 12)
        h[483:495] = _tar_num(size, 12)
        h[148:156] = b" " * 8
        h[148:155] = b"%06o\0" % sum(h)
        out += bytes(h) + b"B" * 1024
    return out + b"\0" * 1024


def test_load_of_a_sparse_bomb_is_refused_quickly(env, tmp_path):
    """Seven 10 GiB sparse files (70 GiB declared, over the 64 GiB layer
    limit): a clear client error in bounded time, nothing registered."""
    import hashlib
    import time

    layer = sparse_bomb_layer(7)
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bomb:latest"],
                            "Layers": ["layer/layer.tar"]}]).encode()
    path = tmp_path / "bomb.tar"
    with tarfile.open(path, "w") as t:
        for name, data in (("layer/layer.tar", layer), ("config.json", config),
                           ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    before = env.cli.ok("image", "ls", "-q").out
    t0 = time.monotonic()
    p = env.cli.run("load", "-i", path)
    assert time.monotonic() - t0 < 10
    assert p.returncode == 1 and "bomb0" not in p.out, p.out
    assert "layer entry bomb6: layer larger than" in p.err, p.err
    from conftest import https_conn
    c = https_conn(env.daemon, env.pki)
    c.request("POST", "/v1.43/images/load", body=path.read_bytes(),
              headers={"Content-Type": "application/x-tar"})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert 400 <= r.status < 500 and b"larger than" in body, (r.status, body)
    assert env.cli.ok("image", "ls", "-q").out == before
    layers = env.daemon.data_root / "image" / "layers" / "sha256"
    assert len(list(layers.iterdir())) == 1  # busybox only, no partial layer dir

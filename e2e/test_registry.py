"""Registry pull and push against a REAL registry: Debian's docker-registry
on loopback (HTTP, HTTPS with a `berth certs init` CA, htpasswd auth),
filled with skopeo from images the tests build (the busybox test image, an
OCI layout with a two-platform index, a ~50 MB random layer).  berthd runs
as root with its own data root; everything talks to 127.0.0.1 only.
Registries, proxies, daemons and temp dirs are stopped/removed at the end."""

import gzip
import hashlib
import io
import json
import os
import signal
import socket
import tarfile
import threading
import time

import pytest

import registry as regmod
from conftest import Berth, Daemon, mktemp_dir, wait_for
from test_containers import TEST_IMAGE, missing

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="berthd's image store needs root")

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


@pytest.fixture(scope="module")
def need_tools():
    if not regmod.available():
        missing("docker-registry and skopeo are needed (scripts/install-deps)")
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")


@pytest.fixture
def registries(tmp_path, need_tools):
    """Factory: started registries, all stopped at the end."""
    started = []

    def make(**kw):
        r = regmod.Registry(mktemp_dir("reg-"), **kw).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture(scope="module")
def plain_reg(need_tools):
    """One HTTP registry with busybox (Docker v2s2 and OCI) for the read-only tests."""
    r = regmod.Registry(mktemp_dir("reg-plain-")).start()
    try:
        src = f"docker-archive:{TEST_IMAGE}"
        r.skopeo_copy(src, "busybox:latest", "--format", "v2s2")
        r.skopeo_copy(src, "busybox:second", "--format", "v2s2")
        r.skopeo_copy(src, "ocibox:latest", "--format", "oci")
        yield r
    finally:
        r.stop()


class Cli:
    """The berth CLI pointed at one daemon."""

    def __init__(self, d, pki):
        self.b = Berth(mktemp_dir("reg-cli-"))
        self.d = d
        self.pki = pki

    def run(self, *args, **kw):
        return self.b.run("-H", self.d.host, "--tls-dir", self.pki.dir, *args, **kw)

    def ok(self, *args, **kw):
        return self.b.ok("-H", self.d.host, "--tls-dir", self.pki.dir, *args, **kw)


def api(d, pki, method, path, headers=None):
    from conftest import https_conn
    c = https_conn(d, pki)
    c.request(method, "/v1.43" + path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def image_list(d, pki):
    st, body = api(d, pki, "GET", "/images/json")
    assert st == 200, body
    return json.loads(body)


def tags_of(d, pki):
    return {t for img in image_list(d, pki) for t in img["RepoTags"]}


@pytest.fixture
def node(make_daemon, pki):
    """A fresh berthd (its own store) and a CLI for it."""

    def make(extra=()):
        d = make_daemon(pki.dir, extra=list(extra))
        return Cli(d, pki)

    return make


# ---- test images made here -------------------------------------------------------


def tar_bytes(files):
    """A deterministic tar of {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class OciLayout:
    def __init__(self, root):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data):
        d = sha(data)
        (self.root / "blobs" / "sha256" / d[7:]).write_bytes(data)
        return {"digest": d, "size": len(data)}

    def image(self, layer_tar, arch, compress=True):
        layer = gzip.compress(layer_tar, mtime=0) if compress else layer_tar
        cfg = json.dumps({"architecture": arch, "os": "linux",
                          "config": {"Cmd": ["/hello"], "Labels": {"arch": arch}},
                          "rootfs": {"type": "layers", "diff_ids": [sha(layer_tar)]}}).encode()
        ld = self.blob(layer)
        ld["mediaType"] = ("application/vnd.oci.image.layer.v1.tar+gzip" if compress
                           else "application/vnd.oci.image.layer.v1.tar")
        cd = self.blob(cfg)
        cd["mediaType"] = "application/vnd.oci.image.config.v1+json"
        m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": cd, "layers": [ld]}).encode()
        md = self.blob(m)
        md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
        md["platform"] = {"os": "linux", "architecture": arch}
        return md, cd["digest"]

    def index(self, manifests, tag="latest"):
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": manifests}).encode()
        d = self.blob(idx)
        top = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d["digest"],
            "size": d["size"], "annotations": {"org.opencontainers.image.ref.name": tag}}]}
        (self.root / "index.json").write_text(json.dumps(top))

    def single(self, manifest, tag="latest"):
        m = dict(manifest)
        m.pop("platform", None)
        m["annotations"] = {"org.opencontainers.image.ref.name": tag}
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [m]}))


# ---- pull --------------------------------------------------------------------------


def test_pull_by_tag_and_digest_docker_v2(node, plain_reg):
    c = node()
    ref = f"{plain_reg.host}/busybox:latest"
    digest, ctype, _ = plain_reg.manifest("busybox", "latest", ACCEPT_ALL)
    assert ctype == "application/vnd.docker.distribution.manifest.v2+json"
    p = c.ok("pull", ref)
    assert f"latest: Pulling from busybox" in p.out
    assert f"Digest: {digest}" in p.out
    assert f"Status: Downloaded newer image for {ref}" in p.out
    imgs = [i for i in image_list(c.d, c.pki) if ref in i["RepoTags"]]
    assert len(imgs) == 1 and imgs[0]["RepoDigests"] == [f"{plain_reg.host}/busybox@{digest}"]
    # the same again: nothing fetched, up to date
    p = c.ok("pull", ref)
    assert "Already exists" in p.out and "Image is up to date" in p.out, p.out
    # by digest: no tag, the same image
    p = c.ok("pull", f"{plain_reg.host}/busybox@{digest}")
    assert f"Digest: {digest}" in p.out, p.out
    # -q prints only the reference
    p = c.ok("pull", "-q", f"{plain_reg.host}/busybox:second")
    assert p.out == f"{plain_reg.host}/busybox:second\n"
    assert len({i["Id"] for i in image_list(c.d, c.pki)}) == 1


def test_run_pulls_a_missing_image(node, plain_reg):
    """docker's --pull: missing (default) pulls what the daemon lacks, progress on stderr
    so that run -d's stdout stays the id; never does not; always pulls first."""
    c = node()
    ref = f"{plain_reg.host}/busybox:latest"
    p = c.run("run", "--rm", "--pull", "never", ref, "true")
    assert p.returncode == 125 and f"No such image: {ref}" in p.err, p.err
    p = c.ok("run", "--rm", ref, "echo", "pulled")
    assert p.out == "pulled\n", p.out
    assert f"Unable to find image '{ref}' locally" in p.err, p.err
    assert f"Status: Downloaded newer image for {ref}" in p.err, p.err
    ref2 = f"{plain_reg.host}/busybox:second"
    p = c.ok("run", "-d", ref2, "true")
    assert len(p.out.strip()) == 64 and "Pulling" in p.err, (p.out, p.err)
    c.ok("rm", "-f", p.out.strip())
    p = c.ok("run", "--rm", "--pull", "always", ref, "true")
    assert "Image is up to date" in p.err and "Unable to find" not in p.err, p.err
    p = c.run("run", "--pull", "sometimes", ref, "true")
    assert p.returncode == 125 and "--pull sometimes" in p.err, p.err
    p = c.run("run", "--rm", f"{plain_reg.host}/nosuch:latest", "true")
    assert p.returncode == 125 and "Unable to find image" in p.err, p.err


def test_pull_oci_manifest(node, plain_reg):
    c = node()
    digest, ctype, _ = plain_reg.manifest("ocibox", "latest", ACCEPT_ALL)
    assert ctype == "application/vnd.oci.image.manifest.v1+json"
    p = c.ok("pull", f"{plain_reg.host}/ocibox")
    assert f"Digest: {digest}" in p.out
    assert f"{plain_reg.host}/ocibox:latest" in tags_of(c.d, c.pki)


def test_pull_multi_platform_index_picks_amd64(node, registries, tmp_path):
    reg = registries()
    lay = OciLayout(tmp_path / "oci")
    layer = tar_bytes({"hello": b"multi\n"})
    amd, amd_cfg = lay.image(layer, "amd64")
    arm, arm_cfg = lay.image(layer, "arm64")
    lay.index([arm, amd])  # arm64 first: picking the first entry would be wrong
    reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "multi:latest", "--all")
    _, ctype, _ = reg.manifest("multi", "latest", ACCEPT_ALL)
    assert ctype == "application/vnd.oci.image.index.v1+json"
    c = node()
    c.ok("pull", f"{reg.host}/multi")
    ids = {i["Id"] for i in image_list(c.d, c.pki)}
    assert ids == {amd_cfg}, (ids, amd_cfg, arm_cfg)
    c.ok("pull", "--platform", "linux/arm64", f"{reg.host}/multi:latest")
    assert arm_cfg in {i["Id"] for i in image_list(c.d, c.pki)}
    p = c.run("pull", "--platform", "linux/s390x", f"{reg.host}/multi:latest")
    assert p.returncode == 1 and "no matching manifest for linux/s390x" in p.err, p.err
    p = c.run("pull", "--platform", "linux", f"{reg.host}/multi:latest")
    assert p.returncode == 1 and 'invalid platform "linux"' in p.err, p.err


def test_unknown_tag_is_a_clear_404(node, plain_reg):
    c = node()
    ref = f"{plain_reg.host}/busybox:nope"
    p = c.run("pull", ref)
    assert p.returncode == 1
    assert f"manifest for {ref} not found: manifest unknown" in p.err, p.err
    st, body = api(c.d, c.pki, "POST", f"/images/create?fromImage={plain_reg.host}/busybox&tag=nope")
    assert st == 404 and b"manifest unknown" in body, (st, body)


def test_unknown_registry_is_a_clear_error(node):
    c = node()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    p = c.run("pull", f"127.0.0.1:{port}/x:latest")
    assert p.returncode == 1
    assert f"cannot reach registry 127.0.0.1:{port}" in p.err, p.err


def test_corrupted_blob_fails_and_leaves_no_image(node, registries, tmp_path):
    reg = registries()
    lay = OciLayout(tmp_path / "oci")
    layer = tar_bytes({"file": os.urandom(4096)})
    m, cfg = lay.image(layer, "amd64", compress=False)
    lay.single(m)
    reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "bad:latest")
    _, _, man = reg.manifest("bad", "latest", ACCEPT_ALL)
    f = reg.blob_file(man["layers"][0]["digest"])
    data = bytearray(f.read_bytes())
    data[600] ^= 0xFF  # same size, other content
    f.write_bytes(bytes(data))
    c = node()
    p = c.run("pull", f"{reg.host}/bad")
    assert p.returncode == 1 and "digest mismatch" in p.err, p.err
    assert image_list(c.d, c.pki) == []
    st, _ = api(c.d, c.pki, "GET", f"/images/{cfg}/json")
    assert st == 404
    store = c.d.data_root / "image"
    assert not any((store / "imagedb" / "sha256").iterdir())
    assert not (store / "blobs" / "sha256" / man["layers"][0]["digest"][7:]).exists()



def store_ok(c):
    """The daemon's own consistency check, when this build has it."""
    st, body = api(c.d, c.pki, "GET", "/_berth/store/check")
    if st == 404:
        return True
    doc = json.loads(body)
    return doc.get("OK") is True or doc


def multi_layer_layout(root, files_per_layer, tag="latest"):
    lay = OciLayout(root)
    tars = [tar_bytes(f) for f in files_per_layer]
    gz = [gzip.compress(t, mtime=0) for t in tars]
    ls = []
    for g in gz:
        d = lay.blob(g)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        ls.append(d)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]}}).encode()
    cd = lay.blob(cfg)
    cd["mediaType"] = "application/vnd.oci.image.config.v1+json"
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cd, "layers": ls}).encode()
    md = lay.blob(m)
    md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    lay.single(md, tag)
    return [sha(t) for t in tars], [d["digest"] for d in ls], cd["digest"]


def test_multi_layer_pull_and_shared_layer_not_fetched_again(node, registries, tmp_path):
    reg = registries()
    shared = {"shared/one": b"1\n"}
    a_diffs, a_blobs, a_cfg = multi_layer_layout(
        tmp_path / "a", [shared, {"two": os.urandom(300000)}, {"three": os.urandom(300000)}])
    b_diffs, b_blobs, _ = multi_layer_layout(tmp_path / "b", [shared, {"four": b"4\n"}])
    reg.skopeo_copy(f"oci:{tmp_path / 'a'}:latest", "ml/a:latest")
    reg.skopeo_copy(f"oci:{tmp_path / 'b'}:latest", "ml/b:latest")
    c = node()
    p = c.ok("pull", f"{reg.host}/ml/a")
    assert p.out.count("Pull complete") == 3, p.out
    layers = c.d.data_root / "image" / "layers" / "sha256"
    assert (layers / a_diffs[1][7:] / "root" / "two").stat().st_size == 300000
    assert (layers / a_diffs[0][7:] / "root" / "shared" / "one").read_bytes() == b"1\n"
    p = c.ok("pull", f"{reg.host}/ml/b")
    assert f"{b_blobs[0][7:19]}: Already exists" in p.out, p.out
    assert p.out.count("Pull complete") == 1, p.out
    # the compressed blobs are kept as fetched (push sends the same bytes)
    for d in a_blobs + b_blobs:
        assert (c.d.data_root / "image" / "blobs" / "sha256" / d[7:]).is_file()
    assert store_ok(c) is True


def test_manifest_pointing_at_a_missing_blob(node, registries, tmp_path):
    reg = registries()
    diffs, blobs, cfg = multi_layer_layout(tmp_path / "m", [{"a": b"a"}, {"b": b"b"}])
    reg.skopeo_copy(f"oci:{tmp_path / 'm'}:latest", "holes:latest")
    reg.blob_file(blobs[1]).unlink()
    c = node()
    ref = f"{reg.host}/holes:latest"
    p = c.run("pull", ref)
    assert p.returncode == 1, p.out
    assert ref in p.err and blobs[1] in p.err and "blob unknown" in p.err, p.err
    assert image_list(c.d, c.pki) == []
    # consistent; the blob fetched before the failure is kept for a retry,
    # and reported as an orphan until prune removes it
    problems = store_ok(c)["Problems"]
    assert problems and all(x.startswith("orphan ") for x in problems), problems
    c.ok("image", "prune", "-f")
    assert not (c.d.data_root / "image" / "blobs" / "sha256" / blobs[0][7:]).exists()
    assert store_ok(c) is True


def test_rmi_removes_blobs_no_image_references(node, registries, tmp_path):
    reg = registries()
    shared = {"shared/one": b"1\n"}
    _, a_blobs, a_cfg = multi_layer_layout(tmp_path / "a", [shared, {"two": b"2\n"}])
    _, b_blobs, b_cfg = multi_layer_layout(tmp_path / "b", [shared, {"four": b"4\n"}])
    reg.skopeo_copy(f"oci:{tmp_path / 'a'}:latest", "gc/a:latest")
    reg.skopeo_copy(f"oci:{tmp_path / 'b'}:latest", "gc/b:latest")
    a_man, _, _ = reg.manifest("gc/a", "latest", ACCEPT_ALL)
    b_man, _, _ = reg.manifest("gc/b", "latest", ACCEPT_ALL)
    c = node()
    c.ok("pull", f"{reg.host}/gc/a")
    c.ok("pull", f"{reg.host}/gc/b")
    blobs = c.d.data_root / "image" / "blobs" / "sha256"
    records = c.d.data_root / "image" / "distribution" / "sha256"
    assert all((blobs / d[7:]).is_file() for d in a_blobs + b_blobs + [a_man, b_man])
    c.ok("rmi", f"{reg.host}/gc/a")
    # a's own layer blob, manifest, config and record are gone; the shared blob stays
    for d in (a_blobs[1], a_man, a_cfg):
        assert not (blobs / d[7:]).exists(), d
    assert not (records / f"{a_cfg[7:]}.json").exists()
    assert all((blobs / d[7:]).is_file() for d in b_blobs + [b_man, b_cfg])
    assert store_ok(c) is True
    c.ok("rmi", f"{reg.host}/gc/b")
    assert not [p for p in blobs.iterdir()] and not [p for p in records.iterdir()]
    assert store_ok(c) is True


# ---- layer semantics and malformed manifests -------------------------------------


def tree_tar(entries):
    """A deterministic tar of [(name, bytes or None for a directory)], in this order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def busybox_base():
    """The busybox test image's layer blob (as is) and config, from its OCI layout."""
    with tarfile.open(TEST_IMAGE) as t:
        def blob(d):
            return t.extractfile(f"blobs/sha256/{d[7:]}").read()
        idx = json.loads(t.extractfile("index.json").read())
        man = json.loads(blob(idx["manifests"][0]["digest"]))
        assert len(man["layers"]) == 1, man
        return blob(man["layers"][0]["digest"]), json.loads(blob(man["config"]["digest"]))


def test_two_layer_image_with_whiteouts_gives_the_expected_tree(node, registries, tmp_path):
    reg = registries()
    base_gz, cfg = busybox_base()
    layer_a = tree_tar([
        ("data/", None), ("data/gone", b"gone\n"), ("data/keep", b"keep\n"),
        ("dir-gone/", None), ("dir-gone/f", b"f\n"),
        ("opq/", None), ("opq/old1", b"1\n"), ("opq/old2", b"2\n"),
    ])
    layer_b = tree_tar([  # the opaque marker before the directory's new entries, as Docker does
        (".wh.dir-gone", b""),
        ("data/", None), ("data/.wh.gone", b""),
        ("opq/", None), ("opq/.wh..wh..opq", b""), ("opq/new", b"new\n"),
    ])
    lay = OciLayout(tmp_path / "oci")
    ls = []
    for data, mt in ((base_gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
                     (gzip.compress(layer_a, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"),
                     (layer_b, "application/vnd.oci.image.layer.v1.tar")):
        d = lay.blob(data)
        d["mediaType"] = mt
        ls.append(d)
    cfg["rootfs"]["diff_ids"] += [sha(layer_a), sha(layer_b)]
    cfg["history"] = cfg.get("history", []) + [
        {"created": "1970-01-01T00:00:00Z", "created_by": f"e2e whiteouts layer {n}"}
        for n in ("A", "B")]
    cd = lay.blob(json.dumps(cfg, sort_keys=True).encode())
    cd["mediaType"] = "application/vnd.oci.image.config.v1+json"
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cd, "layers": ls}).encode()
    md = lay.blob(m)
    md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    lay.single(md)
    reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "wh/tree:latest")
    c = node()
    ref = f"{reg.host}/wh/tree:latest"
    p = c.ok("pull", ref)
    assert p.out.count("Pull complete") == 3, p.out
    assert [i["Id"] for i in image_list(c.d, c.pki)] == [cd["digest"]]
    script = ("ls -a /data; echo =; ls -a /opq; echo =; ls -a /; echo =; "
              "test -e /dir-gone && echo dir-gone-exists; "
              "cat /data/keep /opq/new; echo =; find / -xdev -name '.wh.*'; echo end")
    p = c.ok("run", "--rm", ref, "sh", "-c", script)
    data, opq, root, rest, found = p.out.split("=\n")
    assert data.split() == [".", "..", "keep"], p.out
    assert opq.split() == [".", "..", "new"], p.out
    assert "dir-gone" not in root.split() and "data" in root.split() and "bin" in root.split(), p.out
    assert rest == "keep\nnew\n", p.out
    assert found == "end\n", p.out  # no .wh. name anywhere in the container's tree
    assert ".wh." not in p.out, p.out
    assert c.ok("ps", "-a", "-q").out == ""
    assert store_ok(c) is True


class BadManifestServer:
    """A plain-HTTP "registry" on loopback: /v2/ answers 200, /v2/<name>/manifests/<tag>
    answers 200 with the body set for that tag and a valid manifest Content-Type,
    everything else 404.  Records the paths asked for."""

    def __init__(self, bodies, ctype="application/vnd.oci.image.manifest.v1+json"):
        import http.server
        srv = self
        self.bodies = bodies  # {"name/manifests/tag": bytes}
        self.paths = []

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self):
                srv.paths.append((self.command, self.path))
                path = self.path.split("?", 1)[0]
                body, headers = b"{}", {"Content-Type": "application/json"}
                status = 200 if path == "/v2/" else 404
                key = path[len("/v2/"):] if path.startswith("/v2/") else None
                if key in srv.bodies:
                    body = srv.bodies[key]
                    status = 200
                    headers = {"Content-Type": ctype, "Docker-Content-Digest": sha(body)}
                elif status == 404:
                    body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}'
                self.send_response(status)
                headers["Docker-Distribution-API-Version"] = "registry/2.0"
                headers["Content-Length"] = str(len(body))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.srv.server_address[1]}"
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.t.join(timeout=10)


def test_malformed_manifest_is_a_clear_error(node):
    cfg = {"mediaType": "application/vnd.oci.image.config.v1+json",
           "digest": "sha256:" + "ab" * 32, "size": 2}
    bodies = {
        "bad/json/manifests/v1": b'{"schemaVersion": 2, "layers": [',
        "bad/garbage/manifests/v1": b"\x00\x8f not json at all \xff",
        "bad/schema/manifests/v1": json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg, "layers": {"not": "an array"}}).encode(),
        "bad/nolayers/manifests/v1": json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg}).encode(),
    }
    srv = BadManifestServer(bodies)
    try:
        c = node()
        for key in bodies:
            name = key.split("/manifests/")[0]
            ref = f"{srv.host}/{name}:v1"
            p = c.run("pull", ref)
            assert p.returncode == 1, (ref, p.out, p.err)
            lines = [l for l in p.err.splitlines() if l.strip()]
            assert len(lines) == 1, (ref, p.err)
            assert ref in lines[0] and "malformed manifest" in lines[0], (ref, p.err)
            assert ("GET", f"/v2/{key}") in srv.paths, srv.paths
            assert image_list(c.d, c.pki) == [], ref
            assert store_ok(c) is True, ref
        # the whole store: nothing registered, no blob fetched
        store = c.d.data_root / "image"
        assert not any((store / "imagedb" / "sha256").iterdir())
        assert not any(p for p in srv.paths if "/blobs/" in p[1]), srv.paths
    finally:
        srv.close()


# ---- push ---------------------------------------------------------------------------


def test_push_pull_round_trip_keeps_the_digest(node, registries):
    reg = registries()
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "src/busybox:latest", "--format", "v2s2")
    digest, _, _ = reg.manifest("src/busybox", "latest", ACCEPT_ALL)
    a = node()
    a.ok("pull", f"{reg.host}/src/busybox")
    a.ok("tag", f"{reg.host}/src/busybox", f"{reg.host}/dst/busybox:v1")
    assert f"{reg.host}/dst/busybox:v1" in tags_of(a.d, a.pki)
    p = a.ok("push", f"{reg.host}/dst/busybox:v1")
    assert "Mounted from src/busybox" in p.out, p.out  # cross-repo mount, same registry
    assert f"v1: digest: {digest} size:" in p.out, p.out
    got, _, _ = reg.manifest("dst/busybox", "v1", ACCEPT_ALL)
    assert got == digest
    # a second push: everything is there
    p = a.ok("push", f"{reg.host}/dst/busybox:v1")
    assert "Layer already exists" in p.out
    b = node()
    p = b.ok("pull", f"{reg.host}/dst/busybox:v1")
    assert f"Digest: {digest}" in p.out
    ids_a = {i["Id"] for i in image_list(a.d, a.pki)}
    ids_b = {i["Id"] for i in image_list(b.d, b.pki)}
    assert ids_a == ids_b


def push_digest(out, tag):
    """The digest `berth push` printed for tag."""
    for line in out.splitlines():
        if line.startswith(f"{tag}: digest: sha256:"):
            return line.split()[2]
    raise AssertionError(out)


def test_push_of_a_loaded_image_builds_a_manifest(node, registries):
    reg = registries()
    a = node()
    a.ok("load", "-i", TEST_IMAGE)
    a.ok("tag", "busybox", f"{reg.host}/loaded:latest")
    p = a.ok("push", f"{reg.host}/loaded:latest")
    digest = push_digest(p.out, "latest")
    got, _, man = reg.manifest("loaded", "latest", ACCEPT_ALL)
    assert got == digest
    assert man["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert all(l["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar"
               for l in man["layers"])
    ids_a = {i["Id"] for i in image_list(a.d, a.pki)}
    rd = [d for i in image_list(a.d, a.pki) for d in i["RepoDigests"]]
    assert f"{reg.host}/loaded@{digest}" in rd, rd
    # pushing twice: the kept manifest, identical digest, nothing uploaded
    p = a.ok("push", f"{reg.host}/loaded:latest")
    assert push_digest(p.out, "latest") == digest and "Pushed" not in p.out, p.out
    b = node()
    p = b.ok("pull", f"{reg.host}/loaded:latest")
    assert f"Digest: {digest}" in p.out, p.out
    assert {i["Id"] for i in image_list(b.d, b.pki)} == ids_a
    assert store_ok(a) is True and store_ok(b) is True
    p = a.run("tag", "nosuch", f"{reg.host}/x:1")
    assert p.returncode == 1 and "No such image: nosuch" in p.err


def test_push_of_a_committed_image_runs_on_a_second_daemon(node, registries):
    reg = registries()
    a = node()
    a.ok("load", "-i", TEST_IMAGE)
    a.ok("run", "--name", "c1", "busybox", "sh", "-c", "echo committed > /added")
    ref = f"{reg.host}/committed:v1"
    a.ok("commit", "c1", ref)
    a.ok("rm", "c1")
    digest = push_digest(a.ok("push", ref).out, "v1")
    assert push_digest(a.ok("push", ref).out, "v1") == digest
    b = node()
    p = b.ok("pull", ref)
    assert f"Digest: {digest}" in p.out, p.out
    assert b.ok("run", "--rm", ref, "cat", "/added").out == "committed\n"
    assert store_ok(b) is True


def test_push_of_a_commit_on_a_pulled_image(node, registries):
    """The pulled base layer has no kept tar: it goes up as the compressed
    blob its pull kept; the committed layer as its kept tar."""
    reg = registries()
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "base/bb:1", "--format", "v2s2")
    _, _, base_man = reg.manifest("base/bb", "1", ACCEPT_ALL)
    a = node()
    a.ok("pull", f"{reg.host}/base/bb:1")
    a.ok("run", "--name", "c1", f"{reg.host}/base/bb:1", "sh", "-c", "echo on-pulled > /added")
    ref = f"{reg.host}/child/bb:2"
    a.ok("commit", "c1", ref)
    a.ok("rm", "c1")
    digest = push_digest(a.ok("push", ref).out, "2")
    _, _, man = reg.manifest("child/bb", "2", ACCEPT_ALL)
    assert man["layers"][0] == base_man["layers"][0]
    assert man["layers"][1]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar"
    b = node()
    assert f"Digest: {digest}" in b.ok("pull", ref).out
    assert b.ok("run", "--rm", ref, "cat", "/added").out == "on-pulled\n"
    assert store_ok(a) is True and store_ok(b) is True


# ---- TLS ----------------------------------------------------------------------------


def test_https_registry_needs_its_ca_in_certs_d(node, registries, pki, tmp_path):
    reg = registries(cert=pki.server_cert, key=pki.server_key)
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "tls/busybox:latest", "--format", "v2s2")
    certs_d = tmp_path / "certs.d"
    certs_d.mkdir()
    c = node(extra=["--certs-d", str(certs_d)])
    p = c.run("pull", f"{reg.host}/tls/busybox")
    assert p.returncode == 1, p.out
    assert "TLS handshake with registry" in p.err and "certificate" in p.err, p.err
    (certs_d / reg.host).mkdir()
    (certs_d / reg.host / "ca.crt").write_bytes(pki.ca.read_bytes())
    p = c.ok("pull", f"{reg.host}/tls/busybox")
    assert "Downloaded newer image" in p.out


# ---- credentials -----------------------------------------------------------------------


def test_htpasswd_registry_login_pull_and_wrong_credentials(node, registries, tmp_path):
    ht = tmp_path / "htpasswd"
    regmod.make_htpasswd(ht, "alice", "s3cret-pw")
    reg = registries(htpasswd=ht)
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "private/busybox:latest", "--format", "v2s2",
                    creds=("alice", "s3cret-pw"))
    c = node()
    ref = f"{reg.host}/private/busybox"
    p = c.run("pull", ref)
    assert p.returncode == 1 and "unauthorized" in p.err, p.err
    p = c.run("login", "-u", "alice", "-p", "wrong", reg.host)
    assert p.returncode == 1 and "unauthorized" in p.err, p.err
    assert not (c.b.config / "auth.json").exists()
    p = c.run("login", "-u", "alice", "--password-stdin", reg.host, input=b"s3cret-pw\n")
    assert p.returncode == 0 and "Login Succeeded" in p.out, p.err
    auth = c.b.config / "auth.json"
    assert auth.stat().st_mode & 0o777 == 0o600
    assert "s3cret-pw" not in auth.read_text()  # base64, as Docker; never plain
    p = c.ok("pull", ref)
    assert "Downloaded newer image" in p.out
    assert "s3cret-pw" not in c.d.log_text()
    c.ok("logout", reg.host)
    p = c.run("pull", f"{ref}:latest")
    assert p.returncode == 1 and "unauthorized" in p.err


# ---- interrupted pull -------------------------------------------------------------------


class SlowProxy:
    """A TCP forwarder on loopback that feeds the registry's replies at a
    limited rate until released, so a pull can be killed mid-layer."""

    def __init__(self, target_port, rate=2 * 1024 * 1024, cut_after=None):
        self.target = target_port
        self.rate = rate
        self.cut_after = cut_after  # close the first connection after this many reply bytes
        self.sent = 0
        self.lock = threading.Lock()
        self.fast = threading.Event()
        self.stop_ev = threading.Event()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _pipe(self, src, dst, slow):
        try:
            while not self.stop_ev.is_set():
                data = src.recv(65536 if not slow else 16384)
                if not data:
                    break
                if slow and self.cut_after is not None:
                    with self.lock:
                        room = self.cut_after - self.sent
                        self.sent += len(data)
                    if 0 < room <= len(data):
                        dst.sendall(data[:room])
                        break  # cut mid-reply, once
                dst.sendall(data)
                if slow and not self.fast.is_set():
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b, slow in ((c, u, False), (u, c, True)):
                t = threading.Thread(target=self._pipe, args=(a, b, slow), daemon=True)
                t.start()

    def close(self):
        self.stop_ev.set()
        self.ls.close()


def test_interrupted_pull_registers_nothing_and_resumes(pki, registries, tmp_path):
    reg = registries()
    lay = OciLayout(tmp_path / "oci")
    big = tar_bytes({"random.bin": os.urandom(50 * 1024 * 1024)})
    m, cfg = lay.image(big, "amd64", compress=False)
    lay.single(m)
    reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "big:latest")
    proxy = SlowProxy(reg.port)
    root = mktemp_dir("reg-kill-")
    d = Daemon(pki.dir, root)
    c = Cli(d, pki)
    try:
        d.start()
        ref = f"127.0.0.1:{proxy.port}/big:latest"
        import subprocess
        pull = subprocess.Popen([c.b.path, "-H", d.host, "--tls-dir", str(pki.dir), "pull", ref],
                                env=c.b.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tmp = d.data_root / "image" / "tmp"

        def partial():
            for f in tmp.glob("blob-*"):
                if f.stat().st_size > 1024 * 1024:
                    return True
            return False

        wait_for(partial, 30, "a partly downloaded layer blob in the store's tmp/")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        pull.communicate(timeout=30)
        assert pull.returncode != 0
        proxy.fast.set()
        d.pidfile.unlink()  # SIGKILL left it behind; start() waits for a new one
        d.start()  # same data root: the store sweeps tmp/
        assert image_list(d, pki) == []
        assert list((d.data_root / "image" / "tmp").iterdir()) == []
        assert not any((d.data_root / "image" / "imagedb" / "sha256").iterdir())
        p = c.run("pull", ref, timeout=120)
        assert p.returncode == 0, p.err
        assert [i["Id"] for i in image_list(d, pki)] == [cfg]
    finally:
        proxy.close()
        d.shutdown()


# ---- Bearer tokens ------------------------------------------------------------------------


class TokenGate:
    """A registry front that demands Bearer tokens the way Docker Hub does:
    /v2/... without a valid token -> 401 with a WWW-Authenticate challenge
    (realm, service, scope); /token hands out a token for Basic credentials
    alice:pw (or anonymously when anonymous=True); good requests are passed
    on to the real registry.  Records the scopes asked for."""

    def __init__(self, upstream_port, anonymous=False):
        import http.server
        import urllib.request
        gate = self
        self.scopes = []
        self.token = "tok-" + os.urandom(8).hex()

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _token(self):
                import base64
                import urllib.parse
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                gate.scopes.append((q.get("service", [""])[0], q.get("scope", [""])[0]))
                good = "Basic " + base64.b64encode(b"alice:pw").decode()
                if not anonymous and self.headers.get("Authorization") != good:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": gate.token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self):
                if self.headers.get("Authorization") != f"Bearer {gate.token}":
                    repo = self.path.split("/")[2:4]
                    scope = f"repository:{'/'.join(repo)}:pull" if len(repo) == 2 else ""
                    self.send_response(401)
                    self.send_header(
                        "WWW-Authenticate",
                        f'Bearer realm="http://127.0.0.1:{gate.port}/token",'
                        f'service="berth-test",scope="{scope}"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                req = urllib.request.Request(f"http://127.0.0.1:{upstream_port}{self.path}",
                                             method=self.command,
                                             headers={"Accept": self.headers.get("Accept", "")})
                try:
                    r = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    r = e
                body = r.read()
                self.send_response(r.status if hasattr(r, "status") else r.code)
                for k in ("Content-Type", "Docker-Content-Digest"):
                    if r.headers.get(k):
                        self.send_header(k, r.headers.get(k))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                if self.path.startswith("/token"):
                    return self._token()
                return self._forward()

            do_HEAD = _forward

        import urllib.error  # noqa: F401 (used in the handler)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_bearer_token_flow(node, registries):
    reg = registries()
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "tok/busybox:latest", "--format", "v2s2")
    digest, _, _ = reg.manifest("tok/busybox", "latest", ACCEPT_ALL)
    gate = TokenGate(reg.port)
    try:
        c = node()
        ref = f"127.0.0.1:{gate.port}/tok/busybox"
        p = c.run("pull", ref)
        assert p.returncode == 1 and "unauthorized" in p.err, p.err
        c.ok("login", "-u", "alice", "-p", "pw", f"127.0.0.1:{gate.port}")
        p = c.ok("pull", ref)
        assert f"Digest: {digest}" in p.out
        assert ("berth-test", "repository:tok/busybox:pull") in gate.scopes, gate.scopes
        assert gate.token not in c.d.log_text()
    finally:
        gate.close()


# ---- the stock docker CLI ------------------------------------------------------------------

DOCKER = "/usr/local/bin/docker"


def test_docker_cli_pull_tag_push(node, plain_reg, tmp_path):
    import subprocess
    if not os.path.exists(DOCKER):
        pytest.skip(f"{DOCKER} not installed")
    c = node()
    env = regmod.clean_env(DOCKER_HOST=f"unix://{c.d.sock}", DOCKER_CONFIG=tmp_path / "docker")

    def docker(*args):
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    ref = f"{plain_reg.host}/busybox:latest"
    digest, _, _ = plain_reg.manifest("busybox", "latest", ACCEPT_ALL)
    p = docker("pull", ref)
    assert p.returncode == 0 and f"Digest: {digest}" in p.stdout, p.stderr
    p = docker("pull", f"{plain_reg.host}/busybox:nope")
    assert p.returncode == 1 and "manifest unknown" in p.stderr, p.stderr
    assert docker("tag", ref, f"{plain_reg.host}/viadocker/bb:1").returncode == 0
    p = docker("push", f"{plain_reg.host}/viadocker/bb:1")
    assert p.returncode == 0 and f"1: digest: {digest}" in p.stdout, (p.stdout, p.stderr)


def test_cut_transfer_resumes_with_range(node, registries, tmp_path):
    reg = registries()
    lay = OciLayout(tmp_path / "oci")
    big = tar_bytes({"random.bin": os.urandom(6 * 1024 * 1024)})
    m, cfg = lay.image(big, "amd64", compress=False)
    lay.single(m)
    reg.skopeo_copy(f"oci:{tmp_path / 'oci'}:latest", "cut:latest")
    proxy = SlowProxy(reg.port, cut_after=2 * 1024 * 1024)
    proxy.fast.set()
    try:
        c = node()
        p = c.run("pull", f"127.0.0.1:{proxy.port}/cut:latest", timeout=120)
        assert p.returncode == 0, p.err
        assert "transfer cut after" in c.d.log_text() and "resuming" in c.d.log_text()
        assert '" 206 ' in reg.log.read_text()  # the registry served the rest as a Range
        assert [i["Id"] for i in image_list(c.d, c.pki)] == [cfg]
    finally:
        proxy.close()


def test_docker_cli_login_and_private_pull(node, registries, tmp_path):
    import subprocess
    if not os.path.exists(DOCKER):
        pytest.skip(f"{DOCKER} not installed")
    ht = tmp_path / "htpasswd"
    regmod.make_htpasswd(ht, "bob", "pw-of-bob")
    reg = registries(htpasswd=ht)
    reg.skopeo_copy(f"docker-archive:{TEST_IMAGE}", "priv/bb:latest", "--format", "v2s2",
                    creds=("bob", "pw-of-bob"))
    c = node()
    env = regmod.clean_env(DOCKER_HOST=f"unix://{c.d.sock}", DOCKER_CONFIG=tmp_path / "docker")

    def docker(*args, stdin=None):
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True,
                              input=stdin, timeout=60)

    p = docker("login", "-u", "bob", "--password-stdin", reg.host, stdin="nope\n")
    assert p.returncode != 0 and "unauthorized" in p.stderr, p.stderr
    p = docker("login", "-u", "bob", "--password-stdin", reg.host, stdin="pw-of-bob\n")
    assert p.returncode == 0 and "Login Succeeded" in p.stdout, p.stderr
    p = docker("pull", f"{reg.host}/priv/bb:latest")
    assert p.returncode == 0 and "Downloaded newer image" in p.stdout, p.stderr
    assert "pw-of-bob" not in c.d.log_text()

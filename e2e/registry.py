"""A real OCI registry for the tests: Debian's docker-registry (distribution
2.8) on a free loopback port, its storage under a test temp dir, optionally
with TLS (a cert the test made) and htpasswd auth.  Filled with skopeo.
Started in the background, ready once GET /v2/ answers, stopped by PID.

Nothing here talks to anything but 127.0.0.1."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SKOPEO_BIN = shutil.which("skopeo") or "/usr/bin/skopeo"
READY_TIMEOUT = 20

# Keeps skopeo and urllib away from this machine's CA overrides and proxies.
_SCRUB = ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
          "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def available():
    return os.path.exists(REGISTRY_BIN) and os.path.exists(SKOPEO_BIN)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_htpasswd(path, user, password):
    """A bcrypt htpasswd line (distribution accepts only bcrypt)."""
    import crypt  # noqa: deprecated but present in Debian 12's Python 3.11
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    Path(path).write_text(f"{user}:{h}\n")


class Registry:
    def __init__(self, root, cert=None, key=None, htpasswd=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage = self.root / "storage"
        self.cert, self.key, self.htpasswd = cert, key, htpasswd
        self.proc = None
        self.port = None
        self.log = self.root / "registry.log"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self):
        return "https" if self.cert else "http"

    def _config(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: berth-e2e-not-a-secret",
        ]
        if self.cert:
            lines += ["  tls:", f"    certificate: {self.cert}", f"    key: {self.key}"]
        if self.htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: berth-e2e",
                      f"    path: {self.htpasswd}"]
        path = self.root / "config.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _probe(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(f"{self.scheme}://{self.host}/v2/", timeout=2,
                                        context=ctx if self.cert else None) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def start(self):
        self.port = _free_port()
        cfg = self._config()
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, env=clean_env(),
                                     start_new_session=True)
        logf.close()
        deadline = time.monotonic() + READY_TIMEOUT
        want = 401 if self.htpasswd else 200
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._probe() == want:
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"docker-registry did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # ---- filling and inspecting ------------------------------------------------

    def skopeo_copy(self, src, name, *extra, creds=None):
        cmd = [SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
        if creds:
            cmd += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        cmd += list(extra) + [src, f"docker://{self.host}/{name}"]
        p = subprocess.run(cmd, capture_output=True, env=clean_env(), timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {p.stderr.decode(errors='replace')}")

    def manifest(self, name, ref, accept):
        req = urllib.request.Request(f"{self.scheme}://{self.host}/v2/{name}/manifests/{ref}",
                                     headers={"Accept": accept})
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(req, timeout=10, context=ctx if self.cert else None) as r:
            return r.headers.get("Docker-Content-Digest"), r.headers.get("Content-Type"), \
                json.loads(r.read())

    def blob_file(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

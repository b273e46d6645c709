"""Fleet access across a real fleet (issue 6): 20 berthd daemons, each in its
own network namespace with its own address on a test bridge (e2e/fleet.py),
one CA, a registry in the host namespace.  Enrollment with tokens, fan-out
(ps, exec, run -d, pull) and one host dying mid-run, roles (a viewer cannot
exec, not even with a handcrafted WebSocket upgrade), revocation closing an
open exec stream, replayed/expired tokens, expired client certs, protected
contexts and BERTH_CONTEXT_BUNDLE with a read-only empty HOME.  Also: every
host audits a fan-out exec with the caller's identity and bridge address, a
SIGSTOPped host times out alone under a label selection, context ls --check
probes all hosts at once, fan-out logs/stop/rm, and the fan-out ps timing that
bench/fleet reports (1, 10, 20 hosts).

Needs root, iproute2, nsenter, docker-registry, skopeo and the busybox test
image.  Everything (daemons, containers, namespaces, bridge, registry) is
removed at the end of the module, also when a test fails."""

import base64
import http.client
import json
import os
import re
import resource
import signal
import ssl
import statistics
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Berth, client_ssl_context, mktemp_dir, scrubbed_env, wait_for
from fleet import FLEET_SIZE, Fleet, tools_missing, unix_call
from test_containers import TEST_IMAGE, missing
from wsclient import STDOUT, Closed, HandshakeError, Session, tls_ws

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fleet needs root")

TOKEN_RE = re.compile(r"berth1-[A-Za-z0-9_-]+")
CTR = "fanbox"  # the long-running container every host gets


@pytest.fixture(scope="module")
def fleet(no_stray_daemons):
    why = tools_missing()
    if why:
        missing(why)
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    f = Fleet()
    try:
        f.setup(TEST_IMAGE)
        yield f
    finally:
        f.teardown()


# ---- helpers -----------------------------------------------------------------


def netns_inode(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def make_token(fleet, h, name, role="operator", expires="15m"):
    p = fleet.cli.ok("-c", h.name, "trust", "add", name, "--role", role, "--expires", expires)
    m = TOKEN_RE.search(p.out)
    assert m, f"trust add {name} printed no token: {p.out!r} {p.err!r}"
    return m.group(0)


def issue_cert(fleet, name, days=30):
    out = mktemp_dir(f"cert-{name}-") / "tls"
    fleet.cli.ok("certs", "issue", name, "--ca-dir", fleet.ca, "--out", out, "--days", days)
    return out


def trust_cert(fleet, h, name, tls, role):
    fleet.cli.ok("-c", h.name, "trust", "add", name, "--cert", tls / "cert.pem", "--role", role)


def ctx_for(tls):
    return client_ssl_context(tls / "ca.pem", tls / "cert.pem", tls / "key.pem")


def tls_api(h, ctx, method, path, body=None):
    c = http.client.HTTPSConnection(h.ip, h.port, context=ctx, timeout=15)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, None if body is None else json.dumps(body), hdrs)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def inspect(h, name):
    st, body = unix_call(h.sock, "GET", f"/containers/{name}/json")
    return json.loads(body) if st == 200 else None


def ensure_running(fleet, h):
    """The long-running container CTR on h (pulled from the fleet registry),
    made through the admin context unless an earlier test made it."""
    c = inspect(h, CTR)
    if c is None:
        fleet.cli.ok("-c", h.name, "pull", fleet.image, timeout=60)
        fleet.cli.ok("-c", h.name, "run", "-d", "--name", CTR, fleet.image, "sleep", "3600")
    elif not c["State"]["Running"]:
        fleet.cli.ok("-c", h.name, "start", CTR)
    c = inspect(h, CTR)
    assert c["State"]["Running"], c["State"]
    return c


def exec_create(h, ctx, cmd):
    st, body = tls_api(h, ctx, "POST", f"/containers/{CTR}/exec",
                       {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    assert st == 201, (st, body[:300])
    return json.loads(body)["Id"]


def pids_in_pidns_of(pid, argv):
    """Processes running argv (exactly) in the pid namespace of pid."""
    want = os.stat(f"/proc/{pid}/ns/pid").st_ino
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")[:-1]
            if cmd == argv and os.stat(f"/proc/{d}/ns/pid").st_ino == want:
                out.append(int(d))
        except OSError:
            continue
    return out


def monitors_under(root, kind):
    """pids of berth-monitor processes of that kind ("--exec") under root."""
    out = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if cmd[0].endswith(b"berth-monitor") and kind.encode() in cmd and \
                any(str(root).encode() in a for a in cmd):
            out.append(int(d))
    return out


def lines_by_context(text):
    """{context: [rest of line]} for output lines prefixed with a context name."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(fleet-\d\d)\s*\| ?(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def fan_json(text):
    """Fan-out --format json: one object per context (an array, or one per line)."""
    try:
        js = json.loads(text)
        return js if isinstance(js, list) else [js]
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---- the fleet itself ----------------------------------------------------------


def test_fleet_hosts_each_in_own_namespace_and_reachable(fleet):
    print(f"fleet of {FLEET_SIZE} up in {fleet.setup_seconds:.2f}s")
    inodes = {netns_inode(h.proc.pid) for h in fleet.hosts}
    assert len(inodes) == FLEET_SIZE and netns_inode(os.getpid()) not in inodes
    for h in fleet.hosts:
        v = fleet.cli.json("-c", h.name, "version", "--format", "json")
        assert v["Server"]["Version"], v


# ---- enrollment --------------------------------------------------------------


@pytest.fixture(scope="module")
def ops(fleet):
    """A CLI holding contexts fleet-01..fleet-20 for an operator identity of
    its own on each host, enrolled with a token per host (context create
    --token: the key is made here and never leaves)."""
    cli = Berth(mktemp_dir("fleet-ops-"))
    with ThreadPoolExecutor(4) as pool:
        toks = pool.map(lambda h: make_token(fleet, h, f"op-{h.index:02d}"), fleet.hosts)
        cli.tokens = dict(zip((h.name for h in fleet.hosts), toks))
    for h in fleet.hosts:
        cli.ok("context", "create", h.name, "--token", cli.tokens[h.name])
    return cli


def ctx_tls_dir(cli, name):
    """The directory of a stored context's ca.pem, cert.pem and key.pem."""
    key = next((cli.config / "contexts" / name).rglob("key.pem"))
    assert {"ca.pem", "cert.pem"} <= {f.name for f in key.parent.iterdir()}, key.parent
    return key.parent


def trust_entries(h):
    st, body = unix_call(h.sock, "GET", "/_berth/trust")
    assert st == 200, (st, body[:300])
    return json.loads(body)


def test_enroll_each_host_with_a_token(fleet, ops):
    for h in fleet.hosts:
        tls = ctx_tls_dir(ops, h.name)
        info = fleet.cli.json("certs", "inspect", tls / "cert.pem", "--format", "json")
        mine = [e for e in trust_entries(h) if e["Name"] == f"op-{h.index:02d}"]
        assert len(mine) == 1, (h.name, trust_entries(h))
        assert mine[0]["Role"] == "operator", mine
        assert mine[0]["Fingerprint"] == info["FingerprintSHA256"], (mine, info)
        assert info["CommonName"] == f"op-{h.index:02d}", info  # CN from the token
        assert (tls / "key.pem").stat().st_mode & 0o777 == 0o600
        ops.ok("-c", h.name, "ps")
    # each daemon's trust store knows only its own identities: op-01's cert
    # (signed by the same fleet CA) is refused by fleet-02
    tls = ctx_tls_dir(ops, fleet.hosts[0].name)
    p = ops.run("-H", fleet.hosts[1].host, "--tls-dir", tls, "ps")
    assert p.returncode == 125, (p.returncode, p.out, p.err)


def test_token_replayed_wrong_or_expired_is_refused(fleet, ops):
    cli = Berth(mktemp_dir("fleet-replay-"))
    used = ops.tokens[fleet.hosts[0].name]
    p = cli.run("context", "create", "again", "--token", used)
    assert p.returncode != 0 and "token" in p.err.lower(), (p.returncode, p.err)
    h = fleet.hosts[1]
    fresh = make_token(fleet, h, "late", "viewer", expires="1s")
    deadline = time.time() + 1.5
    while time.time() < deadline:  # the token's lifetime has to pass: wall-clock, not a race
        time.sleep(max(0.0, deadline - time.time()))
    p = cli.run("context", "create", "late", "--token", fresh)
    assert p.returncode != 0 and "token" in p.err.lower(), (p.returncode, p.err)
    wrong = make_token(fleet, h, "wrong", "viewer")
    body = json.loads(base64.urlsafe_b64decode(wrong[len("berth1-"):] + "=="))
    body["s"] = "0" * 64
    forged = "berth1-" + base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    p = cli.run("context", "create", "wrong", "--token", forged)
    assert p.returncode != 0 and "token" in p.err.lower(), (p.returncode, p.err)
    # a token whose address is changed to another host of the fleet (same
    # CA, another server key) is refused by the pin before the secret is sent
    pinned = make_token(fleet, h, "pinned", "viewer")
    body = json.loads(base64.urlsafe_b64decode(pinned[len("berth1-"):] + "=="))
    body["a"] = [f"{fleet.hosts[2].ip}:{fleet.hosts[2].port}"]
    moved = "berth1-" + base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    p = cli.run("context", "create", "moved", "--token", moved)
    assert p.returncode == 125 and "does not match the token's pin" in p.err, p.err
    names = [e["Name"] for e in trust_entries(h)]
    assert {"late", "wrong", "pinned"}.isdisjoint(names), names
    assert "pinned" not in [e["Name"] for e in trust_entries(fleet.hosts[2])]
    cli.ok("context", "create", "pinned", "--token", pinned)  # not spent by the detour
    assert cli.json("-c", "pinned", "version", "--format", "json")["Server"]
    assert "again" not in cli.run("context", "ls").out


# ---- fan-out -------------------------------------------------------------------


def test_fanout_pull_run_exec_ps_across_the_fleet(fleet, ops):
    names = {h.name for h in fleet.hosts}
    p = ops.ok("-c", "fleet-*", "pull", fleet.image, timeout=120)
    assert set(lines_by_context(p.out)) == names, p.out
    p = ops.ok("-c", "fleet-*", "run", "-d", "--name", CTR, fleet.image, "sleep", "3600",
               timeout=60)
    got = lines_by_context(p.out)
    assert set(got) == names, p.out
    for h in fleet.hosts:
        c = inspect(h, CTR)
        assert c and c["State"]["Running"] and c["Id"].startswith(got[h.name][0].strip()), c
    p = ops.ok("-c", "fleet-*", "exec", CTR, "uptime", timeout=60)
    got = lines_by_context(p.out)
    assert set(got) == names, p.out
    assert all("load average" in " ".join(v) for v in got.values()), p.out
    res = fan_json(ops.ok("-c", "fleet-*", "--format", "json", "ps").out)
    assert sorted(r["Context"] for r in res) == sorted(names), res
    for r in res:
        assert r["ExitCode"] == 0 and not r.get("Error"), r
        assert any(CTR in c["Names"].split(",") for c in r["Result"]), r
    p = ops.ok("-c", "fleet-*", "ps")
    assert "CONTEXT" in p.out.splitlines()[0], p.out
    assert sum(1 for line in p.out.splitlines()[1:] if CTR in line) == FLEET_SIZE, p.out


def audit_events(h, action, until):
    """Past audit events of one action on h (GET /events with a past until:
    the reply ends at once)."""
    flt = urllib.parse.quote(json.dumps({"type": ["audit"]}))
    st, body = unix_call(h.sock, "GET", f"/events?since=0&until={until}&filters={flt}")
    assert st == 200, (st, body[:300])
    evs = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    return [e for e in evs if e["Type"] == "audit" and e["Action"] == action]


def test_fanout_exec_is_audited_on_every_host_with_identity_and_address(fleet, ops):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: ensure_running(fleet, h), fleet.hosts))
    p = ops.run("-c", "fleet-*", "--format", "json", "exec", CTR, "sh", "-c", "exit 3",
                timeout=60)
    res = fan_json(p.out)
    assert p.returncode == 1 and len(res) == FLEET_SIZE, (p.returncode, p.out, p.err)
    assert all(r["ExitCode"] == 3 for r in res), res  # per-host codes in the JSON
    until = int(time.time()) + 1
    while time.time() <= until:  # `until` must be past, or /events streams until then
        time.sleep(max(0.0, until + 0.01 - time.time()))
    for h in fleet.hosts:
        mine = [e for e in audit_events(h, "exec", until)
                if e["Actor"]["Attributes"].get("argv") == '["sh","-c","exit 3"]']
        assert len(mine) == 1, (h.name, mine)
        a = mine[0]["Actor"]["Attributes"]
        assert a["identity"] == f"op-{h.index:02d}", a
        assert a["addr"].startswith(fleet.gw + ":"), (a, fleet.gw)  # via the bridge
        assert a["exitCode"] == "3" and a["tty"] == "false", a


def test_fanout_host_killed_mid_run_only_that_host_fails(fleet, ops):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: ensure_running(fleet, h), fleet.hosts))
    victim = fleet.hosts[6]
    # The victim's exec runs 60 s, the others 3 s: the crash lands mid-run
    # however slowly this machine lets the test find the victim's exec.
    fleet.cli.ok("-c", victim.name, "exec", CTR, "touch", "/tmp/slow")
    marker = [b"sleep", b"60"]
    cmd = [ops.path, "-c", "fleet-*", "--parallel", "20", "exec", CTR, "sh", "-c",
           "if [ -e /tmp/slow ]; then sleep 60; fi; sleep 3; echo done"]
    t0 = time.monotonic()
    init = inspect(victim, CTR)["State"]["Pid"]
    proc = subprocess.Popen(cmd, env=ops.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pids_in_pidns_of(init, marker), 20, f"the exec on {victim.name}")
        assert victim.proc.poll() is None
        victim.crash()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if victim.proc.poll() is not None:
            victim.restart()
        # The victim's exec outlives its daemon (the monitor owns it), and its
        # monitor, having lost its client, would hold unread output for up to
        # 30 s after it ends (RT_MONITOR_STUCK_MS, docs/monitor.md), even past
        # rm -f of the container.  End both now, so the session's stray check
        # still covers everything else.
        for pid in pids_in_pidns_of(init, marker):
            os.kill(pid, signal.SIGKILL)
        for pid in monitors_under(victim.exec_root, "--exec"):
            os.kill(pid, signal.SIGKILL)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    assert proc.returncode != 0, (out, err)
    got = lines_by_context(out)
    done = {n for n, lines in got.items() if "done" in lines}
    assert done == {h.name for h in fleet.hosts} - {victim.name}, (out, err)
    assert victim.name in err, err
    others = [h.name for h in fleet.hosts if h is not victim]
    assert not any(n in err for n in others), err
    assert took < 20, f"19 x 'sleep 3' took {took:.1f}s: the hosts were not run concurrently"


def test_fanout_stalled_host_times_out_alone_and_labels_select(fleet, ops):
    odd = [h for h in fleet.hosts if h.index % 2 == 1]
    for h in odd:
        ops.ok("context", "update", h.name, "--label", "half=odd")
    stalled = odd[2]
    stalled.proc.send_signal(signal.SIGSTOP)  # accepts TCP (kernel backlog), never answers
    try:
        t0 = time.monotonic()
        p = ops.run("-c", "@half=odd", "--timeout", "3", "--format", "json", "ps")
        took = time.monotonic() - t0
    finally:
        stalled.proc.send_signal(signal.SIGCONT)
    res = {r["Context"]: r for r in fan_json(p.out)}
    assert p.returncode == 1, (p.returncode, p.out, p.err)
    assert set(res) == {h.name for h in odd}, sorted(res)
    assert res[stalled.name]["ExitCode"] == 124 and res[stalled.name]["Error"], res[stalled.name]
    for h in odd:
        if h is not stalled:
            r = res[h.name]
            assert r["ExitCode"] == 0 and not r.get("Error") and r["Host"] == h.host, r
    assert took < 12, f"a 3 s --timeout took {took:.1f}s"
    ops.ok("-c", stalled.name, "ps")  # back once it runs again


def test_context_ls_check_probes_the_fleet_at_once(fleet, ops):
    stalled = fleet.hosts[10:15]
    for h in stalled:
        h.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        p = ops.run("context", "ls", "--check", "--timeout", "3", "--format", "json")
        took = time.monotonic() - t0
    finally:
        for h in stalled:
            h.proc.send_signal(signal.SIGCONT)
    probes = {e["Name"]: e for e in json.loads(p.out) if e["Name"].startswith("fleet-")}
    assert len(probes) == FLEET_SIZE, (p.returncode, p.out, p.err)
    for h in fleet.hosts:
        e = probes[h.name]
        assert e["Host"] == h.host, e
        if h in stalled:
            assert not e["Reachable"] and e["Error"], e
        else:
            assert e["Reachable"] and e["Version"] and e["RttMs"] >= 0, e
            assert e["CertExpires"], e
    # five hosts that never answer, 3 s each: one after the other would be >= 15 s
    assert took < 10, f"context ls --check took {took:.1f}s"
    print(f"context ls --check: 20 contexts, 5 stalled, {took * 1000:.0f} ms, exit {p.returncode}")


# ---- roles and revocation ------------------------------------------------------


def test_viewer_cannot_exec_not_even_with_a_handcrafted_upgrade(fleet):
    h = fleet.hosts[2]
    ensure_running(fleet, h)
    tls = issue_cert(fleet, "watcher")
    trust_cert(fleet, h, "watcher", tls, "viewer")
    v = Berth(mktemp_dir("fleet-viewer-"))
    v.ok("context", "create", "v", "--host", h.host, "--tls-dir", tls)
    assert CTR in v.ok("-c", "v", "ps").out  # reading is allowed
    p = v.run("-c", "v", "exec", CTR, "touch", "/tmp/pwned")
    assert p.returncode != 0, p.out
    assert "needs role operator" in p.err and "watcher is viewer" in p.err, p.err
    # an exec the admin made; the viewer tries to start it by upgrading itself
    admin = ctx_for(fleet.ca)
    eid = exec_create(h, admin, ["touch", "/tmp/pwned"])
    for path in (f"/exec/{eid}/ws", f"/v1.43/exec/{eid}/ws"):
        with pytest.raises(HandshakeError) as e:
            tls_ws(h.addr, ctx_for(tls), path).close()
        assert e.value.status == 403, e.value
        assert b"needs role operator" in e.value.body, e.value.body
    st, body = unix_call(h.sock, "GET", f"/exec/{eid}/json")
    js = json.loads(body)
    assert st == 200 and not js["Running"] and js["ExitCode"] is None, body  # never started
    p = fleet.cli.run("-c", h.name, "exec", CTR, "test", "-e", "/tmp/pwned")
    assert p.returncode == 1, (p.returncode, p.err)


def test_revoke_closes_open_exec_stream_and_refuses_within_1s(fleet):
    h = fleet.hosts[3]
    ensure_running(fleet, h)
    other = fleet.hosts[5]
    tls = issue_cert(fleet, "leaver")
    trust_cert(fleet, h, "leaver", tls, "operator")
    trust_cert(fleet, other, "leaver", tls, "viewer")
    ctx = ctx_for(tls)
    eid = exec_create(h, ctx, ["sh", "-c", "echo ready; exec sleep 60"])
    s = Session(tls_ws(h.addr, ctx, f"/exec/{eid}/ws"))
    try:
        s.pump(until=lambda s: b"ready" in s.out[STDOUT])
        fleet.cli.ok("-c", h.name, "trust", "revoke", "leaver")
        t0 = time.monotonic()
        s.ws.sock.settimeout(1.0)
        with pytest.raises((Closed, ConnectionError, ssl.SSLError, OSError)) as e:
            s.pump()  # an exit frame would mean the stream outlived the revoke
        closed = time.monotonic() - t0
        assert not isinstance(e.value, TimeoutError), "stream still open 1s after revoke"
        refused = None
        try:
            st, body = tls_api(h, ctx, "GET", "/_ping")
            refused = st == 403 or st == 401
        except (ssl.SSLError, ConnectionError, OSError):
            refused = True
        elapsed = time.monotonic() - t0
    finally:
        s.ws.sock.close()
    assert refused, "a new connection of the revoked identity was served"
    assert elapsed < 1.0, f"closed after {closed:.3f}s, refused after {elapsed:.3f}s"
    print(f"revoke: stream closed {closed * 1000:.0f} ms, new connection refused "
          f"{elapsed * 1000:.0f} ms after the CLI returned")
    names = {e["Name"]: e for e in trust_entries(h)}
    assert names["leaver"]["Revoked"] is True, names["leaver"]
    # each host keeps its own trust store: the same cert still works elsewhere
    assert tls_api(other, ctx, "GET", "/_ping")[0] == 200


def test_expired_client_cert_fails_saying_so(fleet):
    h = fleet.hosts[4]
    tls = issue_cert(fleet, "old", days=-1)
    # trusted by name (if the store takes it): only the expiry may refuse it
    fleet.cli.run("-c", h.name, "trust", "add", "old", "--cert", tls / "cert.pem")
    p = Berth(mktemp_dir("fleet-old-")).run("-H", h.host, "--tls-dir", tls, "ps")
    assert p.returncode == 125, (p.returncode, p.out, p.err)
    assert "expired" in p.err, p.err
    assert "expired" in h.log_text()


# ---- safe context selection, CI without files ------------------------------------


def test_protected_context_refuses_rm_unless_named_with_c(fleet):
    h = fleet.hosts[7]
    ensure_running(fleet, h)
    fleet.cli.ok("-c", h.name, "run", "-d", "--name", "keep", fleet.image, "sleep", "3600")
    p = Berth(mktemp_dir("fleet-prod-"))
    p.ok("context", "create", "prod", "--host", h.host, "--tls-dir", fleet.ca, "--protected")
    p.ok("context", "use", "prod")
    for env in (None, {"BERTH_CONTEXT": "prod"}):
        r = p.run("rm", "-f", "keep", env=env)
        assert r.returncode == 1, (r.returncode, r.out, r.err)
        assert '"prod"' in r.err and h.host in r.err and "-c prod" in r.err, r.err
        assert inspect(h, "keep") is not None
    r = p.run("-c", "pro*", "rm", "-f", "keep")  # a glob is not naming it
    assert r.returncode == 1 and '"prod"' in r.err, (r.returncode, r.err)
    assert inspect(h, "keep") is not None
    p.ok("-c", "prod", "rm", "-f", "keep")
    assert inspect(h, "keep") is None


@pytest.fixture
def readonly_empty_home():
    d = mktemp_dir("ro-home-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0555", "tmpfs", d],
                   check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=True)


def test_context_bundle_with_a_readonly_empty_home(fleet, ops, readonly_empty_home):
    h = fleet.hosts[8]
    ensure_running(fleet, h)
    exported = mktemp_dir("fleet-bundle-") / "ctx"
    ops.ok("context", "export", h.name, exported)
    bundle = base64.b64encode(exported.read_bytes()).decode()
    exported.unlink()  # the bundle is all there is: no file holds the key now
    env = scrubbed_env(HOME=readonly_empty_home, BERTH_CONTEXT_BUNDLE=bundle)
    for args, want in ((["ps"], CTR), (["exec", CTR, "uptime"], "load average"),
                       (["-c", h.name, "version"], "Server")):
        r = subprocess.run([ops.path] + args, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode(errors="replace"))
        assert want in out, (args, out)
    assert os.listdir(readonly_empty_home) == []


# ---- the fan-out benchmark (bench/fleet runs this with more runs) ----------------

BENCH_RUNS = int(os.environ.get("BERTH_FLEET_BENCH_RUNS", "5"))


def median_seconds(cli, args, runs):
    """(median wall seconds, mean CPU seconds of the CLI and its children)."""
    times = []
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        t0 = time.monotonic()
        cli.ok(*args)
        times.append(time.monotonic() - t0)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return statistics.median(times), cpu / runs


def test_fanout_ps_time_over_1_10_20_hosts(fleet, ops):
    sels = (("1 host (-c fleet-01)", "fleet-01", 1),
            ("10 hosts (-c 'fleet-0*,fleet-10')", "fleet-0*,fleet-10", 10),
            ("20 hosts (-c 'fleet-*')", "fleet-*", 20))
    rows = []
    for label, sel, n in sels:
        if n > 1:
            got = fan_json(ops.ok("-c", sel, "--format", "json", "ps").out)
            assert len(got) == n and all(r["ExitCode"] == 0 for r in got), (sel, got)
        ops.ok("-c", sel, "ps")  # warm-up
        rows.append((label, median_seconds(ops, ["-c", sel, "ps"], BENCH_RUNS)))
    one = rows[0][1][0]
    print(f"\n| `berth ps` over (median of {BENCH_RUNS}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}) | ms | × one host | CPU ms (client) |\n"
          f"|---|---|---|---|")
    for label, (t, cpu) in rows:
        print(f"| {label} | {t * 1000:.1f} | {t / one:.2f} | {cpu * 1000:.0f} |")
    # Goal (issue 6): 20 hosts <= 2x one host.  Reported (bench/fleet), not
    # asserted: on a shared 2-core machine the ratio measures the CPU the
    # other jobs leave.  That the hosts are asked concurrently is asserted by
    # the mid-run kill test (wall time of a 3 s exec on every host).


def test_fanout_logs_stop_rm_across_the_fleet(fleet, ops):
    names = {h.name for h in fleet.hosts}
    ops.ok("-c", "fleet-*", "pull", fleet.image, timeout=120)  # a no-op after the pull test
    ops.ok("-c", "fleet-*", "run", "-d", "--name", "talk", fleet.image, "sh", "-c",
           "echo one; echo two; exec sleep 3600", timeout=60)

    def tails():
        got = lines_by_context(ops.ok("-c", "fleet-*", "logs", "--tail", "1", "talk").out)
        return got if all(got.get(n) == ["two"] for n in names) else None

    got = wait_for(tails, 20, "'two' as the last log line of every host", interval=0.2)
    assert set(got) == names
    p = ops.run("-c", "fleet-0*", "exec", "-it", "talk", "sh")
    assert p.returncode == 1 and "cannot run on 9 contexts at once" in p.err, p.err
    ops.ok("-c", "fleet-*", "stop", "-t", "1", "talk", timeout=60)
    assert all(not inspect(h, "talk")["State"]["Running"] for h in fleet.hosts)
    p = ops.ok("-c", "fleet-*", "rm", "-f", "talk", timeout=60)
    assert set(lines_by_context(p.out)) == names, p.out
    assert all(inspect(h, "talk") is None for h in fleet.hosts)

"""Fan-out: -c with a list, globs and @label selectors runs one command on
several loopback daemons at once (children of the CLI), with prefixed lines,
a merged ps table, one JSON object per host, per-host failures and timeouts
that never stop the others, and interactive commands refused up front."""

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BIN_DIR, Berth, Daemon, free_port, mktemp_dir

TEST_IMAGE = Path(os.environ.get("BERTH_TEST_IMAGE") or BIN_DIR.parent / "images" / "busybox.tar")
NAMES = ["fo-a", "fo-b", "fo-c"]
LABELS = {"fo-a": ["env=prod", "role=db"], "fo-b": ["env=prod"], "fo-c": ["env=dev"]}


class Fleet:
    def __init__(self, cli, daemons):
        self.cli = cli
        self.daemons = daemons


@pytest.fixture(scope="module")
def fleet(pki, no_stray_daemons):
    """Three daemons (one CA), a context for each with labels, the test
    image loaded where containers can run."""
    daemons = []
    cli = Berth(mktemp_dir("fanout-cli-"))
    try:
        for name in NAMES:
            d = Daemon(pki.dir, mktemp_dir(f"{name}-"))
            daemons.append(d)
            d.start()
            labels = [a for lab in LABELS[name] for a in ("--label", lab)]
            cli.ok("context", "create", name, "--host", d.host, "--tls-dir", pki.dir, *labels)
        yield Fleet(cli, daemons)
    finally:
        errors = []
        for d in daemons:
            try:
                d.shutdown()
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def loaded(fleet):
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    if not TEST_IMAGE.is_file():
        pytest.skip(f"test image {TEST_IMAGE} not built")
    for name in NAMES:
        fleet.cli.ok("-c", name, "load", "-i", TEST_IMAGE, timeout=120)
    return fleet


@pytest.fixture
def ctr(loaded):
    """A container name on every host, force-removed at the end."""
    name = f"fo-{uuid.uuid4().hex[:8]}"
    yield name
    for n in NAMES:
        loaded.cli.run("-c", n, "rm", "-f", name)


def by_context(text):
    """{context: [rest]} of "NAME | rest" lines."""
    out = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(" | ")
        assert sep, f"line without a context prefix: {line!r}"
        out.setdefault(name, []).append(rest)
    return out


def per_host(text):
    objs = [json.loads(line) for line in text.splitlines()]
    return {o["Context"]: o for o in objs}


# ---- selection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sel,want",
    [
        ("fo-a,fo-c", {"fo-a", "fo-c"}),
        ("fo-*", set(NAMES)),
        ("fo-[ab]", {"fo-a", "fo-b"}),
        ("fo-?,fo-a", set(NAMES)),
        ("@env=prod", {"fo-a", "fo-b"}),
        ("@env=p*", {"fo-a", "fo-b"}),
        ("@env=dev,fo-a", {"fo-a", "fo-c"}),
        ("@env", set(NAMES)),
    ],
)
def test_selection_list_glob_label(fleet, sel, want):
    p = fleet.cli.run("-c", sel, "--format", "json", "version")
    assert p.returncode == 0, p.err
    got = per_host(p.out)
    assert set(got) == want, p.out
    for name, o in got.items():
        d = fleet.daemons[NAMES.index(name)]
        assert o["Host"] == d.host and o["ExitCode"] == 0 and o["Error"] is None, o
        assert o["Result"]["Client"]["Context"] == name, o
        assert o["Result"]["Server"]["Version"], o


def test_star_never_picks_default(fleet):
    p = fleet.cli.ok("-c", "*", "version")
    assert set(by_context(p.out)) == set(NAMES), p.out


@pytest.mark.parametrize(
    "sel,named",
    [("nope-*", "nope-*"), ("fo-a,zz", "zz"), ("@env=qa", "@env=qa"), ("fo-a,@x", "@x")],
)
def test_selection_matching_nothing_is_an_error_naming_it(fleet, sel, named):
    p = fleet.cli.run("-c", sel, "ps")
    assert p.returncode == 1, p
    assert f'"{named}"' in p.err and p.out == "", p.err
    assert len(p.err.splitlines()) == 1, p.err


def test_bad_selector_and_flags(fleet):
    p = fleet.cli.run("-c", "@", "ps")
    assert p.returncode == 1 and "label selector" in p.err, p.err
    p = fleet.cli.run("-c", "fo-a,,fo-b", "ps")
    assert p.returncode == 1 and "empty name" in p.err, p.err
    p = fleet.cli.run("--timeout", "3", "ps")
    assert p.returncode == 1 and "go with -c" in p.err, p.err
    p = fleet.cli.run("-c", "fo-*", "--parallel", "0", "ps")
    assert p.returncode == 1 and "--parallel" in p.err, p.err
    p = fleet.cli.run("-c", "fo-*", "--format", "yaml", "ps")
    assert p.returncode == 1 and "only json" in p.err, p.err


def test_one_match_is_the_single_host_path(fleet):
    one = fleet.cli.ok("-c", "@role=db", "version").out
    plain = fleet.cli.ok("-c", "fo-a", "version").out
    assert " | " not in one and "Context:      fo-a" in one, one
    strip = lambda s: [line for line in s.splitlines() if "Git commit" not in line]
    assert strip(one) == strip(plain)
    # Asked for explicitly, the per-host JSON keeps its shape for one host.
    got = per_host(fleet.cli.ok("-c", "fo-a", "--format", "json", "version").out)
    assert list(got) == ["fo-a"], got


# ---- labels ------------------------------------------------------------------------


def test_labels_create_update_remove(fleet):
    cli = fleet.cli
    d = fleet.daemons[0]
    cli.ok("context", "create", "lbl", "--host", d.host, "--tls-dir", d.tls_dir,
           "--label", "tier=web", "--label", "zone=eu-1")
    try:
        js = cli.json("context", "inspect", "lbl")[0]
        assert js["Labels"] == {"tier": "web", "zone": "eu-1"}, js
        cli.ok("context", "update", "lbl", "--label", "tier=", "--label", "zone=us-2")
        js = cli.json("context", "inspect", "lbl")[0]
        assert js["Labels"] == {"zone": "us-2"}, js
        assert set(per_host(cli.ok("-c", "@zone=us-*,fo-b", "--format", "json",
                                   "version").out)) == {"lbl", "fo-b"}
        for bad in ("tier", "=x", "a=b,c", "a=*", "-a=b"):
            p = cli.run("context", "update", "lbl", "--label", bad)
            assert p.returncode == 1 and "label" in p.err, (bad, p.err)
        p = cli.run("context", "create", "lbl2", "--host", d.host, "--tls-dir", d.tls_dir,
                    "--label", "k=")
        assert p.returncode == 1 and "label" in p.err, p.err
        assert "lbl2" not in cli.ok("context", "ls", "-q").out
        ls = {c["Name"]: c for c in cli.json("context", "ls", "--format", "json")}
        assert ls["lbl"]["Labels"] == {"zone": "us-2"}, ls
        table = cli.ok("context", "ls").out.splitlines()
        assert table[0].split()[-1] == "LABELS", table
        assert [r.split()[-1] for r in table if r.startswith("fo-a ")] == ["env=prod,role=db"]
        assert [r.split()[-1] for r in table if r.startswith("lbl ")] == ["zone=us-2"]
        f = cli.root / "lbl.berthcontext"
        cli.ok("context", "export", "lbl", f)
        other = Berth(cli.root / "other")
        other.ok("context", "import", "lbl-copy", f)
        assert other.json("context", "inspect", "lbl-copy")[0]["Labels"] == {"zone": "us-2"}
    finally:
        cli.run("context", "rm", "lbl")


def test_hostile_labels_in_meta_json_are_refused(fleet, tmp_path):
    cli = Berth(tmp_path / "hostile")
    d = fleet.daemons[0]
    cli.ok("context", "create", "h", "--host", d.host, "--tls-dir", d.tls_dir)
    meta = cli.config / "contexts" / "h" / "meta.json"
    doc = json.loads(meta.read_text())
    doc["Labels"] = {"env": "prod\x1b[2J"}
    meta.write_text(json.dumps(doc))
    p = cli.run("-c", "@env=prod", "ps")
    assert p.returncode == 1 and "meta.json" in p.err and "label" in p.err, p.err


# ---- output -----------------------------------------------------------------------------


def test_run_d_ps_table_json_and_logs(loaded, ctr):
    cli = loaded.cli
    p = cli.ok("-c", "fo-*", "run", "-d", "--name", ctr, "busybox", "sh", "-c",
               "echo hello-$((6*7)); sleep 300", timeout=60)
    ids = by_context(p.out)
    assert set(ids) == set(NAMES), p.out
    assert all(len(v) == 1 and len(v[0]) == 64 for v in ids.values()), p.out

    p = cli.ok("-c", "fo-*", "ps")
    lines = p.out.splitlines()
    assert lines[0].split()[:3] == ["CONTEXT", "CONTAINER", "ID"], p.out
    rows = [line.split() for line in lines[1:] if ctr in line]
    assert sorted(r[0] for r in rows) == NAMES, p.out
    for r in rows:
        assert r[1] == ids[r[0]][0][:12], (r, ids)

    got = per_host(cli.ok("-c", "fo-*", "ps", "--format", "json").out)
    assert set(got) == set(NAMES)
    for name, o in got.items():
        assert o["ExitCode"] == 0 and o["Error"] is None, o
        assert [c["ID"] for c in o["Result"] if c["Names"] == ctr] == [ids[name][0][:12]], o

    q = by_context(cli.ok("-c", "fo-*", "ps", "-q").out)
    assert all(ids[n][0][:12] in v for n, v in q.items()) and set(q) == set(NAMES), q

    img = cli.ok("-c", "fo-a,fo-b", "images").out.splitlines()
    assert img[0].split()[:2] == ["CONTEXT", "REPOSITORY"], img
    assert sorted(r.split()[0] for r in img[1:] if "busybox" in r) == ["fo-a", "fo-b"], img

    def logged():
        p = cli.run("-c", "fo-*", "logs", "--tail", "1", ctr)
        return p.returncode == 0 and by_context(p.out) == {n: ["hello-42"] for n in NAMES}

    deadline = time.monotonic() + 10
    while not logged():
        assert time.monotonic() < deadline, cli.run("-c", "fo-*", "logs", ctr)
        time.sleep(0.05)

    p = cli.ok("-c", "fo-*", "stop", "-t", "1", ctr, timeout=60)
    assert by_context(p.out) == {n: [ctr] for n in NAMES}, p.out
    p = cli.ok("-c", "fo-*", "rm", ctr)
    assert by_context(p.out) == {n: [ctr] for n in NAMES}, p.out


def test_exec_lines_stderr_and_exit_codes(loaded, ctr):
    cli = loaded.cli
    cli.ok("-c", "fo-*", "run", "-d", "--name", ctr, "busybox", "sleep", "300", timeout=60)
    p = cli.run("-c", "fo-*", "exec", ctr, "sh", "-c",
                "echo out-1; echo err-1 >&2; echo out-2; exit 3", timeout=60)
    assert p.returncode == 1, p
    assert by_context(p.out) == {n: ["out-1", "out-2"] for n in NAMES}, p.out
    err = [line for line in p.err.splitlines() if not line.startswith("berth: ")]
    assert by_context("\n".join(err)) == {n: ["err-1"] for n in NAMES}, p.err
    assert p.err.splitlines()[-1].startswith("berth: 3 of 3 contexts failed:"), p.err

    got = per_host(cli.run("-c", "fo-*", "--format", "json", "exec", ctr, "sh", "-c",
                           'echo "x-$HOSTNAME"; [ "$0" = sh ] && exit 0').out)
    assert set(got) == set(NAMES)
    for o in got.values():
        assert o["ExitCode"] == 0 and o["Error"] is None and len(o["Result"]) == 1, o
        assert o["Result"][0].startswith("x-"), o

    p = cli.ok("-c", "fo-*", "exec", ctr, "true")
    assert p.out == "" and p.err == "", p


def test_a_long_line_and_output_without_newline_keep_their_prefix(loaded, ctr):
    cli = loaded.cli
    cli.ok("-c", "fo-a,fo-b", "run", "-d", "--name", ctr, "busybox", "sleep", "300",
           timeout=60)
    p = cli.ok("-c", "fo-a,fo-b", "exec", ctr, "sh", "-c",
               "head -c 100000 /dev/zero | tr '\\0' x; echo; printf tail")
    got = by_context(p.out)
    for n in ("fo-a", "fo-b"):
        assert "".join(got[n][:-1]) == "x" * 100000, [len(x) for x in got[n]]
        assert got[n][-1] == "tail", got[n][-1]
    p = cli.ok("-c", "fo-a,fo-b", "exec", ctr, "printf", "a\\000b\\nc\\n")
    assert sorted(p.stdout.split(b"\n")) == sorted(
        [b"fo-a | a\0b", b"fo-a | c", b"fo-b | a\0b", b"fo-b | c", b""]), p.stdout


# ---- failures, timeouts, refusals ----------------------------------------------------------


def test_one_daemon_down_only_that_host_fails(fleet, tmp_path):
    cli = fleet.cli
    dead = f"tcp://127.0.0.1:{free_port()}"
    cli.ok("context", "create", "fo-dead", "--host", dead, "--tls-dir", fleet.daemons[0].tls_dir)
    try:
        p = cli.run("-c", "fo-*", "version")
        assert p.returncode == 1, p
        got = by_context(p.out)
        assert set(got) == set(NAMES) | {"fo-dead"}, p.out  # the client part prints anyway
        for n in NAMES:
            assert "Server:" in got[n] and got[n][-1].startswith("  Git commit:"), p.out
        assert "Server:" not in got["fo-dead"], p.out
        errs = [line for line in p.err.splitlines() if line.startswith("fo-")]
        assert errs and all(line.startswith("fo-dead | ") for line in errs), p.err
        assert "cannot connect" in p.err, p.err
        assert p.err.splitlines()[-1] == "berth: 1 of 4 contexts failed: fo-dead (exit 125)", p.err

        res = per_host(cli.run("-c", "fo-*", "--format", "json", "ps").out)
        assert res["fo-dead"]["ExitCode"] == 125, res
        assert "cannot connect" in res["fo-dead"]["Error"], res
        for n in NAMES:
            assert res[n]["ExitCode"] == 0 and isinstance(res[n]["Result"], list), res

        p = cli.run("-c", "fo-*", "ps", "-a")
        assert p.returncode == 1 and p.out.startswith("CONTEXT"), p
    finally:
        cli.run("context", "rm", "fo-dead")


class Silent:
    """Accepts TCP connections and never says a word (no TLS handshake)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def berth_children(config):
    """pids of berth processes running with this config dir."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"BERTH_CONFIG={config}".encode() in env.split(b"\0"):
            out.append(int(pid))
    return out


def test_timeout_only_the_silent_host_bounded_total(fleet):
    cli = fleet.cli
    silent = Silent()
    cli.ok("context", "create", "fo-silent", "--host", f"tcp://127.0.0.1:{silent.port}",
           "--tls-dir", fleet.daemons[0].tls_dir)
    try:
        t0 = time.monotonic()
        p = cli.run("-c", "fo-*", "--timeout", "2", "--format", "json", "version", timeout=20)
        took = time.monotonic() - t0
        assert p.returncode == 1, p
        assert 2 <= took < 8, took
        res = per_host(p.out)
        assert res["fo-silent"]["ExitCode"] == 124, res
        assert res["fo-silent"]["Error"] == "timed out after 2s", res
        for n in NAMES:
            assert res[n]["ExitCode"] == 0 and res[n]["Result"]["Server"], res
        assert silent.conns, "the silent host was never contacted"

        p = cli.run("-c", "fo-*", "--timeout", "2", "ps", timeout=20)
        assert p.returncode == 1 and p.out.startswith("CONTEXT"), p
        assert "fo-silent | timed out after 2s" in p.err.splitlines(), p.err
        assert not berth_children(cli.config), "a timed-out child survived"
    finally:
        silent.close()
        cli.run("context", "rm", "fo-silent")


def test_parallel_one_runs_them_one_after_another(fleet):
    p = fleet.cli.ok("-c", "fo-*", "--parallel", "1", "version")
    assert [line.partition(" | ")[0] for line in p.out.splitlines()][0] == "fo-a", p.out
    seen = []
    for line in p.out.splitlines():
        name = line.partition(" | ")[0]
        if not seen or seen[-1] != name:
            seen.append(name)
    assert seen == NAMES, seen  # not interleaved: one host after the other


@pytest.mark.parametrize(
    "args,what",
    [
        (["exec", "-it", "x", "sh"], "exec -i -t"),
        (["exec", "-i", "x", "sh"], "exec -i"),
        (["exec", "--tty", "x", "sh"], "exec -t"),
        (["run", "-it", "busybox", "sh"], "run -i -t"),
        (["run", "-d", "-t", "busybox", "sh"], "run -t"),
    ],
)
def test_interactive_with_several_targets_refused(fleet, args, what):
    t0 = time.monotonic()
    p = fleet.cli.run("-c", "fo-*", *args)
    assert p.returncode == 1, p
    assert f"'berth {what}' is interactive" in p.err and "3 contexts" in p.err, p.err
    assert p.out == "" and len(p.err.splitlines()) == 1, p
    assert time.monotonic() - t0 < 5


def test_exec_args_that_look_like_flags_are_not_interactive(loaded, ctr):
    loaded.cli.ok("-c", "fo-a,fo-b", "run", "-d", "--name", ctr, "busybox", "sleep", "300",
                  timeout=60)
    p = loaded.cli.ok("-c", "fo-a,fo-b", "exec", ctr, "echo", "-it", "-h")
    assert by_context(p.out) == {"fo-a": ["-it -h"], "fo-b": ["-it -h"]}, p.out


@pytest.mark.parametrize("cmd", [["inspect", "x"], ["load", "-i", "x.tar"], ["attach", "x"],
                                 ["context", "ls"], ["kill", "x"]])
def test_other_commands_run_on_one_context_at_a_time(fleet, cmd):
    p = fleet.cli.run("-c", "fo-*", *cmd)
    assert p.returncode == 1, p
    assert f"'berth {cmd[0]}' runs on one context at a time" in p.err, p.err
    assert "fo-a, fo-b, fo-c" in p.err and p.out == "", p.err


def test_help_is_printed_once(fleet):
    p = fleet.cli.ok("-c", "fo-*", "ps", "--help")
    assert p.out.startswith("Usage: berth ps") and " | " not in p.out, p.out
    p = fleet.cli.ok("-c", "fo-*", "run", "--help")
    assert p.out.count("Usage: berth run") == 1, p.out
    p = fleet.cli.ok("--help")
    assert "--parallel" in p.out and "else 1" in p.out, p.out


def test_children_never_fan_out_again(fleet):
    p = fleet.cli.run("-c", "fo-*", "version", env={"BERTH_FANOUT_CHILD": "1"})
    assert p.returncode == 1 and "internal" in p.err, p.err


def test_exec_spawned_children_behave_the_same(fleet):
    """BERTH_FANOUT_SPAWN=exec: children re-execute the binary (the portable
    path a platform without fork takes) instead of being forks."""
    env = {"BERTH_FANOUT_SPAWN": "exec"}
    got = per_host(fleet.cli.ok("-c", "fo-*", "--format", "json", "version", env=env).out)
    assert set(got) == set(NAMES) and all(o["ExitCode"] == 0 for o in got.values()), got
    p = fleet.cli.ok("-c", "@env=prod", "ps", "-a", env=env)
    assert p.out.startswith("CONTEXT"), p.out
    p = fleet.cli.run("-c", "fo-a,zz", "ps", env=env)
    assert p.returncode == 1 and '"zz"' in p.err, p.err


def test_events_lines_and_json_carry_the_context(fleet):
    cli = fleet.cli
    since = int(time.time()) - 1
    for n in NAMES:
        cli.run("-c", n, "rm", "-f", f"gone-{n}")  # an audited call on each host
    until = int(time.time()) + 1
    args = ("events", "--since", str(since), "--until", str(until), "--filter", "type=audit")
    got = by_context(cli.ok("-c", "fo-*", *args).out)
    assert set(got) == set(NAMES), got
    for n in NAMES:
        assert any(f"gone-{n}" in line for line in got[n]), got[n]
        assert not any(f"gone-{m}" in line for m in NAMES if m != n for line in got[n])
    objs = [json.loads(line) for line in cli.ok("-c", "fo-*", "--format", "json", *args)
            .out.splitlines()]
    ends = {o["Context"]: o for o in objs if "ExitCode" in o}
    assert set(ends) == set(NAMES) and all(o["ExitCode"] == 0 for o in ends.values()), ends
    events = [o for o in objs if "ExitCode" not in o]
    for n in NAMES:
        mine = [e for e in events if e["Context"] == n]
        assert mine and any(f"gone-{n}" in json.dumps(e) for e in mine), (n, mine)
        assert all(f"gone-{m}" not in json.dumps(e) for e in mine for m in NAMES if m != n)


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_sigterm_to_the_cli_ends_every_child(fleet, spawn):
    """A streaming fan-out (events follows forever) killed from outside must
    not leave its children streaming without a reader."""
    env = fleet.cli.env(BERTH_FANOUT_SPAWN=spawn)
    proc = subprocess.Popen([fleet.cli.path, "-c", "fo-*", "events"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while len(berth_children(fleet.cli.config)) < 1 + len(NAMES):
            assert time.monotonic() < deadline and proc.poll() is None, proc.poll()
            time.sleep(0.02)
        proc.send_signal(subprocess.signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + 15, (proc.returncode, err)
    assert b"stopped by signal 15" in err, err
    deadline = time.monotonic() + 5
    while berth_children(fleet.cli.config):
        assert time.monotonic() < deadline, berth_children(fleet.cli.config)
        time.sleep(0.02)


def test_run_attached_without_a_terminal_fans_out(loaded):
    p = loaded.cli.ok("-c", "fo-*", "run", "--rm", "busybox", "sh", "-c",
                      "echo run-out; echo run-err >&2", timeout=60)
    assert by_context(p.out) == {n: ["run-out"] for n in NAMES}, p.out
    assert by_context(p.err) == {n: ["run-err"] for n in NAMES}, p.err
    for n in NAMES:
        assert loaded.cli.ok("-c", n, "ps", "-aq").out == "", "run --rm left a container"


def test_fan_out_flags_with_one_context_and_a_command_that_cannot(fleet):
    for args in (["--timeout", "5", "inspect", "x"], ["--format", "json", "exec", "-it", "x", "sh"]):
        p = fleet.cli.run("-c", "fo-a", *args)
        assert p.returncode == 1 and "does not fan out" in p.err, (args, p.err)
        assert p.out == "", p.out

"""Fan-out ps and images (info and version in JSON) in process
(client/fanout_fast.c): the same table, per-host JSON, errors and exit codes
as one child per host
(BERTH_FANOUT_SPAWN=fork keeps the children), without creating a process;
flags the fast path does not know still run as children."""

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

from conftest import free_port
from test_fanout import NAMES, Silent, ctr, fleet, loaded, per_host  # noqa: F401  (fixtures)

AGO = re.compile(r"(Less than a second|About a minute|About an hour|"
                 r"\d+ (second|minute|hour|day|week|month|year)s?)")


def run(cli, *args, spawn=None, timeout=60):
    env = {"BERTH_FANOUT_SPAWN": spawn} if spawn else {}
    return cli.run(*args, env=env, timeout=timeout)


def same_text(s):
    """Ages move between two runs; columns may widen with them."""
    return [re.sub(r"\s+", " ", AGO.sub("T", line)).strip() for line in s.splitlines()]


def same_json(s):
    out = []
    for line in s.splitlines():
        o = json.loads(line)
        for row in o["Result"] if isinstance(o["Result"], list) else [o["Result"]]:
            if isinstance(row, dict):
                if isinstance(row.get("Status"), str):
                    row["Status"] = AGO.sub("T", row["Status"])
                for k in ("RunningFor", "CreatedSince", "SystemTime", "MemFree", "NGoroutines"):
                    row.pop(k, None)
        out.append(o)
    return sorted(out, key=lambda o: o["Context"])


def assert_same(cli, *args, json_out=False, timeout=60):
    fast = run(cli, *args, timeout=timeout)
    kids = run(cli, *args, spawn="fork", timeout=timeout)
    assert fast.returncode == kids.returncode, (fast, kids)
    norm = same_json if json_out else same_text
    assert norm(fast.out) == norm(kids.out), (fast.out, kids.out)
    assert sorted(fast.err.splitlines()) == sorted(kids.err.splitlines()), (fast.err, kids.err)
    return fast


@pytest.mark.parametrize(
    "args,json_out",
    [
        (["ps"], False),
        (["ps", "-a", "--no-trunc"], False),
        (["ps", "--format", "json", "-a"], True),
        (["--format", "json", "ps"], True),
        (["images"], False),
        (["images", "--no-trunc", "--format=json"], True),
        (["--format", "json", "version"], True),
        (["version", "-f", "json"], True),
        (["info", "--format", "json"], True),
    ],
)
def test_same_output_as_children(loaded, ctr, args, json_out):
    cli = loaded.cli
    cli.ok("-c", "fo-*", "run", "-d", "--name", ctr, "busybox", "sleep", "300", timeout=60)
    p = assert_same(cli, "-c", "fo-*", *args, json_out=json_out)
    if json_out:
        assert set(per_host(p.out)) == set(NAMES), p.out
        assert all(o["ExitCode"] == 0 and o["Result"] for o in per_host(p.out).values()), p.out
    elif args[0] == "ps":
        assert sorted(line.split()[0] for line in p.out.splitlines() if ctr in line) == NAMES
    else:
        assert p.out.startswith("CONTEXT") and "busybox" in p.out, p.out


def test_filters_select_the_same_rows(loaded, ctr):
    cli = loaded.cli
    cli.ok("-c", "fo-a,fo-b", "run", "-d", "--name", ctr, "busybox", "sleep", "300", timeout=60)
    p = assert_same(cli, "-c", "fo-*", "ps", "-a", "--filter", f"name={ctr}")
    rows = p.out.splitlines()[1:]
    assert sorted(r.split()[0] for r in rows) == ["fo-a", "fo-b"], p.out
    p = assert_same(cli, "-c", "fo-*", "ps", "-f", "name=no-such-thing-at-all")
    assert len(p.out.splitlines()) == 1, p.out  # the head only


@pytest.fixture
def broken(fleet):
    """One context whose daemon is not there, one that never answers, one
    with another CA than its daemon's: each fails its own way."""
    cli = fleet.cli
    silent = Silent()
    tls = fleet.daemons[0].tls_dir
    cli.ok("context", "create", "fo-dead", "--host", f"tcp://127.0.0.1:{free_port()}",
           "--tls-dir", tls)
    cli.ok("context", "create", "fo-silent", "--host", f"tcp://127.0.0.1:{silent.port}",
           "--tls-dir", tls)
    other = cli.root / "other-pki"
    cli.ok("certs", "init", "--dir", other)
    cli.ok("context", "create", "fo-otherca", "--host", fleet.daemons[0].host, "--tls-dir", other)
    try:
        yield fleet
    finally:
        silent.close()
        shutil.rmtree(cli.root / "other-pki", ignore_errors=True)
        for n in ("fo-dead", "fo-silent", "fo-otherca"):
            cli.run("context", "rm", n)


def test_failures_are_reported_the_same(broken):
    cli = broken.cli
    for args, json_out in (((), False), (("--format", "json"), True)):
        p = assert_same(cli, "-c", "fo-*", "--timeout", "2", *args, "ps", json_out=json_out,
                        timeout=30)
        assert p.returncode == 1, p
    p = run(cli, "-c", "fo-*", "--timeout", "2", "--format", "json", "ps")
    res = per_host(p.out)
    assert set(res) == set(NAMES) | {"fo-dead", "fo-silent", "fo-otherca"}, p
    assert res["fo-dead"]["ExitCode"] == 125 and "cannot connect" in res["fo-dead"]["Error"]
    assert res["fo-silent"]["ExitCode"] == 124, res
    assert res["fo-silent"]["Error"] == "timed out after 2s", res
    assert res["fo-otherca"]["ExitCode"] == 125 and res["fo-otherca"]["Error"], res
    for n in NAMES:
        assert res[n]["ExitCode"] == 0 and res[n]["Error"] is None, res
    p = assert_same(cli, "-c", "fo-*", "--timeout", "2", "--format", "json", "version",
                    json_out=True, timeout=30)
    res = per_host(p.out)
    assert res["fo-dead"]["Result"]["Server"] is None, res
    assert res["fo-dead"]["Result"]["Client"]["Context"] == "fo-dead", res
    assert res["fo-silent"]["Result"] == [] and res["fo-silent"]["ExitCode"] == 124, res
    assert all(res[n]["Result"]["Server"]["Version"] for n in NAMES), res
    assert_same(cli, "-c", "fo-*", "--timeout", "2", "info", "-f", "json", json_out=True,
                timeout=30)
    p = run(cli, "-c", "fo-*", "--timeout", "2", "--parallel", "2", "ps")
    assert p.out.startswith("CONTEXT") and p.returncode == 1, p
    assert p.err.splitlines()[-1].startswith("berth: 3 of 6 contexts failed: "), p.err


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_no_process_is_created(fleet, tmp_path):
    """The fast path forks nothing; -q (not understood by it) still does."""

    def forks(*args):
        log = tmp_path / f"strace-{uuid.uuid4().hex}"
        cmd = ["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o", str(log),
               fleet.cli.path, "-c", "fo-*", *args]
        env = fleet.cli.env()
        # An ASan build: LeakSanitizer cannot run under ptrace (and its
        # check would clone a thread at exit).
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p
        return [line for line in log.read_text().splitlines() if "= " in line]

    assert forks("ps") == []
    assert forks("images", "--format", "json") == []
    assert forks("--format", "json", "version") == []
    assert len(forks("ps", "-q")) >= len(NAMES)

"""berth version / info through each way of naming a daemon, and the
resolution order that picks between them."""

import json

import pytest

from conftest import Berth, http_get_json


def server_version(js):
    """The daemon's version in `berth version --format json` (Docker's shape
    {"Client": {...}, "Server": {...}})."""
    assert isinstance(js, dict), js
    server = js.get("Server")
    assert isinstance(server, dict), f"no Server object in {js}"
    return server.get("Version")


@pytest.fixture(scope="module")
def expected(daemon, pki):
    """What the daemon itself answers, read without the CLI."""
    return {
        "version": http_get_json(daemon, pki, "/version"),
        "info": http_get_json(daemon, pki, "/info"),
    }


def check_version(cli, expected, *args, env=None):
    js = cli.json(*args, "version", "--format", "json", env=env)
    assert server_version(js) == expected["version"]["Version"], js
    plain = cli.ok(*args, "version", env=env)
    assert expected["version"]["Version"] in plain.out, plain.out
    return js


def check_info(cli, expected, *args, env=None):
    js = cli.json(*args, "info", "--format", "json", env=env)
    for key in ("ID", "Name", "OSType"):
        if key in expected["info"]:
            assert js.get(key) == expected["info"][key], f"{key}: {js}"
    plain = cli.ok(*args, "info", env=env)
    assert plain.out.strip(), "berth info printed nothing"


def test_version_info_through_context(berth, daemon, pki, expected):
    berth.ok("context", "create", "e2e", "--host", daemon.host, "--tls-dir", pki.dir)
    berth.ok("context", "use", "e2e")
    check_version(berth, expected)
    check_info(berth, expected)
    # -c names the context explicitly too.
    check_version(berth, expected, "-c", "e2e")


def test_version_through_context_with_ca_cert_key(berth, daemon, pki, expected):
    berth.ok(
        "context", "create", "files", "--host", daemon.host,
        "--ca", pki.ca, "--cert", pki.cert, "--key", pki.key,
    )
    check_version(berth, expected, "-c", "files")


def test_version_info_through_env(berth, daemon, pki, expected):
    env = {"BERTH_HOST": daemon.host, "BERTH_CERT_PATH": pki.dir}
    check_version(berth, expected, env=env)
    check_info(berth, expected, env=env)


def test_version_info_through_flags(berth, daemon, pki, expected):
    check_version(berth, expected, "-H", daemon.host, "--tls-dir", pki.dir)
    check_info(berth, expected, "-H", daemon.host, "--tls-dir", pki.dir)


def test_version_json_has_docker_shape(berth, daemon, pki):
    js = berth.json("-H", daemon.host, "--tls-dir", pki.dir, "version", "--format", "json")
    assert "Client" in js and "Server" in js, js
    assert js["Server"].get("ApiVersion"), js


def context_show(cli, *args, env=None):
    return cli.ok(*args, "context", "show", env=env).out


def test_context_show_names_source(berth, daemon, pki):
    """Resolution: -H > -c > BERTH_HOST > BERTH_CONTEXT > current > unix socket,
    and `context show` says which one won."""
    berth.ok("context", "create", "alpha", "--host", daemon.host, "--tls-dir", pki.dir)
    berth.ok("context", "create", "beta", "--host", daemon.host, "--tls-dir", pki.dir)

    default = context_show(berth)
    assert "alpha" not in default and "beta" not in default, default

    berth.ok("context", "use", "alpha")
    cur = context_show(berth)
    assert "alpha" in cur, cur

    env_ctx = context_show(berth, env={"BERTH_CONTEXT": "beta"})
    assert "beta" in env_ctx and "BERTH_CONTEXT" in env_ctx, env_ctx

    env_host = context_show(
        berth, env={"BERTH_CONTEXT": "beta", "BERTH_HOST": daemon.host, "BERTH_CERT_PATH": pki.dir}
    )
    assert "BERTH_HOST" in env_host, env_host

    flag_c = context_show(berth, "-c", "beta", env={"BERTH_HOST": daemon.host})
    assert "beta" in flag_c and "alpha" not in flag_c, flag_c

    flag_h = context_show(berth, "-H", daemon.host, "--tls-dir", pki.dir, "-c", "beta")
    assert daemon.host in flag_h or "-H" in flag_h, flag_h
    assert "beta" not in flag_h, flag_h

    # The five answers differ: each names its own source.
    answers = {cur, env_ctx, env_host, flag_c, flag_h}
    assert len(answers) == 5, answers


def test_context_ls_and_inspect(berth, daemon, pki):
    berth.ok("context", "create", "one", "--host", daemon.host, "--tls-dir", pki.dir)
    ls = berth.ok("context", "ls").out
    assert "one" in ls and daemon.host in ls, ls
    js = berth.json("context", "inspect", "one")
    text = json.dumps(js)
    assert daemon.host in text, js
    # The key is a secret: inspect must not print it.
    assert "PRIVATE KEY" not in text, "context inspect leaks the private key"


def test_context_update_and_rm(berth, daemon, pki, expected):
    berth.ok("context", "create", "moving", "--host", "tcp://127.0.0.1:1", "--tls-dir", pki.dir)
    berth.ok("context", "update", "moving", "--host", daemon.host)
    check_version(berth, expected, "-c", "moving")
    berth.ok("context", "rm", "moving")
    p = berth.run("-c", "moving", "version")
    assert p.returncode == 1, (p.returncode, p.err)


def test_config_files_are_private(berth, daemon, pki):
    berth.ok("context", "create", "secret", "--host", daemon.host, "--tls-dir", pki.dir)
    for f in berth.config.rglob("*"):
        if f.is_file() and "key" in f.name:
            mode = f.stat().st_mode & 0o777
            assert mode & 0o077 == 0, f"{f} has mode {oct(mode)}"


def test_separate_config_dirs_do_not_share(tmp_path, daemon, pki):
    a = Berth(tmp_path / "a")
    b = Berth(tmp_path / "b")
    a.ok("context", "create", "only-a", "--host", daemon.host, "--tls-dir", pki.dir)
    assert "only-a" not in b.ok("context", "ls").out

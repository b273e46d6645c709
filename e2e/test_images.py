"""berth load and berth images: against the fake daemon of test_containers
(the client's side of the contract: Content-Length uploads from a file, a
regular stdin and a pipe; JSON-lines replies; docker's table) and against a
real berthd with the test image build/images/busybox.tar."""

import json
import re
import subprocess

import pytest

from conftest import Berth, mktemp_dir
from test_containers import TEST_IMAGE, fcli, missing
from test_containers import fake  # noqa: F401,F811 (a fixture: used by name)


@pytest.fixture
def tar(tmp_path):
    """A small valid tar (the fake only checks the ustar magic)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    out = tmp_path / "img.tar"
    subprocess.run(["tar", "-cf", out, "-C", src, "hello"], check=True)
    return out


def load_bodies(fake):
    return [b for p, b in fake.state.bodies if p.startswith("/v1.43/images/load")]


def test_fake_load_from_file_stdin_and_pipe(berth, fake, tar):
    data = tar.read_bytes()
    p = fcli(berth, fake, "load", "-i", tar)
    assert (p.returncode, p.out) == (0, "Loaded image: busybox:latest\n"), p.err
    with open(tar, "rb") as f:  # a regular file on stdin: its length from fstat
        p = subprocess.run([berth.path, "-H", fake.host, "load"], stdin=f,
                           capture_output=True, env=berth.env(), timeout=30)
    assert p.returncode == 0 and p.stdout == b"Loaded image: busybox:latest\n", p.stderr
    p = fcli(berth, fake, "load", input=data)  # a pipe: spooled, then sent with a length
    assert p.returncode == 0, p.err
    assert load_bodies(fake) == [data, data, data]


def test_fake_load_errors(berth, fake, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar" * 100)
    p = fcli(berth, fake, "load", "-i", junk)
    assert p.returncode == 1
    assert p.err == "berth: Error response from daemon: not a tar archive\n"
    p = fcli(berth, fake, "load", "-i", tmp_path / "missing.tar")
    assert p.returncode == 1 and "cannot open" in p.err
    assert len(load_bodies(fake)) == 1


def test_fake_images(berth, fake):
    lines = fcli(berth, fake, "images", check=True).out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert re.match(r"^busybox\s+latest\s+cdcdcdcdcdcd\s+\d+ years ago\s+1\.23MB$", lines[1]), lines[1]
    assert fcli(berth, fake, "images", "-q", check=True).out == "cdcdcdcdcdcd\n"
    js = json.loads(fcli(berth, fake, "images", "--format", "json", check=True).out)
    assert (js["Repository"], js["Tag"], js["Size"]) == ("busybox", "latest", "1.23MB")


# ---- a real berthd ------------------------------------------------------------


@pytest.fixture
def real_cli(pki, make_daemon):
    if not TEST_IMAGE.is_file():
        missing(f"test image {TEST_IMAGE} not built")
    d = make_daemon(pki.dir)
    cli = Berth(mktemp_dir("img-cli-"))
    cli.ok("context", "create", "e2e", "--host", d.host, "--tls-dir", pki.dir)
    cli.ok("context", "use", "e2e")
    probe = cli.run("images")
    if probe.returncode != 0:
        missing(f"berthd does not serve GET /images/json yet: {probe.err.strip()}")
    return cli


def test_load_and_list(real_cli, tmp_path):
    p = real_cli.run("load", "-i", TEST_IMAGE)
    assert p.returncode == 0, p.err
    assert "Loaded image: busybox:latest" in p.out
    lines = real_cli.ok("images").out.splitlines()
    row = [line for line in lines[1:] if line.split()[:2] == ["busybox", "latest"]]
    assert row, lines
    assert re.match(r"^busybox\s+latest\s+[0-9a-f]{12}\s+.+ ago\s+[0-9.]+[kMG]?B$", row[0]), row[0]
    ids = real_cli.ok("images", "-q").out.split()
    assert row[0].split()[2] in ids
    # From stdin too (a pipe), the same image again.
    p = real_cli.run("load", input=TEST_IMAGE.read_bytes())
    assert p.returncode == 0 and "busybox:latest" in p.out, p.err


def test_load_garbage(real_cli, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\x00garbage" * 1000)
    p = real_cli.run("load", "-i", junk)
    assert p.returncode == 1
    assert p.err.startswith("berth: Error response from daemon: "), p.err
    assert len(p.err.strip().splitlines()) == 1

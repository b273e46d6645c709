"""Context export / import, and import of hostile archives."""

import io
import os
import tarfile

import pytest

from conftest import Berth


@pytest.fixture
def exported(berth, daemon, pki, tmp_path):
    berth.ok("context", "create", "src", "--host", daemon.host, "--tls-dir", pki.dir)
    f = tmp_path / "src.berthctx"
    berth.ok("context", "export", "src", f)
    assert f.stat().st_size > 0
    assert f.stat().st_mode & 0o077 == 0, f"export holding a key has mode {oct(f.stat().st_mode)}"
    return f


def test_export_import_roundtrip(exported, daemon, tmp_path):
    fresh = Berth(tmp_path / "fresh")
    fresh.ok("context", "import", "copy", exported)
    assert "copy" in fresh.ok("context", "ls").out
    js = fresh.json("-c", "copy", "version", "--format", "json")
    assert js["Server"]["Version"], js


def test_export_import_through_pipes(berth, daemon, pki, tmp_path):
    berth.ok("context", "create", "piped", "--host", daemon.host, "--tls-dir", pki.dir)
    blob = berth.ok("context", "export", "piped", "-").stdout
    assert blob
    fresh = Berth(tmp_path / "fresh")
    fresh.ok("context", "import", "piped2", "-", input=blob)
    fresh.ok("-c", "piped2", "version")


def test_import_existing_name_refused(exported, berth):
    p = berth.run("context", "import", "src", exported)
    assert p.returncode != 0
    assert "src" in p.err, p.err


def evil_tar(path, genuine, member_name):
    """A genuine export with one hostile member added, so the import can only
    fail because of that member."""
    data = b"pwned\n"
    with tarfile.open(genuine) as src, tarfile.open(path, "w") as t:
        for m in src.getmembers():
            t.addfile(m, src.extractfile(m) if m.isfile() else None)
        ti = tarfile.TarInfo(member_name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))


def test_export_is_a_tar(exported):
    assert tarfile.is_tarfile(exported), "context export is not a tar archive"


@pytest.mark.parametrize("member", ["../evil", "meta/../../evil", "/tmp/berth-e2e-abs-evil"])
def test_import_path_traversal_refused(exported, tmp_path, member):
    if not tarfile.is_tarfile(exported):
        pytest.fail("context export is not a tar archive; cannot craft a hostile one")
    cli = Berth(tmp_path / "victim")
    archive = tmp_path / "evil.tar"
    evil_tar(archive, exported, member)
    # The same archive without the hostile member imports fine.
    cli.ok("context", "import", "control", exported)
    p = cli.run("context", "import", "evil", archive)
    assert p.returncode != 0, p.out
    assert member in p.err, f"message does not name the member: {p.err!r}"
    assert len(p.err.strip().splitlines()) == 1, f"not one line: {p.err!r}"
    # Nothing escaped and no context was left behind.
    assert not any(tmp_path.rglob("evil")), list(tmp_path.rglob("evil"))
    if member.startswith("/"):
        assert not os.path.exists(member), f"import wrote {member}"
    assert "evil" not in cli.ok("context", "ls").out
    r = cli.run("-c", "evil", "version")
    assert r.returncode == 1, (r.returncode, r.err)


def test_import_symlink_member_refused(exported, tmp_path):
    """tls/key.pem as a symlink would make the store read (or later write)
    a file outside it."""
    archive = tmp_path / "link.tar"
    with tarfile.open(exported) as src, tarfile.open(archive, "w") as t:
        for m in src.getmembers():
            if m.name.endswith("key.pem"):
                link = tarfile.TarInfo(m.name)
                link.type = tarfile.SYMTYPE
                link.linkname = "/etc/shadow"
                t.addfile(link)
            else:
                t.addfile(m, src.extractfile(m) if m.isfile() else None)
    cli = Berth(tmp_path / "victim")
    p = cli.run("context", "import", "linked", archive)
    assert p.returncode != 0, p.out
    assert "key.pem" in p.err, p.err
    assert "linked" not in cli.ok("context", "ls").out


def test_import_garbage_refused(tmp_path):
    cli = Berth(tmp_path / "victim")
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not an archive\n" * 10)
    p = cli.run("context", "import", "junk", junk)
    assert p.returncode != 0
    assert "junk" in p.err, p.err
    assert "junk" not in cli.ok("context", "ls").out


def test_unknown_context(berth):
    p = berth.run("-c", "does-not-exist", "version")
    assert p.returncode == 1, (p.returncode, p.err)
    assert "does-not-exist" in p.err, p.err
    p = berth.run("context", "use", "does-not-exist")
    assert p.returncode == 1, (p.returncode, p.err)
    assert "does-not-exist" in p.err, p.err


def test_unknown_context_from_env(berth):
    p = berth.run("version", env={"BERTH_CONTEXT": "ghost"})
    assert p.returncode == 1, (p.returncode, p.err)
    assert "ghost" in p.err, p.err

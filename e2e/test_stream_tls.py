"""The stream client over TLS against the fake daemon (e2e/fake_streamd.py
--tcp --tls): frames that arrive right behind the upgrade reply.

The CLI reads TLS with read-ahead (one read() takes many records).  Records
read ahead sit in OpenSSL where poll() cannot see them: a client that polled
with the exit frame already read waited for the server to give up (the fake
waits 10 s for the client's close, berthd too) and failed with "unexpected
eof" instead of exiting with the process's code."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Berth, free_port

HERE = Path(__file__).parent


@pytest.fixture
def tls_fake(tmp_path, pki):
    port = free_port()
    p = subprocess.Popen([sys.executable, str(HERE / "fake_streamd.py"), "--tcp", str(port),
                          "--tls", str(pki.ca), str(pki.server_cert), str(pki.server_key)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    cli = Berth(tmp_path)
    cli.target = ["-H", f"tcp://127.0.0.1:{port}", "--tls-dir", str(pki.dir)]
    yield cli
    p.kill()
    p.wait()


def test_frames_behind_the_upgrade_reply_are_read_without_waiting(tls_fake):
    # A quick process: hello, output and exit follow the 101 at once.
    for i in range(10):
        t0 = time.monotonic()
        p = tls_fake.run(*tls_fake.target, "exec", "c", "sh", "-c", f"echo n{i}; exit 3",
                         timeout=30)
        took = time.monotonic() - t0
        assert (p.returncode, p.out) == (3, f"n{i}\n"), p.err
        assert took < 5, f"run {i} took {took:.1f} s: the exit frame waited for the server"


def test_large_output_over_tls_is_complete(tls_fake):
    # Many 64 KiB frames through the read-ahead buffer, then the exit.
    n = 32 * 1024 * 1024
    p = subprocess.run([tls_fake.path, *tls_fake.target, "exec", "c", "head", "-c", str(n),
                        "/dev/zero"], env=tls_fake.env(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == n and p.stdout.count(0) == n

#!/usr/bin/python3
"""Measurement helpers for bench/run (Debian python3, stdlib only).

  bench.py ping HOST PORT TLSDIR N           keep-alive GET /_ping loop over mTLS
  bench.py stream BYTES [--pty] -- CMD...    bytes/s of CMD's stdout (read, dropped)
  bench.py pty BYTES                         bytes/s of dd through a bare pty (no berth)
  bench.py rss PID...                        summed VmRSS in KiB
  bench.py hf FILE NAME                      median seconds from a hyperfine JSON
  bench.py table RESULTS.tsv [PREFIX]        the Markdown table (rows whose key has PREFIX)

Every result is one line "name<TAB>value<TAB>unit" appended to RESULTS by
bench/run; a value "n/a (reason)" marks a measurement that could not run.
"""
import http.client
import json
import os
import pty
import ssl
import statistics
import subprocess
import sys
import time

CHUNK = 1 << 20


def ping(host, port, tlsdir, n):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(tlsdir, "ca.pem"))
    ctx.load_cert_chain(os.path.join(tlsdir, "cert.pem"),
                        os.path.join(tlsdir, "key.pem"))
    conn = http.client.HTTPSConnection(host, int(port), context=ctx,
                                       timeout=10)
    times = []
    for _ in range(int(n) + 5):  # the first 5 warm the connection up
        t0 = time.perf_counter()
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        body = resp.read(4096)
        dt = time.perf_counter() - t0
        if resp.status != 200 or resp.will_close:
            raise SystemExit("ping: status %d, body %r, keep-alive %s" %
                             (resp.status, body[:80], not resp.will_close))
        times.append(dt)
    conn.close()
    print("%.9f" % statistics.median(times[5:]))


def drain(fd):
    """Reads fd to its end (EOF, or EIO from a pty whose last slave closed)
    into one preallocated buffer; returns the byte count.  os.read() would
    allocate a fresh 1 MiB bytes object per call: measured 0.75-0.86 CPU-s
    per GiB in this consumer alone (readv: 0.24-0.34), as much as berthd's
    whole share, taken from the same two cores as the stream measured."""
    buf = bytearray(CHUNK)
    got = 0
    while True:
        try:
            n = os.readv(fd, [buf])
        except OSError:
            break
        if not n:
            break
        got += n
    return got


def stream(nbytes, use_pty, cmd):
    """Runs CMD, reads its stdout to the end; prints bytes per second.
    With --pty its stdin is a terminal (berth exec -t wants one)."""
    stdin = subprocess.DEVNULL
    master = slave = None
    if use_pty:
        master, slave = pty.openpty()
        stdin = slave
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE)
    if slave is not None:
        os.close(slave)
    got = drain(p.stdout.fileno())
    rc = p.wait()
    dt = time.perf_counter() - t0
    if master is not None:
        os.close(master)
    if rc != 0 or got < int(nbytes):
        raise SystemExit("stream: %s: exit %d, %d of %s bytes" %
                         (cmd[0], rc, got, nbytes))
    print("%.0f" % (got / dt))


def pty_alone(nbytes):
    """The kernel's ceiling for TTY streams on this machine: dd writes
    BYTES into a pty slave in its default (cooked) modes, as a container's
    or ssh -tt's terminal is, and the master is read like the monitor does
    it.  No berth, no network, no crypto."""
    master, slave = pty.openpty()
    count = int(nbytes) >> 20
    t0 = time.perf_counter()
    p = subprocess.Popen(["dd", "if=/dev/zero", "bs=1048576", "count=%d" % count,
                          "status=none"], stdout=slave)
    os.close(slave)
    got = drain(master)
    rc = p.wait()
    dt = time.perf_counter() - t0
    os.close(master)
    if rc != 0 or got < count << 20:
        raise SystemExit("pty: dd exit %d, %d of %d bytes" % (rc, got, count << 20))
    print("%.0f" % (got / dt))


def rss(pids):
    total = 0
    for pid in pids:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    print(total)


def hf(path, name):
    with open(path) as f:
        data = json.load(f)
    for r in data["results"]:
        if r["command"] == name:
            print("%.9f" % r["median"])
            return
    raise SystemExit("hf: no result %r in %s" % (name, path))


# (row label, berth key, [(other label, other key)], unit, goal text, goal
# check on the ratio or on the berth value)
ROWS = [
    ("container start", "start.berth",
     [("crun run", "start.crun"), ("runc run", "start.runc"),
      ("podman run --rm", "start.podman")], "s", "≤ 2× crun",
     ("ratio", "start.crun", 2.0)),
    ("exec `true`", "exec.berth",
     [("crun exec", "exec.crun"), ("runc exec", "exec.runc"),
      ("podman exec", "exec.podman"), ("ssh (fresh)", "exec.ssh"),
      ("ssh (ControlMaster)", "exec.sshcm")], "s", "≤ 1.5× crun exec",
     ("ratio", "exec.crun", 1.5)),
    ("`berth ps` (fresh CLI, mTLS)", "ps.berth", [], "s", "≤ 4 ms",
     ("max", None, 0.004)),
    ("GET /_ping keep-alive (in-process)", "ping.berth", [], "s", "", None),
    ("stream exec (pipe)", "stream.berth",
     [("ssh aes128-gcm", "stream.ssh")], "B/s", "≥ 1.5× ssh",
     ("minratio", "stream.ssh", 1.5)),
    ("stream exec -t (pty)", "stream.berth_t",
     [("ssh -tt aes128-gcm", "stream.ssh_t"), ("ssh aes128-gcm (no pty)", "stream.ssh"),
      ("bare pty, no network", "stream.pty")], "B/s", "≥ 300 MB/s",
     ("min", None, 300e6)),
    ("berthd idle RSS", "rss.berthd", [], "KiB", "≤ 6 MB",
     ("max", None, 6 * 1024)),
    ("one monitor idle RSS", "rss.monitor", [], "KiB", "≤ 1 MB",
     ("max", None, 1024)),
    ("berthd RSS, N exec streams open", "rss.berthd_streams", [], "KiB",
     "", None),
    ("monitor RSS, N exec streams open", "rss.monitor_streams", [], "KiB",
     "", None),
]


def fmt(v, unit):
    if isinstance(v, str):
        return v
    if unit == "s":
        if v < 1e-3:
            return "%.0f µs" % (v * 1e6)
        return "%.1f ms" % (v * 1e3) if v < 1 else "%.2f s" % v
    if unit == "B/s":
        return "%.0f MB/s" % (v / 1e6)
    return "%.1f MB" % (v / 1024)


def load(path):
    res = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            try:
                res[parts[0]] = float(parts[1])
            except ValueError:
                res[parts[0]] = parts[1]
    return res


def goal_cell(res, b, goal, text):
    if goal is None or not isinstance(b, float):
        return text
    kind, key, limit = goal
    if kind == "max":
        ok = b <= limit
    elif kind == "min":
        ok = b >= limit
    else:
        o = res.get(key)
        if not isinstance(o, float):
            return text + " (no baseline)"
        ok = b / o <= limit if kind == "ratio" else b / o >= limit
    return "%s %s" % (text, "met" if ok else "**missed**")


def table(path, prefix=""):
    res = load(path)
    print("| measurement | berth | compared with | other | berth/other | goal |")
    print("|---|---|---|---|---|---|")
    for label, bkey, others, unit, text, goal in ROWS:
        if not bkey.startswith(prefix):
            continue
        b = res.get(bkey, "n/a (not measured)")
        label = label.replace("N exec", "%d exec" % res.get("streams.n", 0))
        gcell = goal_cell(res, b, goal, text)
        if not others:
            print("| %s | %s | | | | %s |" % (label, fmt(b, unit), gcell))
            continue
        for i, (olabel, okey) in enumerate(others):
            o = res.get(okey, "n/a (not measured)")
            ratio = ""
            if isinstance(b, float) and isinstance(o, float) and o > 0:
                ratio = "%.2f" % (b / o)
            first = i == 0
            print("| %s | %s | %s | %s | %s | %s |" %
                  (label if first else "", fmt(b, unit) if first else "",
                   olabel, fmt(o, unit), ratio, gcell if first else ""))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ping":
        ping(*args)
    elif cmd == "stream":
        use_pty = "--pty" in args[:2]
        sep = args.index("--")
        stream(args[0], use_pty, args[sep + 1:])
    elif cmd == "pty":
        pty_alone(args[0])
    elif cmd == "rss":
        rss(args)
    elif cmd == "hf":
        hf(*args)
    elif cmd == "table":
        table(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

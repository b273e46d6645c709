"""A fake berthd for the stream client: just enough of docs/streams.md to
drive `berth exec`/`exec-kill` without the real daemon.  Commands run on this
host (pipes, or a pty with -t).  Stdlib only; serves a unix socket, or TLS on
loopback with --tls CA CERT KEY (client certs required).

    python3 fake_streamd.py SOCKET_PATH            # unix://SOCKET_PATH
    python3 fake_streamd.py --tcp PORT --tls ca cert key
"""

import base64
import hashlib
import json
import os
import pty
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import termios
import fcntl
import threading
import uuid
from http.server import BaseHTTPRequestHandler

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EXECS = {}
FRAME = 64 * 1024


def ws_frame(payload, opcode=2):
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return hdr + payload


def read_exact(f, n):
    b = b""
    while len(b) < n:
        c = f.read(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def ws_read(f):
    """One client message (joined fragments): (opcode, payload)."""
    data, op0 = b"", None
    while True:
        b0, b1 = read_exact(f, 2)
        op, n = b0 & 15, b1 & 127
        if n == 126:
            n = struct.unpack("!H", read_exact(f, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read_exact(f, 8))[0]
        if not b1 & 0x80:
            raise ValueError("client frame not masked")
        key = read_exact(f, 4)
        p = bytearray(read_exact(f, n))
        k = (key * (n // 4 + 1))[:n]
        p = bytes(a ^ b for a, b in zip(p, k)) if n < 4096 else (
            int.from_bytes(p, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
        if op >= 8:
            return op, p
        op0 = op if op0 is None else op0
        data += p
        if b0 & 0x80:
            return op0, data


class Session:
    def __init__(self, h, ex):
        self.h, self.ex, self.lock, self.off = h, ex, threading.Lock(), 0

    def send(self, payload):
        with self.lock:
            self.h.wfile.write(ws_frame(payload))
            self.h.wfile.flush()

    def control(self, doc):
        self.send(b"\x03" + json.dumps(doc).encode())

    def data(self, chan, b):
        with self.lock:
            self.h.wfile.write(ws_frame(bytes([chan]) + struct.pack("!Q", self.off) + b))
            self.h.wfile.flush()
            self.off += len(b)

    def pump(self, fd, chan):
        while True:
            try:
                b = os.read(fd, FRAME)
            except OSError:
                b = b""
            if not b:
                return
            self.data(chan, b)

    def flood(self, total):
        """Cmd ["__flood__", N]: N zero bytes in 256 KiB frames, as fast as
        Python can send them: measures the client, not a container."""
        chunk = bytes(256 * 1024)
        self.control({"type": "hello", "offset": 0, "tty": False, "stdin": False})
        threading.Thread(target=self.reader, args=(None, None, False), daemon=True).start()
        sent = 0
        while sent < total:
            n = min(len(chunk), total - sent)
            self.h.wfile.write(ws_frame(b"\x01" + struct.pack("!Q", sent) + chunk[:n]))
            sent += n
        self.h.wfile.flush()
        self.control({"type": "exit", "code": 0, "signal": 0, "oom": False})
        self.closed.wait(10)

    def run(self):
        if self.ex["Cmd"][0] == "__flood__":
            return self.flood(int(self.ex["Cmd"][1]))
        ex, tty = self.ex, self.ex["Tty"]
        env = dict(os.environ, **dict(e.split("=", 1) for e in ex.get("Env") or []))
        if tty:
            master, slave = pty.openpty()
            rows, cols = ex.get("ConsoleSize") or [24, 80]
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            p = subprocess.Popen(ex["Cmd"], stdin=slave, stdout=slave, stderr=slave,
                                 start_new_session=True, env=env,
                                 preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            os.close(slave)
            outs, infd = [(master, 1)], master
        else:
            p = subprocess.Popen(ex["Cmd"], stdin=subprocess.PIPE if ex["AttachStdin"] else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            outs = [(p.stdout.fileno(), 1), (p.stderr.fileno(), 2)]
            infd = p.stdin.fileno() if p.stdin else None
        ex["proc"] = p
        self.control({"type": "hello", "offset": 0, "tty": tty, "stdin": infd is not None})
        threading.Thread(target=self.reader, args=(p, infd, tty), daemon=True).start()
        ts = [threading.Thread(target=self.pump, args=o) for o in outs]
        for t in ts:
            t.start()
        code = p.wait()
        for t in ts:
            t.join(timeout=None if not tty else 2)
        sig = -code if code < 0 else 0
        self.control({"type": "exit", "code": 128 + sig if sig else code, "signal": sig, "oom": False})
        # The client closes: wait for its close frame (or the end).
        self.closed.wait(10)

    def reader(self, p, infd, tty):
        self.closed = getattr(self, "closed", threading.Event())
        try:
            while True:
                op, msg = ws_read(self.h.rfile)
                if op == 8:
                    self.ex.setdefault("log", []).append("close")
                    break
                if op == 9:
                    continue
                chan = msg[0]
                if chan == 0 and infd is not None:
                    os.write(infd, msg[9:])
                elif chan == 3:
                    doc = json.loads(msg[1:])
                    self.ex.setdefault("log", []).append(doc)
                    if doc["type"] == "eof" and infd is not None and not tty:
                        os.close(infd)
                        infd = None
                    elif doc["type"] == "eof" and tty:
                        os.write(infd, b"\x04")
                    elif doc["type"] == "resize" and tty:
                        fcntl.ioctl(infd, termios.TIOCSWINSZ,
                                    struct.pack("HHHH", doc["rows"], doc["cols"], 0, 0))
                        os.killpg(p.pid, signal.SIGWINCH)
                    elif doc["type"] == "signal":
                        p.send_signal(getattr(signal, doc["signal"]))
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self.closed.set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def path_parts(self):
        p = self.path.split("?")[0].split("/")
        return p[2:] if len(p) > 1 and p[1].startswith("v1.") else p[1:]

    def do_POST(self):
        parts = self.path_parts()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts[0] == "containers" and parts[2] == "exec":
            if parts[1] == "missing":
                return self.reply(404, {"message": "No such container: missing"})
            eid = uuid.uuid4().hex
            EXECS[eid] = dict(json.loads(body), id=eid)
            return self.reply(201, {"Id": eid})
        if parts[0] == "exec" and parts[2] == "kill":
            ex = EXECS.get(parts[1])
            if not ex or "proc" not in ex:
                return self.reply(404, {"message": "No such exec instance: " + parts[1]})
            q = self.path.split("signal=")[-1]
            ex["proc"].send_signal(int(q) if q.isdigit() else getattr(signal, q if q.startswith("SIG") else "SIG" + q))
            return self.reply(204, {})
        return self.reply(404, {"message": "page not found"})

    def do_GET(self):
        parts = self.path_parts()
        if parts[0] == "_log":
            return self.reply(200, {k: v.get("log", []) for k, v in EXECS.items()})
        if parts[0] != "exec" or parts[2] != "ws" or parts[1] not in EXECS:
            return self.reply(404, {"message": "No such exec instance: " + parts[1]})
        key = self.headers["Sec-WebSocket-Key"].encode()
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", acc)
        self.end_headers()
        self.wfile.flush()
        s = Session(self, EXECS[parts[1]])
        s.closed = threading.Event()
        s.run()
        self.close_connection = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    a = sys.argv[1:]
    if a[0] == "--tcp":
        srv = TCPServer(("127.0.0.1", int(a[1])), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a[4], a[5])
        ctx.load_verify_locations(a[3])
        ctx.verify_mode = ssl.CERT_REQUIRED
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    else:
        srv = UnixServer(a[0], Handler)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

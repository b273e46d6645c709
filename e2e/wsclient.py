"""A minimal RFC 6455 WebSocket client over a (TLS or unix) socket, stdlib
only, for the e2e tests of berth's exec/attach streams (docs/streams.md).

It masks what it sends, reads binary/text/close/ping frames, and knows the
stream framing: [channel][u64 BE offset][payload] for data, [3][JSON] for
control.  Not a general-purpose client: no extensions, no subprotocols."""

import base64
import json
import os
import select
import socket
import ssl
import struct

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 3


class HandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"upgrade refused: {status} {body[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed by the server: {code} {reason!r}")
        self.code = code
        self.reason = reason


def _mask(data, key):
    if not data:
        return data
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ k).to_bytes(n, "little")


class WebSocket:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.closed = False

    # ---- handshake ----------------------------------------------------------

    @classmethod
    def connect(cls, sock, path, host="berth"):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(req.encode())
        ws = cls(sock)
        status, headers = ws._read_head()
        if status != 101:
            body = ws._read_body(headers)
            raise HandshakeError(status, headers, body)
        return ws

    def _fill(self, need):
        while len(self.buf) < need:
            b = self.sock.recv(max(65536, need - len(self.buf)))
            if not b:
                raise ConnectionError("connection closed")
            self.buf += b

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise ConnectionError(f"connection closed during the handshake: {bytes(self.buf)!r}")
            self.buf += b
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def _read_body(self, headers):
        n = int(headers.get("content-length", "0"))
        try:
            self._fill(n)
        except (ConnectionError, OSError):
            pass
        body = bytes(self.buf[:n])
        del self.buf[:n]
        return body

    # ---- frames -------------------------------------------------------------

    @staticmethod
    def encode(opcode, payload, fin=True):
        hdr = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        key = os.urandom(4)
        return bytes(hdr) + key + _mask(bytes(payload), key)

    def send_frame(self, opcode, payload, fin=True):
        self.sock.sendall(self.encode(opcode, payload, fin))

    def try_frame(self):
        """A complete frame from the buffer, or None: (opcode, fin, payload)."""
        b = self.buf
        if len(b) < 2:
            return None
        n, off = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack(">Q", b[2:10])[0], 10
        masked = b[1] & 0x80
        if masked:
            off += 4
        if len(b) < off + n:
            return None
        payload = bytes(b[off : off + n])
        if masked:
            payload = _mask(payload, bytes(b[off - 4 : off]))
        op, fin = b[0] & 0x0F, bool(b[0] & 0x80)
        del b[: off + n]
        return op, fin, payload

    def recv_frame(self):
        """-> (opcode, fin, payload)"""
        while True:
            f = self.try_frame()
            if f is not None:
                return f
            b = self.sock.recv(262144)
            if not b:
                raise ConnectionError("connection closed")
            self.buf += b

    def recv_message(self):
        """-> (opcode, payload); answers pings; raises Closed on a close."""
        parts, op = [], None
        while True:
            opcode, fin, payload = self.recv_frame()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.closed = True
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode != OP_CONT:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def close(self, code=1000, reason=b""):
        if not self.closed:
            try:
                self.send_frame(OP_CLOSE, struct.pack(">H", code) + reason)
            except OSError:
                pass
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- the stream protocol --------------------------------------------------

    def send_stdin(self, data, offset):
        self.send_frame(OP_BINARY, bytes([STDIN]) + struct.pack(">Q", offset) + data)

    def send_control(self, obj):
        self.send_frame(OP_BINARY, bytes([CONTROL]) + json.dumps(obj).encode())

    def recv_stream(self):
        """-> (channel, offset, payload) for data, (3, None, dict) for control."""
        op, msg = self.recv_message()
        assert op == OP_BINARY, f"server sent opcode {op}"
        ch = msg[0]
        if ch == CONTROL:
            return ch, None, json.loads(msg[1:])
        assert ch in (STDOUT, STDERR), f"server sent channel {ch}"
        return ch, struct.unpack(">Q", msg[1:9])[0], msg[9:]


class Session:
    """Collects a whole exec/attach session: output per channel, hello, exit."""

    def __init__(self, ws):
        self.ws = ws
        self.out = {STDOUT: bytearray(), STDERR: bytearray()}
        self.hello = None
        self.exit = None
        self.stdin_off = 0

    def write(self, data, chunk=65536):
        for i in range(0, len(data), chunk):
            part = data[i : i + chunk]
            self.ws.send_stdin(part, self.stdin_off)
            self.stdin_off += len(part)

    def control(self, **kw):
        self.ws.send_control(kw)

    def pump(self, until=None):
        """Reads until exit (or until(self) is true); returns the exit dict."""
        while self.exit is None:
            if until is not None and until(self):
                return None
            self._take(*self.ws.recv_stream())
        return self.exit

    def _take(self, ch, off, data):
        if ch == CONTROL:
            t = data.get("type")
            if t == "hello":
                self.hello = data
            elif t == "exit":
                self.exit = data
            elif t == "error":
                raise AssertionError(f"stream error: {data}")
        else:
            self.out[ch] += data

    def exchange(self, data, chunk=65536):
        """Full duplex in ONE thread (a Python ssl socket must not be used by
        two threads at once): sends data as stdin, then eof, while reading
        the output; returns the exit dict."""

        def frames():
            off = 0
            for i in range(0, len(data), chunk):
                part = data[i : i + chunk]
                yield self.ws.encode(OP_BINARY, bytes([STDIN]) + struct.pack(">Q", off) + part)
                off += len(part)
            yield self.ws.encode(OP_BINARY, bytes([CONTROL]) + b'{"type":"eof"}')

        gen = frames()
        pending, pos = next(gen), 0
        sock = self.ws.sock
        sock.setblocking(False)
        wouldblock = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
        try:
            while self.exit is None:
                moved = False
                if pending is not None:
                    try:
                        # the same slice on a retry, as OpenSSL wants
                        pos += sock.send(pending[pos : pos + 262144])
                        moved = True
                        if pos == len(pending):
                            pending, pos = next(gen, None), 0
                    except wouldblock:
                        pass
                try:
                    b = sock.recv(262144)
                    if not b:
                        raise ConnectionError("connection closed")
                    self.ws.buf += b
                    moved = True
                except wouldblock:
                    pass
                while self.exit is None:
                    f = self.ws.try_frame()
                    if f is None:
                        break
                    op, fin, payload = f
                    if op == OP_CLOSE:
                        raise Closed(struct.unpack(">H", payload[:2])[0], payload[2:])
                    assert op == OP_BINARY and fin, (op, fin)
                    ch = payload[0]
                    if ch == CONTROL:
                        self._take(ch, None, json.loads(payload[1:]))
                    else:
                        self._take(ch, None, payload[9:])
                if not moved:
                    select.select([sock], [sock] if pending is not None else [], [], 5)
        finally:
            sock.settimeout(60)
        return self.exit

    def finish(self):
        e = self.pump()
        self.ws.close()
        return e


def tls_ws(addr, ctx, path):
    raw = socket.create_connection(addr, timeout=60)
    try:
        s = ctx.wrap_socket(raw, server_hostname=addr[0])
    except BaseException:
        raw.close()
        raise
    try:
        return WebSocket.connect(s, path)
    except BaseException:
        s.close()
        raise


def unix_ws(path_sock, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(str(path_sock))
    try:
        return WebSocket.connect(s, path)
    except BaseException:
        s.close()
        raise

"""The HTTP e2e suite's origin: a loopback HTTP/1.1 server that records exactly what it
received (each request's raw head and decoded body, per connection) and answers by
path. Its own parsing is deliberately simple: it only has to read what a correct
proxy sends, and anything else is recorded as an error for the test to see.

Paths:
  /echo...          200, the request body back (Content-Length), X-Conn: connection no.
  /size/N           200, N bytes of a fixed pattern (Content-Length)
  /stream/N         the same, written in pieces (for N of a GiB)
  /sink             reads a Content-Length body without keeping it; 200, its sha256 in hex
  /chunked/N        200, N pattern bytes, chunked in pieces of at most 1000
  /close/N          200, N pattern bytes delimited by the close (no framing)
  /status/N         status N without a body (204, 304) or with "x" (others)
  /slow/MS          waits MS milliseconds, then 200 "slow"
  /raw/NAME         the bytes RAW[NAME], then the connection closes
  /raw-open/NAME    the bytes RAW[NAME], and the connection stays open for more requests
  /upgrade          101 Switching Protocols, then echoes bytes until EOF
  /location?to=URL  302 with Location: URL (percent-decoded)
  /hints/MS         103 Early Hints; MS milliseconds later a 100, a 102 and the final
                    200 "done" in one write (interim responses, several in one read)
  /interims/N       N "102 Processing" responses, then 200 "done"
  /late/MS          200's head (chunked) alone; MS milliseconds later its body "late"
  /closing/N        as /size/N, then the origin closes the connection
  /once             200 on a connection kept open, which the origin closes, unanswered,
                    when the next request arrives on it (a keep-alive race)
Every response but /close, /raw and /upgrade keeps the connection open.
"""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ThreadedServer  # noqa: E402

LOOKUPD = os.environ.get("LOOKUPD_BIN", "build/release/tools/lookupd")
PATTERN = bytes(range(256)) * 4096


def pattern(n):
    out = bytearray()
    while len(out) < n:
        out += PATTERN[:n - len(out)]
    return bytes(out)


# Bad upstream responses: each must reach the client as 502 (the head is bad) and the
# connection must not be reused.
RAW = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nabc",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "no-status": b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n",
    "http09": b"hello world\r\n\r\n",
    "http2": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "space-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "nul-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "status-1000": b"HTTP/1.1 1000 OK\r\nContent-Length: 0\r\n\r\n",
    "empty": b"",
    "unasked-101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: upgrade\r\n\r\n",
    "h2c-101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
               b"Connection: upgrade\r\n\r\n",
    # The body's framing fails in the bytes that came with the head: nothing went to the
    # client yet, so it can still be told 502.
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "good-then-bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"3\r\nabc\r\n3;=\r\nabc\r\n",
}


class Origin:
    """Records per connection: a list of (head bytes, body bytes) per request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (connection number, head, body) in arrival order
        self.errors = []
        self.server = ThreadedServer(self._handle)
        self.port = self.server.port
        self._next_conn = 0

    @property
    def connections(self):
        return self.server.connections

    def heads(self):
        with self.lock:
            return [h for _, h, _ in self.requests]

    def clear(self):
        with self.lock:
            self.requests.clear()

    def close(self):
        self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self, conn):
        with self.lock:
            self._next_conn += 1
            number = self._next_conn
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(conn)
        close_next = False
        while True:
            head = reader.head()
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            fields = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name.strip().lower(), []).append(value.strip())
            body = b""
            if target.startswith("/refuse/"):
                # An answer before the body, as a server refusing an upload gives: then a
                # close (a reset, with the body unread) or a stall that reads nothing.
                conn.sendall(b"HTTP/1.1 413 X\r\nContent-Length: 4\r\nConnection: close\r\n"
                             b"\r\nbig!")
                with self.lock:
                    self.requests.append((number, head, b""))
                if target == "/refuse/stall":
                    time.sleep(4)
                return
            if target == "/sink":
                digest = hashlib.sha256()
                left = int(fields["content-length"][0])
                while left > 0:
                    piece = reader.some(min(left, 1 << 20))
                    digest.update(piece)
                    left -= len(piece)
                with self.lock:
                    self.requests.append((number, head, b""))
                conn.sendall(b"HTTP/1.1 200 X\r\nContent-Length: 64\r\n\r\n" +
                             digest.hexdigest().encode())
                continue
            if "transfer-encoding" in fields:
                body = reader.chunked()
            elif "content-length" in fields:
                body = reader.exactly(int(fields["content-length"][0]))
            with self.lock:
                self.requests.append((number, head, body))
            if close_next:
                return
            close_next = target == "/once"
            if not self._answer(conn, number, method, target, body):
                return

    def _answer(self, conn, number, method, target, body):
        def send(status, payload=b"", extra=b"", framing=True):
            head = b"HTTP/1.1 %d X\r\nX-Conn: %d\r\n" % (status, number) + extra
            if framing:
                head += b"Content-Length: %d\r\n" % len(payload)
            conn.sendall(head + b"\r\n" + (b"" if method == "HEAD" else payload))

        parts = target.split("?")[0].split("/")
        kind = parts[1] if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        if kind == "echo":
            send(200, body)
        elif kind == "location":
            from urllib.parse import parse_qs
            to = parse_qs(target.split("?", 1)[1])["to"][0]
            send(302, b"", extra=b"Location: %s\r\n" % to.encode())
        elif kind == "size":
            send(200, pattern(int(arg)))
        elif kind == "stream":
            n = int(arg)
            conn.sendall(b"HTTP/1.1 200 X\r\nContent-Length: %d\r\n\r\n" % n)
            piece = PATTERN[:1 << 20]
            while n > 0:
                conn.sendall(piece[:n])
                n -= min(n, len(piece))
        elif kind == "chunked":
            data = pattern(int(arg))
            out = bytearray(b"HTTP/1.1 200 X\r\nX-Conn: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                            % number)
            if method != "HEAD":
                for i in range(0, len(data), 1000):
                    piece = data[i:i + 1000]
                    out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
                out += b"0\r\nX-Trailer: t\r\n\r\n"
            conn.sendall(bytes(out))
        elif kind == "close":
            send(200, pattern(int(arg)), framing=False)
            return False
        elif kind == "status":
            status = int(arg)
            if status in (204, 304):
                conn.sendall(b"HTTP/1.1 %d X\r\nX-Conn: %d\r\n%s\r\n" % (
                    status, number, b"Content-Length: 7\r\n" if status == 304 else b""))
            else:
                send(status, b"x")
        elif kind == "slow":
            time.sleep(int(arg) / 1000)
            send(200, b"slow")
        elif kind == "raw":
            conn.sendall(RAW[arg])
            return False
        elif kind == "raw-open":  # the connection stays open after it: may it be reused?
            conn.sendall(RAW[arg])
        elif kind == "upgrade":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n\r\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    return False
                conn.sendall(data)
        elif kind == "closing":
            send(200, pattern(int(arg)))
            return False
        elif kind == "hints":
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            time.sleep(int(arg) / 1000)
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                         b"HTTP/1.1 200 X\r\nX-Conn: %d\r\nContent-Length: 4\r\n\r\ndone"
                         % number)
        elif kind == "interims":
            conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" * int(arg) +
                         b"HTTP/1.1 200 X\r\nX-Conn: %d\r\nContent-Length: 4\r\n\r\ndone"
                         % number)
        elif kind == "late":
            conn.sendall(b"HTTP/1.1 200 X\r\nX-Conn: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                         % number)
            time.sleep(int(arg) / 1000)
            conn.sendall(b"4\r\nlate\r\n0\r\n\r\n")
        elif kind == "once":
            send(200, b"once")
        else:
            send(404, b"no such path")
        return True


class _Reader:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def _more(self):
        try:
            data = self.conn.recv(1 << 20)
        except OSError:
            data = b""
        self.buf += data
        return bool(data)

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                if self.buf:
                    raise EOFError("head cut short")  # part of a request reached us
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def some(self, most):
        if not self.buf and not self._more():
            raise EOFError("body cut short")
        out, self.buf = self.buf[:most], self.buf[most:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            if not self._more():
                raise EOFError("body cut short")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            if not self._more():
                raise EOFError("chunk line cut short")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def chunked(self):
        out = bytearray()
        while True:
            size = int(self.line().split(b";")[0], 16)
            if size == 0:
                while self.line():
                    pass
                return bytes(out)
            out += self.exactly(size)
            if self.exactly(2) != b"\r\n":
                raise ValueError("chunk without CRLF")


class Lookupd:
    """tools/lookupd on a routes text, started and stopped by PID."""

    def __init__(self, routes_text, extra=(), timeout_ms=5000):
        import tempfile
        from harness import free_port, wait_port
        self.dir = tempfile.mkdtemp(prefix="ringproxy-http-lookupd-")
        path = os.path.join(self.dir, "routes.toml")
        with open(path, "w") as f:
            f.write(routes_text)
        self.port = free_port()
        self.requests = os.path.join(self.dir, "requests.log")
        self._log = open(os.path.join(self.dir, "out.log"), "wb")
        self.proc = subprocess.Popen(
            [LOOKUPD, "--routes", path, "--listen", f"127.0.0.1:{self.port}",
             "--request-log", self.requests, *extra], stdout=self._log,
            stderr=subprocess.STDOUT)
        self.timeout_ms = timeout_ms
        wait_port(self.port)

    def section(self):
        return f"""
[lookup]
servers = ["127.0.0.1:{self.port}"]
timeout_ms = {self.timeout_ms}
connect_timeout_ms = 1000
"""

    def close(self):
        from harness import stop_process
        stop_process(self.proc)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def alice_routes(address, port, protocol="http", default_domain="example.com"):
    """lookupd routes with one account, alice@example.com, on one server."""
    return f"""
default_domain = "{default_domain}"
auth_wait_s = 0

[[domain]]
name = "example.com"
virtual_ips = ["127.0.0.1"]

[[server]]
name = "a"
address = "{address}"
{protocol} = {port}

[[account]]
name = "alice@example.com"
server = "a"
"""


def config(port, origin_ports, *, shards=1, extra="", listener_extra="", protocol="http",
           tls="", upstream_extra="", drain_ms=30000, runtime_extra=""):
    servers = ", ".join(f'"127.0.0.1:{p}"' for p in origin_ports)
    return f"""
[runtime]
shards = {shards}
drain_timeout_ms = {drain_ms}
{runtime_extra}
[log]
level = "info"
{extra}
[[upstream]]
name = "web"
servers = [{servers}]
connect_timeout_ms = 1000
{upstream_extra}
[[listener]]
name = "web"
protocol = "{protocol}"
listen = "127.0.0.1:{port}"
upstream = "web"
{listener_extra}
{tls}
"""


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Response:
    def __init__(self, status, head, body):
        self.status = status
        self.head = head
        self.body = body

    def field(self, name):
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            n, _, v = line.partition(":")
            if n.strip().lower() == name.lower():
                return v.strip()
        return None


class ClientReader:
    """Reads responses off a client socket (Content-Length, chunked, or to EOF)."""

    def __init__(self, sock):
        self.r = _Reader(sock)

    def response(self, head_request=False):
        head = self.r.head()
        if head is None:
            return None
        status = int(head.split(b" ", 2)[1])
        lower = head.lower()
        if head_request or status < 200 or status in (204, 304):
            return Response(status, head, b"")
        if b"\r\ntransfer-encoding: chunked" in lower:
            return Response(status, head, self.r.chunked())
        for line in lower.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                return Response(status, head, self.r.exactly(int(line.split(b":")[1])))
        while self.r._more():
            pass
        body, self.r.buf = self.r.buf, b""
        return Response(status, head, body)

    def eof(self, timeout=10.0):
        """True when the peer closes (or resets) with nothing more to read; False when
        bytes come or `timeout` passes first."""
        if self.r.buf:
            return False
        self.r.conn.settimeout(timeout)
        try:
            data = self.r.conn.recv(1 << 20)
        except socket.timeout:
            return False
        except OSError:
            return True
        self.r.buf += data
        return data == b""

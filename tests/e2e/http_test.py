#!/usr/bin/env python3
"""End-to-end tests of the HTTP reverse proxy: the real daemon between real clients
(raw sockets, Python's http.client, curl) and a recording origin (http_env.Origin).
Run: RINGPROXY_BIN=build/release/tools/ringproxy tests/e2e/http_test.py [test ...]"""
import email.utils
import hashlib
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Proxy, SynDropper, ThreadedServer, check, free_port, read_head,  # noqa: E402
                     hosts_env, recv_all, refused_port, reset_on_close, run_all, run_check,
                     run_config, test, trickle, wait_until)
from http_env import (RAW, ClientReader, Lookupd, Origin, alice_routes, config,  # noqa: E402
                      connect, pattern)


def get(port, path, host="www.example.com", extra=b""):
    return (b"GET %s HTTP/1.1\r\nHost: %s\r\n" % (path.encode(), host.encode()) + extra +
            b"\r\n")


# Malformed or ambiguous requests: (name, bytes, status). None of them may reach the
# origin, and each connection must be closed after the answer.
BAD_REQUESTS = [
    ("HTTP/0.9", b"GET /\r\n\r\n", 400),
    ("no target", b"GET\r\n\r\n", 400),
    ("two spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("fragment in target", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("fragment in absolute target", b"GET http://a#/secret HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("Host with a bare %", b"GET / HTTP/1.1\r\nHost: a%\r\n\r\n", 400),
    ("Host with %zz", b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
    ("Host port over 65535", b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400),
    ("target authority with %zz", b"GET http://a%zz/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("tab in target", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("non-ASCII target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("trailing space", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    ("lower-case version", b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    ("version 2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("version 0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    ("version 1.10", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("relative target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("asterisk on GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("ftp target", b"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("userinfo in target", b"GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("no Host on 1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("empty Host", b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
    ("Host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("Host with slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    ("Host bad port", b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    ("bare LF after request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    ("bare LF after field", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    ("bare LF as the end", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    ("bare CR in field", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400),
    ("control in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400),
    ("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400),
    ("CL and TE", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("differing CLs", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
     b"Content-Length: 4\r\n\r\nabcd", 400),
    ("CL list", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
    ("negative CL", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    ("hex CL", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
    ("overflowing CL", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("TE not chunked last", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("TE identity", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
     400),
    ("TE chunked twice", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    ("TE on HTTP/1.0", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    ("too many empty lines", b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad escape in the path", b"GET /public/%2%65%2%65/admin HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabc\r\n0\r\n\r\n", 400),
    ("overflowing chunk size", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 400),
    ("chunk data too long", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400),
    ("chunk without CRLF", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n", 400),
    ("bad chunk extension", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3;=x\r\nabc\r\n0\r\n\r\n", 400),
    ("bare LF in chunk line", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    ("bad trailer", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\nX : y\r\n\r\n", 400),
    ("encoded CRLF in target", b"GET /a%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: a\r\n\r\n", 403),
    ("unknown expectation", b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: x-magic\r\n"
     b"Content-Length: 1\r\n\r\nx", 417),
    ("CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
    # TRACE would echo the client's cookies back (cross-site tracing): refused, as nginx does.
    ("TRACE", b"TRACE / HTTP/1.1\r\nHost: a\r\nCookie: ZM_AUTH_TOKEN=x\r\n\r\n", 405),
    ("long request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("long field", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 9000 + b"\r\n\r\n", 431),
    ("too many fields", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    ("head too large", b"GET / HTTP/1.1\r\nHost: a\r\n" + (b"X: " + b"y" * 4000 + b"\r\n") * 5 +
     b"\r\n", 431),
    ("body over max_body_bytes", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n"
     b"\r\n", 413),
    ("chunked body over max_body_bytes", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n" + b"ffff\r\n" + b"z" * 0xffff + b"\r\n" +
     b"ffff\r\n" + b"z" * 0xffff + b"\r\n", 413),
]

MAX_BODY = 50000  # under the 64 KiB read before an upstream is chosen


@test
def malformed_requests_get_their_status_and_reach_no_upstream():
    check(len(BAD_REQUESTS) >= 50, f"only {len(BAD_REQUESTS)} cases")
    with Origin() as origin, Proxy(config(free_port(), [origin.port],
                                          listener_extra=f"max_body_bytes = {MAX_BODY}")) as p:
        port = _listen_port(p)
        failures = []
        for name, data, status in BAD_REQUESTS:
            s = connect(port)
            try:
                s.sendall(data)
                reader = ClientReader(s)
                r = reader.response()
                if r is None or r.status != status:
                    failures.append(f"{name}: got {r and r.status}, want {status}")
                    continue
                if r.field("connection") != "close":
                    failures.append(f"{name}: no Connection: close")
                if not reader.eof():
                    failures.append(f"{name}: connection left open")
            finally:
                s.close()
        check(not failures, "\n".join(failures))
        check(origin.heads() == [], f"the origin received {origin.heads()[:3]}")
        check(origin.connections == 0, f"{origin.connections} origin connections")
        def logged():
            log = p.log_text()
            return (log.count("bad request") + log.count("refused with") +
                    log.count("request body")) >= len(BAD_REQUESTS)
        # The line may follow the answer and the close.
        wait_until(logged, timeout=5, what="a log line for each refusal")


def _listen_port(p):
    for line in open(p.config_path):
        if line.startswith("listen ="):
            return int(line.split(":")[-1].strip().strip('"'))
    raise AssertionError("no listen line")


@test
def keep_alive_reuses_one_upstream_connection_for_many_clients():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        # One client connection, 20 requests; then 20 clients one after another.
        s = connect(port)
        reader = ClientReader(s)
        for i in range(20):
            s.sendall(get(port, f"/size/{i * 100}"))
            r = reader.response()
            check(r.status == 200 and r.body == pattern(i * 100), f"request {i}")
        s.close()
        for i in range(20):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/10")
            r = c.getresponse()
            check(r.status == 200 and r.read() == pattern(10), "fresh client")
            c.close()
        check(origin.connections == 1, f"{origin.connections} upstream connections for 40 "
              "requests (want 1: pooled)")


@test
def pipelined_requests_are_answered_in_order():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port)
        paths = ["/size/5000", "/chunked/3000", "/echo", "/status/204", "/size/1"]
        data = b"".join(get(port, p) for p in paths)
        data += b"HEAD /size/77 HTTP/1.1\r\nHost: a\r\n\r\n"
        s.sendall(data)
        reader = ClientReader(s)
        got = [reader.response() for _ in paths]
        head = reader.response(head_request=True)
        check([r.status for r in got] == [200, 200, 200, 204, 200], [r.status for r in got])
        check(got[0].body == pattern(5000) and got[1].body == pattern(3000), "bodies")
        check(head.status == 200 and head.field("content-length") == "77", head.head)
        s.close()


@test
def request_bodies_arrive_byte_exact_and_reframed():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        for size in (0, 1, 65536, 65537, 3 << 20):
            body = os.urandom(size)
            origin.clear()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/echo", body=body)
            r = c.getresponse()
            check(r.status == 200 and r.read() == body, f"CL body of {size}")
            # Content-Length: 0 too (RFC 9110 §8.6; an origin may answer 411 without it).
            check(b"content-length: %d\r\n" % size in origin.heads()[0].lower(),
                  origin.heads()[0])
            c.close()
        # Chunked uploads: small ones reach the origin with a length, large ones chunked.
        for size in (10, 200000):
            body = os.urandom(size)
            origin.clear()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("PUT", "/echo", body=iter([body[:7], body[7:]]),
                      encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
            r = c.getresponse()
            check(r.status == 200 and r.read() == body, f"chunked body of {size}")
            head = origin.heads()[0].lower()
            if size < 65536:
                check(b"content-length: %d\r\n" % size in head and b"transfer-encoding" not in
                      head, head)
            else:
                check(b"transfer-encoding: chunked\r\n" in head and b"content-length" not in
                      head, head)
            c.close()


@test
def response_framings_reach_the_client_intact():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        for path, size in (("/chunked/100000", 100000), ("/close/70000", 70000),
                           ("/size/0", 0)):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", path)
            r = c.getresponse()
            check(r.status == 200 and r.read() == pattern(size), path)
            c.close()
        # An HTTP/1.0 client gets an unframed body delimited by the close.
        s = connect(port)
        s.sendall(b"GET /chunked/5000 HTTP/1.0\r\n\r\n")
        r = ClientReader(s).response()
        check(r.status == 200 and r.body == pattern(5000) and r.field("transfer-encoding") is None,
              r.head)
        s.close()
        # It sent no Host: the origin gets the address the client came to (spec §5.2).
        head = origin.heads()[-1].decode()
        check(f"\r\nHost: 127.0.0.1:{port}\r\n" in head, head)
        # 304 keeps the origin's Content-Length and has no body; the connection goes on.
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(get(port, "/status/304") + get(port, "/size/3"))
        r = reader.response()
        check(r.status == 304 and r.field("content-length") == "7", r.head)
        check(reader.response().body == pattern(3), "after 304")
        s.close()


@test
def bad_upstream_responses_are_502_and_never_reused():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        failures = []
        for name in RAW:
            # The origin keeps the connection open after its bad response: only the
            # proxy's refusal to pool it makes the next request open a new one.
            s = connect(port)
            s.sendall(get(port, f"/raw/{name}" if name == "empty" else f"/raw-open/{name}"))
            r = ClientReader(s).response()
            if r is None or r.status != 502:
                failures.append(f"{name}: {r and r.status}")
            s.close()
            before = origin.connections
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/4")
            if c.getresponse().read() != pattern(4):
                failures.append(f"{name}: the good request after it")
            elif origin.connections != before + 1:
                failures.append(f"{name}: its connection was pooled")
            c.close()
        check(not failures, failures)


def post_reading_the_answer(port, path, body, timeout=15):
    """POSTs `body` while reading whatever comes back, until the proxy closes; the bytes
    read. The proxy may answer and close before it has taken the whole body."""
    s = connect(port, timeout=timeout)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (path, len(body)))
    got = bytearray()
    sent = 0
    s.setblocking(False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, writable, _ = select.select([s], [s] if sent < len(body) else [], [], 0.5)
        if writable:
            try:
                sent += s.send(body[sent:sent + 65536])
            except OSError:
                sent = len(body)  # the proxy closed its side: read what it said
        if readable:
            try:
                data = s.recv(65536)
            except OSError:
                break
            if not data:
                break
            got += data
    s.close()
    return bytes(got)


@test
def an_upstream_answer_before_the_whole_body_reaches_the_client():
    # RFC 9112 §9.5: a 413 sent while the body streams goes to the client, not a 502,
    # whether the upstream then closes or stops reading.
    port = free_port()
    # Far beyond the part read before the upstream is chosen, and beyond what the
    # kernel buffers between the proxy and a stalled origin.
    body = b"u" * (24 << 20)
    with Origin() as origin, Proxy(config(port, [origin.port],
                                          listener_extra="send_timeout_ms = 1000")) as p:
        for mode in ("close", "stall"):
            got = post_reading_the_answer(port, b"/refuse/" + mode.encode(), body)
            check(got.startswith(b"HTTP/1.1 413 X\r\n") and got.endswith(b"\r\n\r\nbig!") and
                  b"connection: close" in got.lower(), f"{mode}: {bytes(got[:200])}")
        p.wait_log(r"end=early-answer", count=2)


@test
def expect_100_continue_is_answered_before_the_body():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])) as p:
        s = connect(port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\n")
        reader = ClientReader(s)
        interim = reader.response()
        check(interim.status == 100, interim.head)
        s.sendall(b"hello")
        r = reader.response()
        check(r.status == 200 and r.body == b"hello", r.head)
        check(b"expect" not in origin.heads()[0].lower(), "Expect was sent on")
        s.close()
        # The access line counts the proxy's own 100 among the bytes the client got.
        out = len(interim.head) + len(r.head) + len(r.body)
        p.wait_log(rf"access http .*target=/echo status=200 in=5 out={out} ")


@test
def interim_responses_reach_http11_clients_and_the_final_one_follows():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])) as proxy:
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(get(port, "/hints/200"))
        r = reader.response()
        check(r.status == 103 and r.field("link") == "</a.css>; rel=preload", r.head)
        check(r.field("content-length") is None, r.head)
        r = reader.response()
        check(r.status == 102, r.head)  # the 100 is the proxy's own to give, not passed on
        r = reader.response()
        check(r.status == 200 and r.body == b"done", r.head)
        # The connection goes on, and so does the upstream one (the final answer came).
        s.sendall(get(port, "/size/3"))
        r = reader.response()
        check(r.status == 200 and r.body == pattern(3), r.head)
        check(origin.connections == 1, f"{origin.connections} upstream connections")
        s.close()
        # An HTTP/1.0 client gets no 1xx (RFC 9110 §15.2).
        s = connect(port)
        s.sendall(b"GET /hints/0 HTTP/1.0\r\n\r\n")
        r = ClientReader(s).response()
        check(r.status == 200 and r.body == b"done", r.head)
        s.close()
        # At most 32 of them: an upstream sending 1xx forever would hold the session.
        for n, status in ((32, 200), (33, 502)):
            s = connect(port)
            s.sendall(b"GET /interims/%d HTTP/1.0\r\n\r\n" % n)
            r = ClientReader(s).response()
            check(r.status == status, f"{n}: {r.head}")
            s.close()
        proxy.wait_log(r"warn .*sent a bad response head: too many interim \(1xx\) responses 502")


@test
def a_response_head_goes_out_before_a_wait_for_its_body():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port)
        s.sendall(get(port, "/late/3000"))
        s.settimeout(2)
        head = s.recv(4096)  # the head, while the origin still holds the body back
        check(head.startswith(b"HTTP/1.1 200 X\r\n"), head)
        s.settimeout(10)
        r = ClientReader(s)
        r.r.buf = head[head.index(b"\r\n\r\n") + 4:]
        check(r.r.chunked() == b"late", "the body")
        s.close()


@test
def an_http10_continue_expectation_gets_no_100():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port)
        s.sendall(b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        s.settimeout(1)
        try:
            early = s.recv(100)
        except socket.timeout:
            early = b""
        check(early == b"", f"answered before the body: {early!r}")
        s.settimeout(10)
        s.sendall(b"hello")
        r = ClientReader(s).response()
        check(r.status == 200 and r.body == b"hello", r.head)
        s.close()


@test
def max_body_bytes_holds_when_the_buffered_start_is_exactly_the_limit():
    port = free_port()
    limit = 65536  # the size of the body start read before an upstream is chosen
    received = []  # all an upstream connection got, to its end

    def record(conn):
        conn.settimeout(10)
        data = b""
        try:
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        received.append(data)

    with ThreadedServer(record) as origin, Proxy(config(port, [origin.port],
                                                       listener_extra=f"max_body_bytes = {limit}")):
        s = connect(port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"%x\r\n" % limit + b"a" * limit + b"\r\n")
        # The proxy has read exactly the limit and sent it on (were the rest read with
        # it, the 413 would come with no upstream connection).
        wait_until(lambda: origin.connections == 1, 10, "the upstream connection")
        try:
            s.sendall(b"2710\r\n" + b"b" * 10000 + b"\r\n0\r\n\r\n")
        except OSError:
            pass  # refused already
        r = ClientReader(s).response()
        check(r is not None and r.status == 413, r and r.head)
        s.close()
        wait_until(lambda: received, 10, "the upstream connection ended")
        # The limit's bytes at most, and the body cut: no byte past it, no last chunk.
        body = received[0].partition(b"\r\n\r\n")[2]
        check(b"b" not in body and body.count(b"a") <= limit and
              not body.endswith(b"0\r\n\r\n"),
              f"the origin took {len(body)} body bytes ending {body[-20:]!r}")


@test
def client_identity_headers_trust_only_configured_proxies():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            'trusted_proxies = ["10.0.0.0/8"]'))):
        s = connect(port)
        s.sendall(get(port, "/echo", extra=b"X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
                      b"Forwarded: for=6.6.6.6\r\nX-Request-ID: spoof\r\n"
                      b"X-Forwarded-Host: evil.test\r\nX-Forwarded-Port: 1\r\n"
                      b"X-Forwarded-Proto: https\r\nX_Forwarded_For: 6.6.6.6\r\n"
                      b"X_Real_IP: 6.6.6.6\r\nx_forwarded_host: evil.test\r\n"))
        r = ClientReader(s).response()
        check(r.status == 200, r.head)
        head = origin.heads()[0].decode()
        check("X-Forwarded-For: 127.0.0.1\r\n" in head and "6.6.6.6" not in head, head)
        check("X-Real-IP: 127.0.0.1\r\n" in head and "spoof" not in head, head)
        check("X-Forwarded-Proto: http\r\n" in head and "https" not in head, head)
        check("evil.test" not in head and "X-Forwarded-Port" not in head, head)
        s.close()
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            'trusted_proxies = ["127.0.0.0/8"]\nrequest_id = false'))):
        s = connect(port)
        s.sendall(get(port, "/echo", extra=b"X-Forwarded-For: 203.0.113.5\r\n"))
        ClientReader(s).response()
        head = origin.heads()[0].decode()
        check("X-Forwarded-For: 203.0.113.5, 127.0.0.1\r\n" in head, head)
        check("X-Real-IP: 203.0.113.5\r\n" in head, head)
        check("X-Forwarded-Proto: http\r\n" in head and "X-Request-ID" not in head, head)
        s.close()
        # A trusted peer's empty list elements name nobody; what it says of its client's
        # scheme, host and port stands; without ids of our own, its request id goes on.
        origin.clear()
        s = connect(port)
        s.sendall(get(port, "/echo", extra=b"X-Forwarded-For: 203.0.113.5,\r\n"
                      b"X-Forwarded-For: ,\r\nX-Forwarded-Proto: https\r\n"
                      b"X-Forwarded-Host: mail.example.com\r\nX-Forwarded-Port: 443\r\n"
                      b"X-Request-ID: lb-1\r\n"))
        ClientReader(s).response()
        head = origin.heads()[0].decode()
        check("X-Forwarded-For: 203.0.113.5, 127.0.0.1\r\n" in head, head)
        check("X-Real-IP: 203.0.113.5\r\n" in head, head)
        check("X-Forwarded-Proto: https\r\n" in head and "X-Forwarded-Proto: http\r\n" not in head,
              head)
        check("X-Forwarded-Host: mail.example.com\r\n" in head, head)
        check("X-Forwarded-Port: 443\r\n" in head and "X-Request-ID: lb-1\r\n" in head, head)
        s.close()


@test
def an_ipv4_client_of_a_dual_stack_listener_is_seen_as_ipv4():
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::", 0))
    except OSError as e:
        print(f"skipped: no IPv6 here ({e})")
        return
    finally:
        probe.close()
    port = free_port()
    with Origin() as origin:
        text = config(port, [origin.port], listener_extra='trusted_proxies = ["127.0.0.0/8"]')
        text = text.replace(f'listen = "127.0.0.1:{port}"', f'listen = "[::]:{port}"')
        with Proxy(text):
            s = connect(port)  # over IPv4: the proxy's socket sees ::ffff:127.0.0.1
            s.sendall(get(port, "/echo", extra=b"X-Forwarded-For: 203.0.113.5\r\n"))
            r = ClientReader(s).response()
            check(r.status == 200, r.head)
            head = origin.heads()[0].decode()
            # The IPv4 CIDR matches it, and the address is written as IPv4.
            check("X-Forwarded-For: 203.0.113.5, 127.0.0.1\r\n" in head, head)
            check("ffff" not in head, head)
            s.close()


@test
def upgrade_becomes_a_tunnel_and_a_refused_one_stays_http():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])) as p:
        s = connect(port)
        # Bytes behind the request head go on to the tunnel (and count in its access line).
        s.sendall(get(port, "/upgrade", extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n") +
                  b"early")
        reader = ClientReader(s)
        r = reader.response()
        check(r.status == 101 and r.field("upgrade") == "websocket", r.head)
        s.settimeout(10)
        while len(reader.r.buf) < 5:
            reader.r.buf += s.recv(1 << 20)
        check(reader.r.buf[:5] == b"early", reader.r.buf)
        reader.r.buf = reader.r.buf[5:]
        moved = 5
        for n in (1, 1000, 200000):
            data = os.urandom(n)
            s.sendall(data)
            got = b""
            s.settimeout(10)
            while len(got) < n:
                got += reader.r.buf or s.recv(1 << 20)
                reader.r.buf = b""
            check(got == data, f"tunnel echo of {n}")
            moved += n
        s.close()
        p.wait_log(rf"access http .*target=/upgrade status=101 in={moved} "
                   rf"out={len(r.head) + moved} ")
        # The origin answers an Upgrade request with a plain 200: it stays HTTP.
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(get(port, "/size/9", extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        r = reader.response()
        check(r.status == 200 and r.body == pattern(9), r.head)
        s.sendall(get(port, "/size/2"))
        check(reader.response().body == pattern(2), "HTTP after a refused upgrade")
        s.close()


@test
def an_h2c_upgrade_is_not_tunnelled():
    # Tunnelled, h2c would carry requests past every check of the proxy (h2c smuggling).
    # The origin's /upgrade answers 101 whatever it is asked: unasked, that is a 502.
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        for extra in (b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                      b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n",
                      b"Connection: Upgrade\r\nUpgrade: websocket\r\n",
                      # Two fields are one list ("h2c, websocket"): not a WebSocket alone.
                      b"Connection: Upgrade\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n"):
            version = (b"HTTP/1.0" if extra.count(b"Upgrade:") == 1 and b"websocket" in extra
                       else b"HTTP/1.1")  # 1.0: RFC 9110 §7.8
            s = connect(port)
            s.sendall(get(port, "/upgrade", extra=extra).replace(b"HTTP/1.1", version, 1))
            r = ClientReader(s).response()
            check(r.status == 502, f"{version} {extra}: {r.head}")
            head = origin.heads()[-1].decode()
            fields = [line.lower() for line in head.split("\r\n")[1:]]
            check(not any(f.startswith(("upgrade:", "http2-settings:")) or
                          (f.startswith("connection:") and "upgrade" in f) for f in fields), head)
            s.close()
        # A WebSocket asked for, another protocol switched to: not tunnelled either.
        s = connect(port)
        s.sendall(get(port, "/raw/h2c-101",
                      extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        r = ClientReader(s).response()
        check(r.status == 502, f"a 101 to h2c: {r.head}")
        s.close()


@test
def upstream_failures_are_502_503_504():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [refused_port()])):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/size/1")
        check(c.getresponse().status == 502, "connect refused")
    # The connect times out (504, as nginx).
    port = free_port()
    with SynDropper() as blackhole, Proxy(config(port, [blackhole.port])):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/size/1")
        status = c.getresponse().status
        check(status == 504, f"connect timeout: {status}")
    # The proxy's own failure (no descriptor for the upstream socket) is 503: its
    # descriptor limit leaves room for the client's connection and nothing more.
    if os.environ.get("RINGPROXY_SANITIZED") == "1":
        print("skipped the 503 case: the sanitizers need descriptors of their own")
    else:
        port = free_port()
        with Origin() as origin, Proxy(config(port, [origin.port])) as p:
            used = {int(fd) for fd in os.listdir(f"/proc/{p.pid}/fd")}
            lowest_free = min(set(range(len(used) + 1)) - used)
            saved = resource.prlimit(p.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (lowest_free + 1, saved[1]))
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/size/1")
                r = c.getresponse()
                check(r.status == 503 and b"Service Unavailable" in r.read(), f"{r.status}")
                c.close()
            finally:
                resource.prlimit(p.pid, resource.RLIMIT_NOFILE, saved)
            check(not origin.requests, "a request reached the origin")
    # A TLS upstream that never answers the handshake: its deadline is a timeout too.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connects complete in the backlog; nothing ever answers
    port = free_port()
    tls = '[upstream.tls]\nverify = false\nhandshake_timeout_ms = 300\n'
    with Proxy(config(port, [silent.getsockname()[1]], upstream_extra=tls)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/size/1")
        status = c.getresponse().status
        check(status == 504, f"upstream TLS handshake timeout: {status}")
    silent.close()
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            "upstream_timeout_ms = 300"))) as p:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/slow/2000")
        r = c.getresponse()
        check(r.status == 504, f"slow upstream: {r.status}")
        p.wait_log(r"gave no response head: timeout 504")
    # An upstream that stops taking the request body: the send timeout is 504 as well.
    # Spliced (the default for a large body) and copied, where the last write of the
    # body may be the one that times out.
    stalled = SilentOrigin(read_body=False)
    for relay in ("auto", "copy"):
        port = free_port()
        with Proxy(config(port, [stalled.port], listener_extra=(
                f'send_timeout_ms = 300\nrelay = "{relay}"'))) as p:
            for size in (24 << 20, (8 << 20) + 4096):
                got = post_reading_the_answer(port, b"/upload", b"b" * size)
                check(got.startswith(b"HTTP/1.1 504 "), f"{relay} {size}: {got[:100]!r}")
            p.wait_log(r"took no request bytes for 300 ms: 504", count=2)
    stalled.close()
    # Configured pages, and Zimbra's error handler redirect.
    with tempfile.TemporaryDirectory() as d:
        page = os.path.join(d, "502.html")
        with open(page, "w") as f:
            f.write("<html>mailbox unreachable</html>\n")
        port = free_port()
        with Proxy(config(port, [refused_port()], listener_extra=f'error_page_502 = "{page}"')):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/1")
            r = c.getresponse()
            check(r.status == 502 and r.read() == b"<html>mailbox unreachable</html>\n" and
                  r.getheader("content-type") == "text/html", "the configured 502 page")
        dead = refused_port()
        handler = 'error_handler_url = "https://www.example.com/zmerror?lang=en"'
        # The server's address, as nginx's $upstream_addr: not its configured options.
        text = config(port, [dead], listener_extra=handler).replace(
            f'"127.0.0.1:{dead}"', f'"127.0.0.1:{dead} weight=2"')
        with Proxy(text) as p:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/1")
            r = c.getresponse()
            check(r.status == 302 and r.getheader("location") ==
                  f"https://www.example.com/zmerror?lang=en&err=502&up=127.0.0.1:{dead}",
                  f"{r.status} {r.getheader('location')}")
            p.wait_log(rf"access http .*upstream=127\.0\.0\.1:{dead} ")


class SilentOrigin(ThreadedServer):
    """Reads a request head on each connection and never answers; records how long each
    connection stayed open after its request arrived (None: past 20 s)."""

    def __init__(self, read_body=True):
        self.requests = 0
        self.held = []
        self.read_body = read_body
        self.done = threading.Event()
        super().__init__(self._one)

    def close(self):
        self.done.set()
        super().close()

    def _one(self, c):
        if not read_head(c):
            return
        self.requests += 1
        if not self.read_body:  # takes no more bytes: the proxy's sends stall
            self.done.wait(20)
            return
        start = time.monotonic()
        c.settimeout(20)
        try:
            while c.recv(4096):
                pass
            self.held.append(time.monotonic() - start)
        except OSError:
            self.held.append(None)


@test
def a_client_that_leaves_before_the_answer_frees_the_upstream_and_logs_499():
    # A long poll (ActiveSync, EWS) whose client went away must not hold its upstream
    # connection for the whole upstream timeout: nginx drops it and logs 499.
    origin = SilentOrigin()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "access.log")
        port = free_port()
        with Proxy(config(port, [origin.port],
                          extra=f'access_file = "{path}"\naccess_format = "json"',
                          listener_extra="upstream_timeout_ms = 30000")) as p:
            for n, how in enumerate(("FIN", "RST", "half-close", "RST after more bytes",
                                     "FIN after a spliced body"), start=1):
                s = connect(port)
                if how == "FIN after a spliced body":  # 1 MiB: spliced, the receive paused
                    body = b"b" * (1 << 20)
                    s.sendall(b"POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\n"
                              b"Host: mail.example.com\r\nContent-Length: %d\r\n\r\n"
                              % len(body) + body)
                else:
                    s.sendall(b"GET /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\n"
                              b"Host: mail.example.com\r\n\r\n")
                wait_until(lambda: origin.requests == n, what=f"request {n} upstream")
                if how == "FIN after a spliced body":
                    time.sleep(0.3)  # the body is out; the proxy waits for the answer
                    s.close()
                elif how == "RST after more bytes":  # received, never taken: still gone
                    s.sendall(b"GET /next HTTP/1.1\r\n")
                    time.sleep(0.1)
                    reset_on_close(s)
                    s.close()
                elif how == "RST":
                    reset_on_close(s)
                    s.close()
                elif how == "half-close":
                    s.shutdown(socket.SHUT_WR)
                else:
                    s.close()
                wait_until(lambda: len(origin.held) == n, timeout=5,
                           what=f"the upstream connection closed after the client's {how}")
                check(origin.held[-1] is not None and origin.held[-1] < 3,
                      f"{how}: upstream held {origin.held[-1]}")
                if how == "half-close":
                    check(s.recv(100) == b"", "a half-closed client gets no answer, only the close")
                    s.close()
                wait_until(lambda: os.path.exists(path) and
                           len(open(path).read().splitlines()) == n, what=f"access line {n}")
                rec = json.loads(open(path).read().splitlines()[-1])
                check(rec["status"] == 499 and rec["end"] == "client-closed", str(rec))
            p.wait_log("closed the connection while upstream")
        # Over HTTPS: the client's socket closes without close_notify.
        from tls_env import name, pki
        port = free_port()
        with Proxy(config(port, [origin.port], protocol="https", tls=https_tables(pki()),
                          listener_extra="upstream_timeout_ms = 30000")):
            ctx = ssl.create_default_context(cafile=os.path.join(pki(), "ca.pem"))
            s = ctx.wrap_socket(connect(port), server_hostname=name(3))
            s.sendall(b"GET /poll HTTP/1.1\r\nHost: mail.example.com\r\n\r\n")
            wait_until(lambda: origin.requests == 6, what="the HTTPS request upstream")
            s.close()
            wait_until(lambda: len(origin.held) == 6, timeout=5,
                       what="the upstream connection closed after the HTTPS client left")
            # Most clients close with close_notify, then FIN: that record is no request.
            s = ctx.wrap_socket(connect(port), server_hostname=name(3))
            s.sendall(b"GET /poll HTTP/1.1\r\nHost: mail.example.com\r\n\r\n")
            wait_until(lambda: origin.requests == 7, what="the second HTTPS request upstream")
            s.setblocking(False)
            try:
                s.unwrap()  # sends close_notify; the proxy sends none back yet
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            s.shutdown(socket.SHUT_WR)
            wait_until(lambda: len(origin.held) == 7, timeout=5,
                       what="the upstream connection closed after close_notify and FIN")
            check(origin.held[-1] is not None and origin.held[-1] < 3,
                  f"close_notify: upstream held {origin.held[-1]}")
            s.close()
        # A client that pipelined its next request before its FIN is still there (as
        # for nginx): it gets the answer, here the upstream timeout's 504.
        port = free_port()
        with Proxy(config(port, [origin.port], listener_extra="upstream_timeout_ms = 300")):
            s = connect(port)
            req = b"GET /a HTTP/1.1\r\nHost: mail.example.com\r\n\r\n"
            s.sendall(req + req)
            s.shutdown(socket.SHUT_WR)
            check(ClientReader(s).response().status == 504, "the pipelining client was dropped")
            s.close()
    origin.close()


@test
def a_pooled_connection_the_origin_closed_is_retried_for_idempotent_requests():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        # Each /once leaves its pooled connection alive-looking; the origin closes it
        # unanswered as the next request arrives, which must still succeed.
        # WebDAV's safe reads (CalDAV/CardDAV sync) are sent again as GET is.
        for i, method in enumerate(("GET", "GET", "PROPFIND", "REPORT", "GET")):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request(method, "/once")
            r = c.getresponse()
            check(r.status == 200 and r.read() == b"once", f"request {i} {method}: {r.status}")
            c.close()
        check(origin.connections == 5, f"{origin.connections} connections")
        check(len(origin.heads()) == 9, f"{len(origin.heads())} requests reached the origin")
        # A POST is not sent twice: the client gets 502.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/echo", body=b"once only")
        check(c.getresponse().status == 502, "a POST was retried")
        check(sum(1 for h in origin.heads() if h.startswith(b"POST")) == 1, "POSTs sent")


@test
def a_request_sent_again_after_a_failed_send_keeps_the_client_connection():
    # The first server takes a few KiB of the body, then resets: the PUT (idempotent, its
    # body read whole) goes to the next server. What failed upstream never reached the
    # client, so its connection stays open. (Where the reset makes the proxy's send fail,
    # the retry used to close it; loopback's large send buffers take the whole body, so
    # here the failure is seen in the answer's read.)
    bad = socket.socket()
    bad.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    bad.bind(("127.0.0.1", 0))
    bad.listen(8)

    def take_then_reset():
        try:
            conn, _ = bad.accept()
        except OSError:
            return
        bad.close()  # later connects are refused: the next request goes to the good one
        time.sleep(0.3)
        reset_on_close(conn)
        conn.close()
    taker = threading.Thread(target=take_then_reset, daemon=True)
    taker.start()
    body = b"x" * 60000
    try:
        with Origin() as good:
            port = free_port()
            text = config(port, [bad.getsockname()[1], good.port],
                          upstream_extra="max_fails = 0")
            with Proxy(text) as p:
                s = connect(port)
                s.sendall(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
                reader = ClientReader(s)
                r = reader.response()
                check(r.status == 200 and r.body == body, f"PUT: {r.status}")
                p.wait_log(r"trying another server")
                check(r.field("connection") != "close", r.head.decode())
                s.sendall(get(port, "/size/1"))
                r = reader.response()
                check(r is not None and r.status == 200, "a second request on the connection")
                s.close()
    finally:
        bad.close()
        taker.join(timeout=5)


@test
def a_server_that_drops_new_connections_unanswered_is_passed_over_for_idempotent_requests():
    # As nginx's proxy_next_upstream error: a new connection that closes or resets before
    # any answer sends the request on to the next server when nothing went to the client
    # and the request may be sent twice; the failing server counts against max_fails.
    def drop(conn):  # reads the request, answers nothing; closes or resets
        head = read_head(conn)
        if b"reset" in head:
            reset_on_close(conn)

    def reset_at_once(conn):  # resets before reading: the proxy's send may fail too
        reset_on_close(conn)
    with ThreadedServer(drop) as bad, Origin() as good:
        port = free_port()
        with Proxy(config(port, [bad.port, good.port])) as p:
            for path in ("/size/1", "/size/1?reset", "/size/1", "/size/1"):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", path)
                r = c.getresponse()
                check(r.status == 200 and r.read() == pattern(1), f"GET {path}: {r.status}")
                c.close()
            # max_fails = 1: after its first failure the server is left out for
            # fail_timeout_ms, so it saw one request.
            check(bad.connections == 1, f"the failing server got {bad.connections} connections")
            p.wait_log(r"upstream 127\.0\.0\.1:%d eof before answering; trying another server"
                       % bad.port)
        # Never marked down (max_fails = 0): a reset is passed over too, and a POST is not
        # sent twice.
        port = free_port()
        with Proxy(config(port, [bad.port, good.port], upstream_extra="max_fails = 0")) as p:
            for _ in range(4):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/size/1?reset")
                check(c.getresponse().status == 200, "GET after a reset")
                c.close()
            p.wait_log(r"error before answering; trying another server")
            statuses = []
            for _ in range(2):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/echo", body=b"once only")
                statuses.append(c.getresponse().status)
                c.close()
            check(sorted(statuses) == [200, 502], f"POSTs: {statuses}")
        # max_fails = 2: failures after a successful connect add up (a connect alone does
        # not clear them; an answer does), so the server is left out after two.
        port = free_port()
        with Proxy(config(port, [bad.port, good.port], upstream_extra="max_fails = 2")):
            before = bad.connections
            for _ in range(8):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/size/1")
                check(c.getresponse().status == 200, "GET with max_fails = 2")
                c.close()
            check(bad.connections - before == 2, f"tries of the failing server: "
                  f"{bad.connections - before}")
    with ThreadedServer(reset_at_once) as bad, Origin() as good:
        port = free_port()
        with Proxy(config(port, [bad.port, good.port], upstream_extra="max_fails = 0")):
            statuses = []
            for _ in range(12):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/size/1")
                statuses.append(c.getresponse().status)
                c.close()
            check(statuses == [200] * 12, f"a server that resets at once: {statuses}")
    # Every server fails: 502, each tried once.
    with ThreadedServer(drop) as bad1, ThreadedServer(drop) as bad2:
        port = free_port()
        with Proxy(config(port, [bad1.port, bad2.port])) as p:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/1")
            check(c.getresponse().status == 502, "all servers failing")
            check(bad1.connections == 1 and bad2.connections == 1,
                  f"tries: {bad1.connections}, {bad2.connections}")
            p.wait_log(r"every server of 'web' failed this request")



@test
def a_server_that_drops_requests_that_cannot_be_sent_twice_still_counts_as_failing():
    # A POST whose new connection closes or resets unanswered is not sent again (502),
    # but the server failed all the same: it counts against max_fails (1 here), as in
    # nginx, and the POSTs after it go to the healthy server.
    def drop(conn):
        head = read_head(conn)
        if b"reset" in head:
            reset_on_close(conn)

    with ThreadedServer(drop) as bad, Origin() as good:
        for path in ("/echo", "/echo?reset"):
            port = free_port()
            with Proxy(config(port, [bad.port, good.port])) as p:
                before = bad.connections
                statuses = []
                for _ in range(6):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    c.request("POST", path, body=b"once only")
                    statuses.append(c.getresponse().status)
                    c.close()
                check(statuses.count(502) == 1 and statuses.count(200) == 5,
                      f"POST {path}: {statuses}")
                check(bad.connections - before == 1,
                      f"POST {path}: the failing server got {bad.connections - before} requests")
                p.wait_log(r"upstream 127\.0\.0\.1:%d gave no response head" % bad.port)


@test
def a_server_whose_connect_failed_is_not_tried_again_by_the_same_requests_failover():
    # As nginx: each server is tried once per request. With ip_hash the plan is the same
    # each time: R (refuses), B (drops the request), G. B's failure plans again without
    # B; R refused this request already, so G comes next, not R a second time.
    def ip_hash_plan(address, n):  # route/balancer.cc, IpHashChain then ring order
        h, plan = 89, []
        for _ in range(20):
            for b in socket.inet_aton(address):
                h = (h * 113 + b) % 6271
            if h % n not in plan:
                plan.append(h % n)
        return plan + [(plan[0] + i) % n for i in range(n) if (plan[0] + i) % n not in plan]

    def drop(conn):
        read_head(conn)

    with ThreadedServer(drop) as bad, Origin() as good:
        refused = refused_port()
        ports = [0] * 3
        for index, server in zip(ip_hash_plan("127.0.0.1", 3), [refused, bad.port, good.port]):
            ports[index] = server  # tried in the order R, B, G
        port = free_port()
        extra = 'balance = "ip_hash"\nmax_fails = 0'
        with Proxy(config(port, ports, upstream_extra=extra)) as p:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/1")
            r = c.getresponse()
            check(r.status == 200 and r.read() == pattern(1), f"GET: {r.status}")
            c.close()
            p.wait_log(r"eof before answering; trying another server")
            tries = len(re.findall(r"upstream 127\.0\.0\.1:%d \(web\) connect failed" % refused,
                                   p.log_text()))
            check(tries == 1, f"the refusing server was tried {tries} times for one request")
            check(bad.connections == 1, f"the dropping server got {bad.connections} connections")

@test
def reloads_do_not_pile_up_idle_upstream_connections():
    # A pooled connection holds its generation (config, route stack, TLS contexts):
    # after a reload the old generation's idle connections go.
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            "upstream_idle_timeout_ms = 600000"))) as p:
        def one_request():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/10")
            r = c.getresponse()
            check(r.status == 200 and len(r.read()) == 10, f"status {r.status}")
            c.close()
        one_request()
        time.sleep(0.2)
        fds = len(os.listdir(f"/proc/{p.pid}/fd"))
        for i in range(10):
            p.signal(signal.SIGHUP)
            p.wait_log(r"reload done", count=i + 1)
            one_request()
        time.sleep(0.2)
        now = len(os.listdir(f"/proc/{p.pid}/fd"))
        check(now <= fds + 1, f"descriptors {fds} before 10 reloads, {now} after")


@test
def a_pooled_connection_closed_after_a_spliced_body_is_not_reused():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(get(port, "/closing/1000000"))  # spliced: the upstream receive pauses
        r = reader.response()
        check(r.status == 200 and r.body == pattern(1000000), r.head)
        time.sleep(0.3)  # the origin's FIN has arrived on the pooled connection
        # Not replayable: a reuse of the dead connection would be a 502.
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        r = reader.response()
        check(r.status == 200 and r.body == b"hello", r.head)
        check(origin.connections == 2, f"{origin.connections} upstream connections")
        s.close()


@test
def an_upstream_trickling_its_response_head_gets_504_at_the_deadline():
    # upstream_timeout_ms bounds the whole head, not each read of it.
    def slow_head(conn):
        read_head(conn)
        trickle(conn, b"HTTP/1.1 200 OK\r\nX-A: ", b"a", 40, 0.1)
    with ThreadedServer(slow_head) as up:
        port = free_port()
        with Proxy(config(port, [up.port], listener_extra="upstream_timeout_ms = 1000")):
            s = connect(port)
            start = time.monotonic()
            s.sendall(get(port, "/x"))
            r = ClientReader(s).response()
            took = time.monotonic() - start
            check(r.status == 504 and took < 2.5, f"{r.status} after {took:.1f}s")
            s.close()


@test
def timeouts_close_slow_clients_without_slowing_others():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            "header_timeout_ms = 500\nbody_timeout_ms = 500\nkeepalive_timeout_ms = 700"))) as p:
        slow_head = connect(port)
        slow_head.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        slow_body = connect(port)
        slow_body.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        idle = connect(port)
        start = time.monotonic()
        # Others are served meanwhile.
        for _ in range(20):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/size/100")
            check(c.getresponse().read() == pattern(100), "served while others stall")
            c.close()
        check(time.monotonic() - start < 0.5, "fast clients were held up")
        r = ClientReader(slow_head).response()
        check(r.status == 408, f"header timeout: {r.status}")
        r = ClientReader(slow_body).response()
        check(r.status == 408, f"body timeout: {r.status}")
        p.wait_log(r"access http .*target=/echo status=408 in=3 ")  # the part that came
        check(ClientReader(idle).eof(timeout=5), "idle keep-alive connection kept open")
        check(time.monotonic() - start < 3, "timeouts were late")
        # Neither cut request reached the origin, not even in part (the origin records
        # a request only whole, and counts one cut short, head or body, as an error).
        heads = origin.heads()
        check(len(heads) == 20 and all(h.startswith(b"GET /size/100 ") for h in heads) and
              not origin.server.errors, f"a cut request reached the origin: {heads[-1:]}, "
              f"{origin.server.errors}")


@test
def an_empty_line_after_a_request_leaves_the_connection_idle():
    # Legacy clients send CRLF after a POST body (RFC 9112 §2.2: ignored). It begins no
    # request: no 408 at the header deadline, no 400 at the close, and a next request
    # behind it is served.
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=(
            "header_timeout_ms = 300\nkeepalive_timeout_ms = 1500"))) as p:
        post = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\n"
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(post)
        check(reader.response().body == b"ab", "the POST")
        check(reader.eof(timeout=5), "an answer to the empty line")
        s.close()
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(post + b"\r\n" + get(port, "/size/3"))
        check(reader.response().body == b"ab" and reader.response().body == pattern(3),
              "the request behind the empty lines")
        s.shutdown(socket.SHUT_WR)
        check(reader.eof(timeout=5), "an answer to the close")
        s.close()
        check("bad request" not in p.log_text(), p.log_text())


@test
def drain_closes_idle_keep_alive_connections_and_finishes_busy_ones():
    port = free_port()
    with Origin() as origin:
        p = Proxy(config(port, [origin.port], drain_ms=10000))
        idle = connect(port)
        idle.sendall(get(port, "/size/1"))
        ClientReader(idle).response()
        busy = connect(port)
        busy.sendall(get(port, "/slow/500"))
        time.sleep(0.1)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        reader = ClientReader(busy)
        r = reader.response()
        check(r.status == 200 and r.body == b"slow" and r.field("connection") == "close",
              r.head)
        check(ClientReader(idle).eof(timeout=5), "idle connection not closed at drain")
        check(p.wait_exit(timeout=10) == 0, "exit code")
        check(time.monotonic() - start < 5, "drain waited for idle connections")
        p.stop()


@test
def drain_answers_the_first_request_of_a_connection_accepted_before_it():
    # Accepted before SIGTERM, its first request sent after: it was on its way, and is
    # answered (a connection that sends nothing is closed after a linger, not kept).
    # Over HTTPS too: there the wait is under TLS, after the handshake.
    import ssl
    from tls_env import name, pki
    d = pki()
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    for protocol in ("http", "https"):
        port = free_port()

        def open_one():
            s = connect(port)
            return ctx.wrap_socket(s, server_hostname=name(3)) if protocol == "https" else s
        with Origin() as origin:
            tls = https_tables(d) if protocol == "https" else ""
            p = Proxy(config(port, [origin.port], drain_ms=10000, protocol=protocol, tls=tls))
            fresh = open_one()
            silent = open_one()
            time.sleep(0.3)  # both accepted: their sessions wait for a first request
            start = time.monotonic()
            p.signal(signal.SIGTERM)
            time.sleep(0.3)  # the drain has reached the sessions
            try:
                fresh.sendall(get(port, "/size/3"))
                r = ClientReader(fresh).response()
            except OSError as e:
                r = e
            check(not isinstance(r, OSError) and r is not None and r.status == 200 and
                  r.body == pattern(3) and r.field("connection") == "close",
                  f"{protocol}: the first request was lost: {r}")
            check(ClientReader(silent).eof(timeout=5), f"{protocol}: the silent one was kept")
            check(p.wait_exit(timeout=15) == 0, "exit code")
            took = time.monotonic() - start
            check(took < 5, f"{protocol}: the drain waited {took:.1f}s for a silent connection")
            p.stop()


@test
def a_listeners_upstream_keepalive_holds_when_another_filled_the_pool():
    # Two listeners share an upstream group, with 64 and 2 idle connections allowed: the
    # pool of that server is one, and the second listener's returns trim it to its 2.
    def established(origin_port):
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{origin_port} )"],
                             capture_output=True, text=True).stdout
        return len([line for line in out.splitlines() if line.strip()])

    port, port2 = free_port(), free_port()
    second = (f'[[listener]]\nname = "second"\nprotocol = "http"\n'
              f'listen = "127.0.0.1:{port2}"\nupstream = "web"\nupstream_keepalive = 2\n')
    with Origin() as origin:
        text = config(port, [origin.port], listener_extra="upstream_keepalive = 64\n" + second)
        with Proxy(text):
            def slow(_):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/slow/300")
                c.getresponse().read()
                c.close()
            with ThreadPoolExecutor(max_workers=20) as pool:
                list(pool.map(slow, range(20)))
            wait_until(lambda: established(origin.port) >= 20, what="20 pooled connections")
            for _ in range(5):
                c = http.client.HTTPConnection("127.0.0.1", port2, timeout=10)
                c.request("GET", "/size/1")
                c.getresponse().read()
                c.close()
            wait_until(lambda: established(origin.port) <= 2, timeout=3,
                       what=f"the pool trimmed to 2 (now {established(origin.port)})")


@test
def a_connection_served_from_the_backlog_during_a_drain_is_not_kept_alive():
    port = free_port()
    with Origin() as origin:
        p = Proxy(config(port, [origin.port], drain_ms=10000,
                         runtime_extra="max_connections_per_shard = 1"))
        busy = connect(port)
        busy.sendall(get(port, "/slow/1000"))
        time.sleep(0.2)
        waiting = connect(port)  # left in the kernel's backlog: the shard is full
        waiting.sendall(get(port, "/size/3"))
        silent = connect(port)  # in the backlog too, and never sends a request
        time.sleep(0.2)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        r = ClientReader(busy).response()
        check(r.status == 200 and r.field("connection") == "close", r.head)
        r = ClientReader(waiting).response()
        check(r.status == 200 and r.body == pattern(3) and r.field("connection") == "close",
              r.head)
        # Closed by the proxy (asked before its exit, which would close it anyway).
        check(ClientReader(silent).eof(timeout=5), "the silent connection was left open")
        check(p.wait_exit(timeout=15) == 0, "exit code")
        took = time.monotonic() - start
        check(took < 5, f"the drain waited {took:.1f}s for a connection it served last")
        p.stop()


@test
def a_reload_that_removes_a_listener_drains_its_sessions():
    port, port2 = free_port(), free_port()
    second = (f'[[listener]]\nname = "second"\nprotocol = "http"\n'
              f'listen = "127.0.0.1:{port2}"\nupstream = "web"\n')
    with Origin() as origin, Proxy(config(port, [origin.port], extra=second)) as p:
        s = connect(port2)
        reader = ClientReader(s)
        s.sendall(get(port2, "/size/1"))
        check(reader.response().status == 200, "a request on the second listener")
        p.write_config(config(port, [origin.port]))
        p.signal(signal.SIGHUP)
        p.wait_log("reload done")
        check(reader.eof(timeout=5), "an idle session of the removed listener stayed open")
        c = connect(port)
        c.sendall(get(port, "/size/2"))
        check(ClientReader(c).response().body == pattern(2), "the remaining listener serves")
        c.close()


@test
def a_connection_in_a_removed_listeners_backlog_is_answered_once_and_closed():
    # The removed listener serves its backlog before its socket closes (no reset of a
    # completed handshake); those sessions must be drained like the others, not kept alive.
    port, port2 = free_port(), free_port()
    second = (f'[[listener]]\nname = "second"\nprotocol = "http"\n'
              f'listen = "127.0.0.1:{port2}"\nupstream = "web"\n')
    one = "max_connections_per_shard = 1"  # B waits in the backlog while A is served
    with Origin() as origin, Proxy(config(port, [origin.port], extra=second,
                                          runtime_extra=one)) as p:
        a = connect(port2)
        ra = ClientReader(a)
        a.sendall(get(port2, "/size/1"))
        check(ra.response().status == 200, "a request on the second listener")
        b = connect(port2)
        time.sleep(0.3)
        p.write_config(config(port, [origin.port], runtime_extra=one))
        p.signal(signal.SIGHUP)
        p.wait_log("reload done")
        check(ra.eof(timeout=5), "the idle session of the removed listener stayed open")
        rb = ClientReader(b)
        b.sendall(get(port2, "/size/2"))
        r = rb.response()
        check(r is not None and r.body == pattern(2), "the backlog connection was not answered")
        check((r.field("connection") or "").lower() == "close", f"kept alive: {r.head!r}")
        check(rb.eof(timeout=5), "the backlog connection stayed open")


@test
def a_stop_that_comes_as_the_upstream_connect_completes_is_kept():
    # A connect that completed in the turn the stop came was not cancelled, and the
    # session went on to send its request and wait upstream_timeout_ms (20 s here) for
    # an answer, holding the drain. Many requests reach their connect together, about
    # when the drain deadline stops them: the proxy must still exit at the deadline.
    # 1500 clients: enough that some reach their connect in the turn of the stop (three
    # runs of three hung 20 s before the fix). They need the descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    clients_n = min(1500, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
    origin = socket.socket()  # accepts in the kernel's backlog, never answers
    origin.bind(("127.0.0.1", 0))
    origin.listen(4096)
    port = free_port()
    text = config(port, [origin.getsockname()[1]], drain_ms=500,
                  listener_extra="upstream_timeout_ms = 20000")
    p = Proxy(text)
    clients = []
    try:
        for _ in range(clients_n):
            c = connect(port)
            c.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n")
            clients.append(c)  # the body's byte is held back
        time.sleep(0.3)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.49)
        for c in clients:  # the bodies arrive around the 500 ms deadline
            try:
                c.send(b"x")
            except OSError:
                pass
        check(p.wait_exit(timeout=30) == 0, "exit code")
        took = time.monotonic() - start
        check(took < 5, f"the proxy took {took:.1f}s to stop (sessions waited for the upstream)")
    finally:
        p.stop()
        for c in clients:
            c.close()
        origin.close()


@test
def stop_ends_sessions_blocked_at_every_wait():
    """After the drain deadline every session is stopped wherever it waits: a request
    head or body, an upstream connect, a response head, a client that does not read, a
    tunnel. Each one's client sees the connection end, and the daemon exits."""
    # An upstream whose accept queue is full: connects to it wait (SYNs are dropped).
    stuck = SynDropper(fillers=3)
    groups = f"""
[[upstream]]
name = "stuck"
servers = ["127.0.0.1:{stuck.port}"]
connect_timeout_ms = 60000
"""
    location = """
[[listener.location]]
prefix = "/stuck/"
upstream = "stuck"
"""
    port = free_port()
    with Origin() as origin:
        p = Proxy(config(port, [origin.port], drain_ms=300, upstream_extra=groups,
                         tls=location, listener_extra=(
                             "header_timeout_ms = 60000\nbody_timeout_ms = 60000\n"
                             "upstream_timeout_ms = 60000")))
        try:
            waits = {}
            waits["head"] = connect(port)
            waits["head"].sendall(b"GET / HTTP/1.1\r\nHo")
            waits["body"] = connect(port)
            waits["body"].sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n"
                                  b"\r\n0123456789")
            waits["connect"] = connect(port)
            waits["connect"].sendall(get(port, "/stuck/x"))
            waits["response"] = connect(port)
            waits["response"].sendall(get(port, "/slow/4000"))
            waits["send"] = connect(port)
            waits["send"].sendall(get(port, "/stream/200000000"))
            waits["tunnel"] = connect(port)
            waits["tunnel"].sendall(get(port, "/upgrade", extra=b"Connection: upgrade\r\n"
                                        b"Upgrade: websocket\r\n"))
            check(ClientReader(waits["tunnel"]).response().status == 101, "tunnel")
            wait_until(lambda: len(origin.heads()) == 3, 5, "the origin saw three requests")
            time.sleep(0.3)  # the stream fills the client's window: the proxy waits to send
            start = time.monotonic()
            p.signal(signal.SIGTERM)
            # Each client sees its end by the drain deadline (read before the exit is
            # awaited: once the process is gone the kernel closes them all anyway).
            for name, s in waits.items():
                s.settimeout(max(0.1, start + 3 - time.monotonic()))
                try:
                    while s.recv(1 << 20):
                        pass
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    check(False, f"the {name} wait's client was not closed")
            check(p.wait_exit(timeout=10) == 0, "exit code")
            check(time.monotonic() - start < 3, "the drain deadline did not stop every wait")
            stopped = re.search(r"sessions_stopped=(\d+)", p.log_text())
            check(stopped is not None and int(stopped.group(1)) == 6,
                  f"sessions stopped: {stopped and stopped.group(1)}")
        finally:
            p.stop()
            stuck.close()


class NginxOrigin:
    """Debian's nginx as a real origin: static files (ETags, ranges, HEAD), a chunked
    answer (gzip of a large file), a POST that echoes its length; its access log records
    each request's connection serial number."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nginx-origin-")
        os.chmod(self.dir, 0o755)  # nginx's worker drops privileges: it must read in here
        self.port = free_port()
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        self.file = pattern(300000)
        with open(os.path.join(www, "file.bin"), "wb") as f:
            f.write(self.file)
        self.small = pattern(1024)
        with open(os.path.join(www, "small.bin"), "wb") as f:
            f.write(self.small)
        with open(os.path.join(www, "page.html"), "w") as f:
            f.write("<html>" + "ringproxy " * 5000 + "</html>\n")
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    log_format conn '$connection $request';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000;
    gzip on;
    gzip_types text/html;
    gzip_min_length 100;
    server {{
        listen 127.0.0.1:{self.port};
        root {www};
        location = /post {{ client_max_body_size 8m; return 200 "got $content_length\n"; }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", d + "/", "-c", conf, "-e",
                                      os.path.join(d, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: _listening(self.port), 10, "nginx origin listening")

    def access_lines(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return f.read().splitlines()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@test
def debian_nginx_as_origin_through_keep_alive_pooled_connections():
    if not shutil.which("nginx"):
        check(False, "nginx is not installed (tools/lib/deps.sh installs it)")
    origin = NginxOrigin()
    try:
        port = free_port()
        with Proxy(config(port, [origin.port])):
            before = len(origin.access_lines())
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/file.bin")
            r = c.getresponse()
            body = r.read()
            check(r.status == 200 and body == origin.file, "static file byte-exact")
            check(len(r.msg.get_all("date") or []) == 1, f"nginx's Date alone: {r.msg.items()}")
            etag = r.getheader("etag")
            c.request("GET", "/file.bin", headers={"If-None-Match": etag})
            r = c.getresponse()
            check(r.status == 304 and r.read() == b"", f"conditional GET: {r.status}")
            c.request("GET", "/file.bin", headers={"Range": "bytes=1000-1999"})
            r = c.getresponse()
            check(r.status == 206 and r.read() == origin.file[1000:2000], f"range: {r.status}")
            c.request("HEAD", "/file.bin")
            r = c.getresponse()
            check(r.status == 200 and r.getheader("content-length") == str(len(origin.file)) and
                  r.read() == b"", "HEAD keeps the representation's length")
            c.request("GET", "/page.html", headers={"Accept-Encoding": "gzip"})
            r = c.getresponse()
            import gzip
            page = gzip.decompress(r.read())
            check(r.getheader("content-encoding") == "gzip" and page.startswith(b"<html>ringproxy")
                  and r.getheader("transfer-encoding") == "chunked", "nginx's chunked gzip")
            c.request("POST", "/post", body=b"z" * 100000)
            r = c.getresponse()
            check(r.status == 200 and r.read() == b"got 100000\n", "POST body reached nginx")
            c.request("GET", "/missing")
            r = c.getresponse()
            check(r.status == 404 and b"nginx" in r.read(), "nginx's own 404 passes through")
            c.close()
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null",
                                  "-w", "%{http_code}",
                                  f"http://127.0.0.1:{port}/file.bin",
                                  f"http://127.0.0.1:{port}/file.bin"],
                                 capture_output=True, text=True, timeout=30)
            check(out.stdout == "200200", out.stdout + out.stderr)
            wait_until(lambda: len(origin.access_lines()) >= before + 9, 5, "nginx logged all")
            conns = {line.split()[0] for line in origin.access_lines()[before:]}
            check(len(conns) == 1, f"9 requests from 2 clients used {len(conns)} upstream "
                                   "connections, not one pooled connection")
    finally:
        origin.close()


LOADGEN = os.environ.get("LOADGEN_BIN", "build/release/tools/loadgen")


def _stats(p, name):
    m = re.search(rf"stopped; stats .*\b{name}=(\d+)", p.log_text())
    check(m is not None, f"no {name} in the exit stats")
    return int(m.group(1))


@test
def coalescing_batches_wake_ups_under_load_and_every_response_stays_intact():
    """runtime.coalesce_us: under 64 keep-alive connections of load the shard sleeps for
    batches of completions (counted at exit) while every response is whole, a client
    fetching alongside gets byte-exact bodies, and a stop still ends the daemon. With
    the option off it never waits for a batch."""
    if not shutil.which("nginx"):
        check(False, "nginx is not installed (tools/lib/deps.sh installs it)")
    origin = NginxOrigin()
    try:
        # 2 ms windows: a batch starts from 8,000 completions/s, which the ASan build
        # reaches too (with 200 us it needs 80,000/s: a request makes 4 completions).
        for coalesce_us in (2000, 0):
            port = free_port()
            p = Proxy(config(port, [origin.port], drain_ms=2000,
                             runtime_extra=f"coalesce_us = {coalesce_us}\n",
                             listener_extra="upstream_keepalive = 64\n"))
            fetched = []

            def fetch_alongside():
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                for i in range(100):
                    path = "/file.bin" if i % 10 == 0 else "/small.bin"
                    c.request("GET", path)
                    r = c.getresponse()
                    fetched.append((path, r.status, r.read()))
                c.close()

            t = threading.Thread(target=fetch_alongside)
            t.start()
            out = os.path.join(origin.dir, f"load-{coalesce_us}.json")
            load = subprocess.run(
                [LOADGEN, "http", "--target", f"127.0.0.1:{port}", "--connections", "64",
                 "--duration", "2", "--path", "/small.bin", "--expect-size", "1024",
                 "--json", out], capture_output=True, text=True, timeout=60)
            t.join(timeout=30)
            check(load.returncode == 0, load.stdout + load.stderr)
            with open(out) as f:
                result = json.loads(f.read().strip().splitlines()[-1])
            check(result["errors_total"] == 0 and result["ops"] > 1000,
                  f"loadgen: {result['ops']} requests, {result['errors_total']} errors")
            check(len(fetched) == 100, f"{len(fetched)} of 100 fetched alongside")
            for path, status, body in fetched:
                want = origin.file if path == "/file.bin" else origin.small
                check(status == 200 and body == want, f"{path}: {status}, {len(body)} bytes")
            p.signal(signal.SIGTERM)
            check(p.wait_exit(timeout=10) == 0, "exit code")
            waits = _stats(p, "reactor_coalesced_waits")
            check(_stats(p, "reactor_enters") > 0, "reactor_enters not counted")
            if coalesce_us and "has no min_wait" in p.log_text():
                print("  (this kernel has no io_uring min_wait: batching is off)")
            elif coalesce_us:
                check(waits > 0, "no batched sleep under load with coalesce_us on")
            else:
                check(waits == 0, f"{waits} batched sleeps with coalesce_us = 0")
            p.stop()
    finally:
        origin.close()


def _token(account_id):
    """A ZM_AUTH_TOKEN with the account id (the proxy reads, never verifies, it)."""
    fields = f"id={len(account_id)}:{account_id};exp=13:1700000000000;type=6:zimbra;"
    return "0_8a9b0c1d2e3f_" + fields.encode().hex()


def _jwt(sub):
    import base64
    import json

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    return (b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps({"sub": sub}).encode()) +
            ".c2ln")


@test
def the_admin_console_sends_the_admin_port_in_host_and_maps_locations_back():
    # Spec §5.1: the admin listener (9071) sends Host <name>:<mailbox admin port 7071>,
    # from which the console builds its URLs, and rewrites Locations back to itself.
    from tls_env import name, pki
    routes = """
default_domain = "example.com"

[[domain]]
name = "example.com"
virtual_ips = ["127.0.0.1"]
virtual_hosts = ["mail.example.com"]
"""
    with Origin() as a, Lookupd(routes) as lookupd:
        port = free_port()
        with Proxy(config(port, [a.port], protocol="https", tls=https_tables(pki()),
                          extra=lookupd.section(),
                          listener_extra="route_by_user = true\nadmin_console = true")):
            ctx = ssl.create_default_context(cafile=os.path.join(pki(), "ca.pem"))
            host = f"mail.example.com:{port}"
            for target, location in [
                    ("/zimbraAdmin/", None),
                    (f"/location?to=https://mail.example.com:{a.port}/zimbraAdmin/x?y=1",
                     f"https://{host}/zimbraAdmin/x?y=1"),
                    (f"/location?to=http://mail.example.com:{a.port}/", f"https://{host}/"),
                    ("/location?to=https://other.example.com/", "https://other.example.com/")]:
                a.clear()
                s = ctx.wrap_socket(connect(port), server_hostname=name(3))
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                r = ClientReader(s).response()
                s.close()
                head = a.heads()[0]
                check(f"\r\nHost: mail.example.com:{a.port}\r\n".encode() in head, head[:200])
                if location is not None:
                    check(r.status == 302 and r.field("location") == location,
                          f"{target}: {r.head}")


@test
def requests_go_to_the_users_mailbox_server_from_each_source():
    import base64
    with Origin() as a, Origin() as b, Origin() as c:
        routes = f"""
default_domain = "example.com"
auth_wait_s = 0

[[domain]]
name = "example.com"
virtual_ips = ["127.0.0.1"]
virtual_hosts = ["mail.example.com"]

[[server]]
name = "a"
address = "127.0.0.1"
http = {a.port}

[[server]]
name = "b"
address = "127.0.0.1"
http = {b.port}

[[server]]
name = "outside"
address = "127.0.0.1"
http = {c.port}

[[account]]
name = "alice@example.com"
id = "aaaaaaaa-0000-4000-8000-00000000000a"
server = "a"

[[account]]
name = "bob@example.com"
id = "bbbbbbbb-0000-4000-8000-00000000000b"
server = "b"
aliases = ["robert@example.com"]

[[account]]
name = "carol@example.com"
server = "outside"
"""
        with Lookupd(routes) as lookupd:
            port = free_port()
            with Proxy(config(port, [a.port, b.port], extra=lookupd.section(),
                              listener_extra="route_by_user = true")) as p:
                basic = base64.b64encode(b"bob@example.com:secret").decode()
                cases = [
                    ("/home/alice/inbox.rss", {}, a),
                    ("/service/home/~bob/calendar", {}, b),
                    ("/home/robert@example.com/", {}, b),
                    ("/dav/alice@example.com/Calendar/", {}, a),
                    ("/principals/users/bob/", {}, b),
                    ("/Microsoft-Server-ActiveSync?Cmd=Sync", {"Authorization": f"Basic {basic}"},
                     b),
                    ("/EWS/Exchange.asmx?User=alice", {}, a),
                    ("/service/soap", {"Cookie": "ZM_AUTH_TOKEN=" +
                                       _token("bbbbbbbb-0000-4000-8000-00000000000b")}, b),
                    ("/service/soap?zauthtoken=" + _token("aaaaaaaa-0000-4000-8000-00000000000a"),
                     {}, a),
                    ("/service/soap", {"Authorization": "Bearer " +
                                       _jwt("bbbbbbbb-0000-4000-8000-00000000000b")}, b),
                    # Absolute-form targets: the path and query after the authority.
                    ("http://mail.example.com/home/bob/x", {}, b),
                    ("http://mail.example.com/EWS/Exchange.asmx?User=alice", {}, a),
                    # The path the mailbox resolves decides, not the one typed.
                    ("/home/alice/../bob/x", {}, b),
                    ("/home/bob/%2e%2E/alice/x", {}, a),
                ]
                for path, headers, want in cases:
                    for origin in (a, b):
                        origin.clear()
                    for _ in range(3):  # the same on every try (cached routes too)
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        conn.request("GET", path, headers={"Host": "mail.example.com", **headers})
                        r = conn.getresponse()
                        check(r.status == 404, f"{path}: {r.status}")  # the origin's answer
                        r.read()
                        conn.close()
                    check(len(want.heads()) == 3 and not (b if want is a else a).heads(),
                          f"{path}: went to the wrong server")
                    line = want.heads()[0].split(b"\r\n")[0]
                    check(b"/.." not in line and b"%2e" not in line, f"{path}: sent as {line}")
                # A request sent to its user's server takes no round-robin turn: the
                # requests without a user between them still alternate.
                for origin in (a, b):
                    origin.clear()
                for _ in range(6):
                    for path in ("/home/alice/x", "/unrouted"):
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        conn.request("GET", path, headers={"Host": "mail.example.com"})
                        conn.getresponse().read()
                        conn.close()
                unrouted = [sum(1 for h in o.heads() if h.startswith(b"GET /unrouted "))
                            for o in (a, b)]
                check(unrouted == [3, 3], f"requests without a user went {unrouted}")
                # No user, a user the service does not know, a route outside the group: the
                # balancer decides, and nothing reaches the server outside it.
                for path in ("/", "/home/nobody/", "/home/carol/"):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", path, headers={"Host": "mail.example.com"})
                    check(conn.getresponse().status == 404, path)
                    conn.close()
                check(c.connections == 0, "a route outside the group was followed")
                # The access line follows the response: wait for the last one.
                p.wait_log("target=/home/carol/ .* route=not-in-group")
                log = p.log_text()
                check("user=bob@example.com route=" in log, "no user in the access line")
                check("user=nobody route=unknown" in log, log[-2000:])
                # A token in the query is a credential: never in a log.
                token = _token("aaaaaaaa-0000-4000-8000-00000000000a")
                check(token not in log and r"zauthtoken\x3Dredacted" in log, "the token was logged")


@test
def a_zx_location_sends_each_user_to_the_zx_port_of_their_mailbox_server():
    # Zimbra's /zx/ upstream (zmauth_zx): the token's account, looked up as zx (the
    # lookup answers the mailbox's zx port), the route cached apart from the web one.
    with Origin() as web, Origin() as zx_a, Origin() as zx_b:
        routes = f"""
default_domain = "example.com"
auth_wait_s = 0

[[server]]
name = "a"
address = "127.0.0.1"
http = {web.port}
zx = {zx_a.port}

[[server]]
name = "b"
address = "127.0.0.1"
http = {web.port}
zx = {zx_b.port}

[[account]]
name = "alice@example.com"
id = "aaaaaaaa-0000-4000-8000-00000000000a"
server = "a"

[[account]]
name = "bob@example.com"
id = "bbbbbbbb-0000-4000-8000-00000000000b"
server = "b"
"""
        groups = f'[[upstream]]\nname = "zx"\nservers = ["127.0.0.1:{zx_a.port}", ' \
                 f'"127.0.0.1:{zx_b.port}"]\n'
        location = '[[listener.location]]\nprefix = "/zx/"\nupstream = "zx"\nzx = true\n'
        with Lookupd(routes) as lookupd:
            port = free_port()
            with Proxy(config(port, [web.port], extra=lookupd.section(), upstream_extra=groups,
                              listener_extra="route_by_user = true\n" + location)) as p:
                def ask(path, account_id=None):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    headers = {"Host": "mail.example.com"}
                    if account_id:
                        headers["Cookie"] = "ZM_AUTH_TOKEN=" + _token(account_id)
                    conn.request("GET", path, headers=headers)
                    check(conn.getresponse().status == 404, path)
                    conn.close()

                bob = "bbbbbbbb-0000-4000-8000-00000000000b"
                alice = "aaaaaaaa-0000-4000-8000-00000000000a"
                # The web route first: the zx one must not be taken from its cache entry.
                ask("/service/soap", bob)
                for account_id, want, other in ((bob, zx_b, zx_a), (alice, zx_a, zx_b)):
                    for o in (zx_a, zx_b):
                        o.clear()
                    for _ in range(3):
                        ask("/zx/ws-x", account_id)
                    check(len(want.heads()) == 3 and not other.heads(),
                          f"{account_id}: {len(want.heads())} at its zx port, "
                          f"{len(other.heads())} elsewhere")
                # A user named in the path has no zx route: the balancer decides.
                ask("/zx/home/alice/x")
                p.wait_log(r"target=/zx/home/alice/x .* user=- ")


@test
def a_location_that_alone_routes_by_user_tells_the_lookup_its_local_ip():
    # The listener does not route by user, one location does, to a group reached over
    # TLS (lookup protocol httpssl). The lookup qualifies an unqualified name by the
    # domain whose virtual IP the client reached (X-Proxy-IP): sent empty, "alice" became
    # alice@other.test, unknown, and the balancer chose. The origins speak plain HTTP, so
    # each request fails its TLS handshake on the server tried first, then on the other
    # (502 or 504): the access line names the last, which is a when b went first.
    # max_fails = 0: neither is ever marked down, so the order is the route's alone.
    with Origin() as a, Origin() as b:
        routes = alice_routes("127.0.0.1", b.port, "httpssl", default_domain="other.test")
        with Lookupd(routes) as lookupd:
            port = free_port()
            location = '[[listener.location]]\nprefix = "/home/"\nroute_by_user = true\n'
            tls = 'max_fails = 0\n[upstream.tls]\nverify = false\nhandshake_timeout_ms = 300\n'
            with Proxy(config(port, [a.port, b.port], extra=lookupd.section(),
                              listener_extra=location, upstream_extra=tls)) as p:
                for _ in range(4):  # round robin alone would send two of them to a
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/home/alice/inbox.rss", headers={"Host": "x.test"})
                    check(conn.getresponse().status in (502, 504), "the TLS handshake fails")
                    conn.close()
                p.wait_log("target=/home/alice/inbox.rss .*user=alice", count=4)
                lines = [l for l in p.log_text().splitlines() if "target=/home/alice/" in l]
                check(len(lines) == 4 and all(f"upstream=127.0.0.1:{a.port} " in l and
                                              "route=unknown" not in l for l in lines),
                      "\n".join(lines))
                check(a.connections == 4 and b.connections == 4,
                      f"connections: a {a.connections}, b {b.connections}")


@test
def a_users_server_marked_down_is_not_tried_while_others_are_up():
    # Passive health applies to a pinned server too: once max_fails marked the user's
    # server down, its requests go to the balancer's live servers without a connect
    # attempt to it first (a blackholed server would cost each one connect_timeout_ms).
    dead = free_port()
    with Origin() as a:
        routes = f"""
default_domain = "example.com"
auth_wait_s = 0

[[server]]
name = "dead"
address = "127.0.0.1"
http = {dead}

[[account]]
name = "alice@example.com"
server = "dead"
"""
        with Lookupd(routes) as lookupd:
            port = free_port()
            with Proxy(config(port, [a.port, dead], extra=lookupd.section(),
                              listener_extra="route_by_user = true",
                              upstream_extra="max_fails = 1\nfail_timeout_ms = 60000")) as p:
                for _ in range(5):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/home/alice/inbox.rss", headers={"Host": "x.test"})
                    check(conn.getresponse().status == 404, "the live origin's answer")
                    conn.close()
                p.wait_log("target=/home/alice/inbox.rss", count=5)
                check(len(a.heads()) == 5, f"a: {len(a.heads())}")
                tried = p.log_text().count(f"upstream 127.0.0.1:{dead} (web) connect failed")
                check(tried == 1, f"the server marked down was tried {tried} times")


@test
def a_redirect_survives_a_body_the_proxy_does_not_read_and_keeps_a_1_0_client():
    # The redirect is answered before the body it will not read: the proxy must linger
    # before closing, or the body's arrival at a closed socket resets the connection
    # and the client loses the 302 it has not read yet. An HTTP/1.0 keep-alive client
    # must be told the connection stays open.
    location = '[[listener.location]]\nprefix = "/old/"\nredirect = "/new/"\n'
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=location)):
        s = connect(port)
        s.sendall(b"POST /old/x HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n")
        time.sleep(0.3)  # the 302 is in the client's socket, the proxy's side closing
        try:  # in two parts: a reset after the first fails the second
            s.sendall(b"x" * 100000)
            time.sleep(0.2)
            s.sendall(b"x" * 100000)
            body_error = None
        except OSError as e:
            body_error = e
        time.sleep(0.3)
        try:
            got = s.recv(4096)
        except ConnectionResetError:
            got = b"a reset"
        check(got.startswith(b"HTTP/1.1 302 ") and b"Connection: close\r\n" in got, got)
        # The proxy read and dropped the body (a lingering close) rather than reset it.
        check(body_error is None, f"sending the body: {body_error}")
        s.close()
        s = connect(port)
        s.sendall(b"GET /old/y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = ClientReader(s).response()
        check(r.status == 302 and (r.field("connection") or "").lower() == "keep-alive", r.head)
        s.sendall(b"GET /old/z HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        check(ClientReader(s).response().status == 302, "a second request on the connection")
        s.close()
    # $host for a request without a Host (HTTP/1.0): the address it came to, never empty;
    # an IPv6 one in brackets.
    location = '[[listener.location]]\nprefix = "/old/"\nredirect = "http://$host/new/"\n'
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=location)):
        s = connect(port)
        s.sendall(b"GET /old/y HTTP/1.0\r\n\r\n")
        r = ClientReader(s).response()
        check(r.status == 302 and r.field("location") == "http://127.0.0.1/new/", r.head)
        s.close()
    port = free_port()
    with Origin() as origin:
        text = config(port, [origin.port], listener_extra=location).replace(
            f'listen = "127.0.0.1:{port}"', f'listen = "[::1]:{port}"')
        p = Proxy(text)
        s = socket.create_connection(("::1", port), timeout=10)
        s.sendall(b"GET /old/y HTTP/1.0\r\n\r\n")
        r = ClientReader(s).response()
        check(r.status == 302 and r.field("location") == "http://[::1]/new/", r.head)
        s.close()
        p.stop()


@test
def a_stop_ends_a_request_waiting_for_its_user_lookup():
    with Origin() as a:
        routes = f"""
default_domain = "example.com"

[[server]]
name = "a"
address = "127.0.0.1"
http = {a.port}

[[account]]
name = "alice@example.com"
server = "a"
"""
        with Lookupd(routes, extra=("--latency-ms", "8000"), timeout_ms=20000) as lookupd:
            port = free_port()
            with Proxy(config(port, [a.port], extra=lookupd.section(), drain_ms=1000,
                              listener_extra="route_by_user = true")) as p:
                s = connect(port, timeout=15)
                s.sendall(get(port, "/home/alice/inbox.rss"))
                time.sleep(0.5)  # the lookup is under way, and answers after 8 s
                start = time.monotonic()
                p.signal(signal.SIGTERM)
                rc = p.wait_exit(timeout=15)
                took = time.monotonic() - start
                check(rc == 0, f"exit code {rc}")
                # The drain is 1 s.
                check(took < 5, f"the proxy took {took:.1f}s to stop")
                check(s.recv(100) == b"", "the stopped request got an answer")
                check(a.heads() == [], "the origin got the request")
                s.close()


@test
def virtual_servers_and_locations_choose_group_timeout_and_redirects():
    with Origin() as a, Origin() as b, Origin() as c:
        port = free_port()
        groups = f"""
[[upstream]]
name = "b"
servers = ["127.0.0.1:{b.port}"]

[[upstream]]
name = "c"
servers = ["127.0.0.1:{c.port}"]
"""
        servers = """
[[listener.server]]
names = ["mail.example.com", "mail.*"]
default = true

[[listener.server.location]]
prefix = "/service/"
upstream = "b"

[[listener.server.location]]
regex = "^/(home|dav)/"
upstream = "c"

[[listener.server.location]]
regex_nocase = "^/ews/"
upstream = "b"

[[listener.server.location]]
exact = "/"
redirect = "https://$host/login"

[[listener.server.location]]
prefix = "/old/"
redirect = "$scheme://$host/new$request_uri"
redirect_status = 301

[[listener.server.location]]
prefix = "/slow/"
upstream_timeout_ms = 300

[[listener.server]]
names = ["*.other.test"]
upstream = "c"
"""
        text = config(port, [a.port], upstream_extra=groups, tls=servers)
        with Proxy(text):
            def ask(host, path):
                s = connect(port)
                s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
                r = ClientReader(s).response()
                s.close()
                return r
            for host, path, want in [
                    ("mail.example.com", "/index.html", a), ("mail.example.com", "/service/soap", b),
                    ("mail.example.com", "/home/u/inbox", c), ("mail.example.com", "/dav/u/", c),
                    ("mail.example.com", "/EWS/Exchange.asmx", b), ("mail.example.org", "/x", a),
                    ("x.other.test", "/service/soap", c), ("unknown.test", "/y", a),
                    # Locations see the path without dot segments, as the origin does.
                    ("mail.example.com", "/home/../service/soap", b),
                    ("mail.example.com", "/service/%2E%2e/home/u/", c)]:
                for o in (a, b, c):
                    o.clear()
                r = ask(host, path)
                check(r.status == 404, f"{host}{path}: {r.status}")
                got = [o for o in (a, b, c) if o.heads()]
                check(got == [want], f"{host}{path} went to the wrong group")
            for o in (a, b, c):
                o.clear()
            ask("mail.example.com", "/home/./../service/x/..?q=/../")
            check([h.split(b"\r\n")[0] for h in b.heads()] == [b"GET /service/?q=/../ HTTP/1.1"],
                  f"sent as {b.heads()}")
            b.clear()
            r = ask("mail.example.com", "/service/../../etc/passwd")
            check(r.status == 400, f"a '..' past the root: {r.status}")
            check(not (a.heads() or b.heads() or c.heads()), "a '..' past the root was sent on")
            r = ask("mail.example.com", "/")
            check(r.status == 302 and r.field("location") == "https://mail.example.com/login",
                  r.head)
            r = ask("mail.example.com", "/old/a?b=c")
            check(r.status == 301 and
                  r.field("location") == "http://mail.example.com/new/old/a?b=c", r.head)
            r = ask("mail.example.com", "/slow/2000")
            check(r.status == 504, f"per-location timeout: {r.status}")
            r = ask("mail.example.com", "/slow/50")
            check(r.status == 200, f"within the timeout: {r.status}")
    # /docs/<node>/: the server whose id the path names, and no other.
    with Origin() as a, Origin() as b:
        port = free_port()
        docs = f"""
[[upstream]]
name = "docs"
servers = ["127.0.0.1:{a.port} id=doc1", "127.0.0.1:{b.port} id=doc2"]
"""
        node = """
[[listener.location]]
prefix = "/docs/"
upstream = "docs"
node_from_path = true
"""
        with Proxy(config(port, [a.port], upstream_extra=docs, tls=node)):
            # The node's server gets the path without /docs/<node> (Zimbra's
            # `rewrite /docs/<id>/(.*) /$1`).
            for path, want, sent in [("/docs/doc2/x", b, "/x"), ("/docs/doc1/y?z", a, "/y?z"),
                                     ("/docs/doc2/", b, "/"), ("/docs/doc2", b, "/")]:
                a.clear()
                b.clear()
                s = connect(port)
                s.sendall(get(port, path))
                r = ClientReader(s).response()
                s.close()
                check(r.status == 404 and r.body == b"no such path", f"{path}: {r.status}")
                check([o for o in (a, b) if o.heads()] == [want], f"{path}: wrong node")
                head = want.heads()[0]
                check(head.startswith(f"GET {sent} HTTP/1.1\r\n".encode()), f"{path}: {head[:60]}")
            a.clear()
            b.clear()
            for path in ("/docs/doc3/x", "/docs//x"):
                s = connect(port)
                s.sendall(get(port, path))
                r = ClientReader(s).response()
                s.close()
                check(r.status == 404 and b"Not Found" in r.body, f"{path}: {r.status} {r.body}")
            check(a.heads() == [] and b.heads() == [], "an unknown node reached a server")
    # A named node that is down is not replaced by another server.
    with Origin() as a:
        port = free_port()
        dead = refused_port()
        text = config(port, [a.port, dead], tls=node.replace('upstream = "docs"\n', "")).replace(
            f'"127.0.0.1:{a.port}", "127.0.0.1:{dead}"',
            f'"127.0.0.1:{a.port} id=live", "127.0.0.1:{dead} id=dead"')
        with Proxy(text):
            s = connect(port)
            s.sendall(get(port, "/docs/dead/x"))
            check(ClientReader(s).response().status == 502, "a dead node")
            s.close()
            check(a.heads() == [], "another server took the dead node's request")
    with Origin() as a:
        port = free_port()
        strict = """
[[listener.server]]
names = ["mail.example.com"]
"""
        with Proxy(config(port, [a.port], listener_extra="strict_hosts = true", tls=strict)):
            s = connect(port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
            check(ClientReader(s).response().status == 400, "strict_hosts")
            s.close()
            check(a.heads() == [], "an unknown host reached the origin")


@test
def rewrite_rules_and_header_rules_shape_what_each_side_sees():
    with Origin() as a, Origin() as b:
        port = free_port()
        groups = f"""
[[upstream]]
name = "b"
servers = ["127.0.0.1:{b.port}"]
"""
        servers = r"""
[[listener.server]]
names = ["mail.example.com"]
default = true
request_headers_set = ["X-Edge: ringproxy", "Via: 1.1 edge"]
request_headers_remove = ["X-Debug"]
response_headers_set = ["Strict-Transport-Security: max-age=63072000"]
response_headers_remove = ["X-Conn"]

[[listener.server.rewrite]]
regex = '^/files/(\d+)$'
replace = "/size/$1"
last = true

[[listener.server.rewrite]]
regex = "^/a/(.*)"
replace = "/b/$1"

[[listener.server.rewrite]]
regex = "^/b/(.*)"
replace = "/size/$1?via=b"
last = true

[[listener.server.rewrite]]
regex = "^/size/"
replace = "/never"

[[listener.server.rewrite]]
regex = "^/svc/(.*)"
replace = "/service/$1"

[[listener.server.rewrite]]
regex = "^/webmail(/.*)?$"
replace = "https://$host/?"

[[listener.server.rewrite]]
regex = "^/perm/(.*)"
replace = "/moved/$1"
redirect_status = 308

[[listener.server.rewrite]]
regex = "^/go/(.*)"
replace = "/$1"
redirect_status = 302

[[listener.server.rewrite]]
regex = "^/strip(.*)$"
replace = "$1"
redirect_status = 301

[[listener.server.rewrite]]
regex = "^/dots(.*)$"
replace = "/y/$1"

[[listener.server.rewrite]]
regex = "^/up(.*)$"
replace = "/$1"

[[listener.server.location]]
prefix = "/service/"
upstream = "b"
"""
        with Proxy(config(port, [a.port], upstream_extra=groups, tls=servers)):
            def ask(path, extra=b""):
                s = connect(port)
                s.sendall(b"GET %s HTTP/1.1\r\nHost: mail.example.com\r\n%s\r\n"
                          % (path.encode(), extra))
                r = ClientReader(s).response()
                s.close()
                return r

            def request_line(origin):
                heads = origin.heads()
                check(len(heads) == 1, f"{len(heads)} requests reached the origin")
                return heads[0].split(b"\r\n")[0].decode()

            cases = [("/files/10?x=1", a, "GET /size/10?x=1 HTTP/1.1", 10),
                     ("/a/7?q=1", a, "GET /size/7?via=b&q=1 HTTP/1.1", 7),  # `last` stops
                     ("/size/3", a, "GET /never HTTP/1.1", None),
                     ("/svc/soap/x", b, "GET /service/soap/x HTTP/1.1", None),  # then location
                     ("/files/x", a, "GET /files/x HTTP/1.1", None),
                     # Escaped unreserved characters are the characters themselves.
                     ("/%73vc/soap/x", b, "GET /service/soap/x HTTP/1.1", None),
                     ("/%73ervic%65/soap", b, "GET /service/soap HTTP/1.1", None),
                     # A capture that makes "x.." a ".." segment: the result is resolved.
                     ("/dots../service/soap", b, "GET /service/soap HTTP/1.1", None)]
            for path, origin, want, size in cases:
                a.clear()
                b.clear()
                r = ask(path)
                check(request_line(origin) == want, f"{path}: {request_line(origin)}")
                if size is not None:
                    check(r.status == 200 and r.body == pattern(size), f"{path}: {r.status}")
            r = ask("/webmail/x?y=1")
            check(r.status == 302 and r.field("location") == "https://mail.example.com/",
                  r.head)
            s = connect(port)  # HTTP/1.0 without Host: $host is the address it came to
            s.sendall(b"GET /webmail/x HTTP/1.0\r\n\r\n")
            r = ClientReader(s).response()
            s.close()
            check(r.status == 302 and r.field("location") == "https://127.0.0.1/", r.head)
            r = ask("/perm/x?y=1")
            check(r.status == 308 and r.field("location") == "/moved/x?y=1", r.head)
            # A Location path never passes for a scheme-relative URL to another host.
            for path in ("/go//evil.test/x", "/go/\\evil.test/x", "/go/\\/evil.test/x"):
                r = ask(path)
                check(r.status == 302 and r.field("location") == "/evil.test/x", f"{path}: {r.head}")
            # Nor when a capture gives its first byte: browsers read a backslash as "/".
            for path, want in (("/strip\\/evil.test/x", "/evil.test/x"),
                               ("/strip\\\\evil.test", "/evil.test"),
                               ("/strip/ok", "/ok"),
                               ("/strip", "/"), ("/strip?q", "/?q")):  # never an empty Location
                r = ask(path)
                check(r.status == 301 and r.field("location") == want, f"{path}: {r.head}")
            r = ask("/up../x")
            check(r.status == 400, f"a rewrite past the root: {r.head}")
            a.clear()
            # A rule covers the name spelled with '_' for '-' (a CGI-style backend reads
            # "X_Debug" as X-Debug).
            r = ask("/size/1", b"X-Debug: 1\r\nVia: 1.0 spoofed\r\nAccept: */*\r\n"
                               b"X_Debug: 2\r\nX_Edge: spoofed\r\n")
            head = a.heads()[0].decode("latin-1").lower()
            check("x-debug" not in head and "x_debug" not in head and "spoofed" not in head, head)
            check("\r\nx-edge: ringproxy\r\n" in head and "\r\nvia: 1.1 edge\r\n" in head, head)
            check("\r\naccept: */*\r\n" in head, head)
            check(r.field("x-conn") is None and
                  r.field("strict-transport-security") == "max-age=63072000", r.head)
    # Without servers, the listener's own rules.
    with Origin() as a:
        port = free_port()
        rules = 'response_headers_set = ["X-Served-By: edge"]\n' \
                '[[listener.rewrite]]\nregex = "^/old(/.*)"\nreplace = "$1"'
        with Proxy(config(port, [a.port], listener_extra=rules)):
            s = connect(port)
            s.sendall(get(port, "/old/size/4"))
            r = ClientReader(s).response()
            s.close()
            check(r.status == 200 and r.body == pattern(4) and
                  r.field("x-served-by") == "edge", r.head)
            check(a.heads()[0].startswith(b"GET /size/4 HTTP/1.1\r\n"), a.heads()[0])
            # An absolute-form target with a query and no path goes on as "/?query".
            a.clear()
            s = connect(port)
            s.sendall(b"GET http://a.test?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            check(ClientReader(s).response().status == 404, "absolute-form target")
            s.close()
            check(a.heads()[0].startswith(b"GET /?x=1 HTTP/1.1\r\n"), a.heads()[0])
            # OPTIONS with an empty path asks about the server itself: "*" (RFC 9112
            # §3.2.4); with a path, the path.
            for target, sent in ((b"http://a.test", b"OPTIONS * HTTP/1.1\r\n"),
                                 (b"http://a.test/", b"OPTIONS / HTTP/1.1\r\n")):
                a.clear()
                s = connect(port)
                s.sendall(b"OPTIONS " + target + b" HTTP/1.1\r\nHost: a.test\r\n\r\n")
                ClientReader(s).response()
                s.close()
                check(a.heads()[0].startswith(sent), a.heads()[0])


@test
def balancing_spreads_requests_by_weight_ip_and_load_and_skips_dead_servers():
    def spread(origins, n, close=True):
        for o in origins:
            o.clear()
        for _ in range(n):
            s = connect(port)
            s.sendall(get(port, "/size/1", extra=b"Connection: close\r\n" if close else b""))
            r = ClientReader(s).response()
            s.close()
            check(r.status == 200, f"status {r.status}")
        return [len(o.heads()) for o in origins]

    with Origin() as a, Origin() as b, Origin() as c:
        port = free_port()
        weighted = f'"127.0.0.1:{a.port} weight=3", "127.0.0.1:{b.port}", "127.0.0.1:{c.port}"'
        text = config(port, [a.port, b.port, c.port]).replace(
            f'"127.0.0.1:{a.port}", "127.0.0.1:{b.port}", "127.0.0.1:{c.port}"', weighted)
        with Proxy(text):
            got = spread([a, b, c], 50)
            check(got == [30, 10, 10], f"weighted round-robin 3:1:1 over 50: {got}")
        with Proxy(config(port, [a.port, b.port, c.port], upstream_extra='balance = "ip_hash"')):
            got = spread([a, b, c], 12)
            check(sorted(got) == [0, 0, 12], f"one client address, one server: {got}")
        with Proxy(config(port, [a.port, b.port, c.port], upstream_extra='balance = "least_conn"')):
            for o in (a, b, c):
                o.clear()
            # Three slow requests at once: each server has one when the next is placed.
            socks = []
            for _ in range(3):
                s = connect(port)
                s.sendall(get(port, "/slow/1500"))
                socks.append(s)
                wait_until(lambda: sum(len(o.heads()) for o in (a, b, c)) == len(socks), 5,
                           "the slow request reached an origin")
            check([len(o.heads()) for o in (a, b, c)] == [1, 1, 1],
                  f"least_conn: {[len(o.heads()) for o in (a, b, c)]}")
            for s in socks:
                check(ClientReader(s).response().status == 200, "slow request")
                s.close()
    # One slow request held on one of two servers: the quick ones after it go to the
    # other (round robin would alternate).
    with Origin() as a, Origin() as b:
        port = free_port()
        with Proxy(config(port, [a.port, b.port], upstream_extra='balance = "least_conn"')):
            slow = connect(port)
            slow.sendall(get(port, "/slow/1500"))
            wait_until(lambda: len(a.heads()) + len(b.heads()) == 1, 5,
                       "the slow request reached an origin")
            busy, idle = (a, b) if a.heads() else (b, a)
            for _ in range(4):
                s = connect(port)
                s.sendall(get(port, "/size/1"))
                check(ClientReader(s).response().status == 200, "quick request")
                s.close()
            check((len(busy.heads()), len(idle.heads())) == (1, 4),
                  f"least_conn with one busy: {len(busy.heads())}:{len(idle.heads())}")
            check(ClientReader(slow).response().status == 200, "slow request")
            slow.close()
    with Origin() as a, Origin() as b:
        port = free_port()
        dead = refused_port()
        health = "max_fails = 1\nfail_timeout_ms = 60000"
        with Proxy(config(port, [dead, a.port, b.port], upstream_extra=health)) as p:
            got = spread([a, b], 12)
            check(sum(got) == 12 and min(got) >= 5, f"the live servers share the load: {got}")
            tried = rf"upstream 127\.0\.0\.1:{dead} \(web\) connect failed"
            check(len(re.findall(tried, p.log_text())) == 1, "the dead server was tried once")
            got = spread([a, b], 12)
            check(sum(got) == 12, f"{got}")
            check(len(re.findall(tried, p.log_text())) == 1,
                  "a server down for fail_timeout_ms was tried again")


@test
def access_log_in_json_and_combined_formats_to_its_own_file():
    with Origin() as a, tempfile.TemporaryDirectory() as d:
        port = free_port()
        path = os.path.join(d, "access.log")
        def text(fmt):
            return config(port, [a.port], extra=f'access_file = "{path}"\naccess_format = "{fmt}"')
        def lines():
            with open(path, encoding="utf-8") as f:
                return f.read().splitlines()
        with Proxy(text("json")) as p:
            s = connect(port)
            s.sendall(b"POST /x?q=%22 HTTP/1.1\r\nHost: mail.example.com\r\n"
                      b"User-Agent: ua \"quoted\"\r\nReferer: http://r.test/\r\n"
                      b"Content-Length: 5\r\n\r\nhello")
            check(ClientReader(s).response().status == 404, "proxied")
            s.close()
            wait_until(lambda: os.path.exists(path) and len(lines()) == 1, what="a JSON line")
            rec = json.loads(lines()[0])
            want = {"listener": "web", "host": "mail.example.com", "method": "POST",
                    "target": "/x?q=%22", "status": 404, "bytes_in": 5, "tls": False,
                    "upstream": f"127.0.0.1:{a.port}", "user_agent": 'ua "quoted"',
                    "referer": "http://r.test/", "user": "", "end": "ok"}
            for k, v in want.items():
                check(rec.get(k) == v, f"{k}: {rec.get(k)!r} != {v!r}")
            check(rec["client"].startswith("127.0.0.1:") and rec["total_ms"] >= 0 and
                  rec["header_ms"] >= 0 and rec["bytes_out"] > 0 and
                  len(rec["request_id"]) == 24 and rec["time"].endswith("Z"), str(rec))
            check(a.heads()[-1].lower().count(b"x-request-id: " + rec["request_id"].encode()) == 1,
                  "the logged request id is not the one sent upstream")
            check("access http" not in p.log_text(), "the access line also went to the log")
            # Bytes that are not UTF-8 (a Latin-1 header, a raw 0xFF) still make valid JSON.
            s = connect(port)
            s.sendall(b"GET /z HTTP/1.1\r\nHost: mail.example.com\r\nUser-Agent: a\xe9\xffb\r\n"
                      b"Referer: caf\xc3\xa9?zauthtoken=SECRET1\r\n\r\n")
            ClientReader(s).response()
            s.close()
            wait_until(lambda: len(lines()) == 2, what="a second JSON line")
            rec = json.loads(lines()[1])
            check(rec["user_agent"] == "a\ufffd\ufffdb" and
                  rec["referer"] == "caf\u00e9?zauthtoken=redacted", str(rec))
            # A reload switches the format and reopens the file (rotation).
            os.rename(path, path + ".1")
            p.write_config(text("combined"))
            p.signal(signal.SIGHUP)
            p.wait_log("reload done")
            s = connect(port)
            s.sendall(b"GET /y HTTP/1.0\r\nHost: mail.example.com\r\nUser-Agent: a\xe9b\r\n\r\n")
            ClientReader(s).response()
            s.close()
            wait_until(lambda: os.path.exists(path) and len(lines()) == 1, what="a combined line")
            line = lines()[0]
            # The client's address without its port, as nginx's $remote_addr.
            rx = (r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                  r'"GET /y HTTP/1\.0" 404 \d+ "-" "a\\xE9b" "127\.0\.0\.1:%d" '
                  r'[\d.]+ [\d.]+ [\d.]+ "mail\.example\.com" [0-9a-f]{24}$' % a.port)
            check(re.match(rx, line), line)
            # Answered by the proxy itself: no upstream, and its times are "-".
            s = connect(port)
            s.sendall(b"GET /a%0d%0ab HTTP/1.0\r\nHost: mail.example.com\r\n\r\n")
            check(ClientReader(s).response().status == 403, "encoded CR/LF")
            s.close()
            wait_until(lambda: len(lines()) == 2, what="a second combined line")
            check(re.search(r' 403 \d+ "-" "-" "-" [\d.]+ - - "mail\.example\.com" ', lines()[1]),
                  lines()[1])


@test
def an_upstream_name_with_an_ipv6_and_an_ipv4_address_reaches_either():
    # Debian's /etc/hosts gives localhost ::1 and 127.0.0.1, ::1 first: an origin on
    # 127.0.0.1 alone must still be reached, as nginx reaches it (a peer per address).
    env = hosts_env("::1 dual.test\n127.0.0.1 dual.test\n")
    port = free_port()
    with Origin() as origin:
        text = config(port, [origin.port]).replace(f'"127.0.0.1:{origin.port}"',
                                                   f'"dual.test:{origin.port}"')
        with Proxy(text, env=env):
            for _ in range(4):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/size/3")
                r = c.getresponse()
                check(r.status == 200 and r.read() == pattern(3), f"status {r.status}")
                c.close()
        # Where one address must be chosen, the config says which was meant.
        rc, out, _ = run_config(text.replace(f'listen = "127.0.0.1:{port}"',
                                             f'listen = "dual.test:{port}"'), "--check", env=env)
        check(rc != 0 and "the name has 2 addresses (::1, 127.0.0.1)" in out, out)
        rc, out, _ = run_config(text.replace(f'"dual.test:{origin.port}"',
                                             f'"dual.test:{origin.port} id=a"'), "--check",
                                env=env)
        check(rc != 0 and "id=a needs a server of one address" in out, out)


@test
def names_with_two_addresses_reach_the_lookup_service_and_keep_a_user_on_its_host():
    # The user's server is written by name; its IPv6 member refuses and is marked down:
    # the user's requests go to the same host's IPv4 member, not to another host.
    env = hosts_env("::1 dual.test\n127.0.0.1 dual.test\n")
    with Origin() as a, Origin() as b:
        routes = alice_routes("dual.test", a.port)
        with Lookupd(routes) as lookupd:
            port = free_port()
            text = config(port, [a.port, b.port], extra=lookupd.section(),
                          listener_extra="route_by_user = true")
            text = text.replace(f'"127.0.0.1:{a.port}"', f'"dual.test:{a.port}"')
            # The lookup service, on 127.0.0.1 alone, by the same kind of name.
            text = text.replace(f'"127.0.0.1:{lookupd.port}"', f'"dual.test:{lookupd.port}"')
            with Proxy(text, env=env):
                for _ in range(6):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    c.request("GET", "/home/alice/x")
                    check(c.getresponse().status == 404, "a response")
                    c.close()
                check(len(a.requests) == 6 and not b.requests,
                      f"alice's requests: {len(a.requests)} on her host, "
                      f"{len(b.requests)} elsewhere")


@test
def config_errors_name_the_key():
    cases = [
        ('protocol="https"', "", "an https listener needs a [listener.tls] table"),
        ("", 'trusted_proxies = ["10.0.0.0/33"]', "trusted_proxies"),
        ("", "route_by_user = true", "route_by_user: needs a [lookup] section"),
        ("", "admin_console = true", "admin_console: routes by the admin token"),
        ("", "header_max_bytes = 10", "header_max_bytes"),
        ("", "upstream_timeout_ms = 0", "upstream_timeout_ms"),
        ("", "strict_hosts = true", "strict_hosts: needs [[listener.server]]"),
        ("", 'strict_hosts = true\n[[listener.server]]\nnames = ["a.test"]\ndefault = true',
         "strict_hosts: a server with default = true answers every Host"),
        ("", '[[listener.location]]\nregex = "("', "bad regular expression"),
        ("", '[[listener.location]]\nprefix = "/a"\nupstream = "nope"', 'no [[upstream]] named "nope"'),
        ("", '[[listener.location]]\nprefix = "/a"\nexact = "/b"', "exactly one of"),
        ("", '[[listener.location]]\nprefix = "/a"\nredirect = "/b"\nredirect_status = 303',
         "expected 301, 302, 307 or 308"),
        ("", '[[listener.server]]\nnames = ["a.test"]', "one server needs default = true"),
        ("", '[[listener.rewrite]]\nregex = "^/(a)"\nreplace = "/$2"', "names a capture"),
        ("", '[[listener.rewrite]]\nregex = "^/a"\nreplace = "b"', "a path, from '/'"),
        ("", '[[listener.rewrite]]\nreplace = "/b"', "regex: required"),
        ("", 'request_headers_set = ["Host: evil"]', "Host is written by the proxy"),
        ("", 'response_headers_remove = ["Content-Length"]', "written by the proxy"),
        ("", 'request_headers_set = ["X-A"]', 'expected "Name: value"'),
        ("", 'error_page_504 = "/nonexistent/504.html"', "error_page_504: cannot open"),
        ("", 'error_handler_url = "ftp://x"', "error_handler_url: expected an http(s) URL"),
        ("", '[[listener.location]]\nregex = "^/d/"\nnode_from_path = true', "needs a prefix"),
        ("", '[[listener.location]]\nprefix = "/d"\nnode_from_path = true',
         "node_from_path: needs a prefix ending in '/' (\"/d/\")"),
        ("", 'mail_mode = "sometimes"', "expected both, redirect or mixed, got 'sometimes'"),
        ("", 'request_headers_set = ["X A: b"]', "is not a field name"),
        ("", 'request_headers_set = ["X-A: b\\u0001"]', "control character"),
        ("", 'request_headers_set = ["X-A: b"]\n[[listener.server]]\ndefault = true',
         "rewrites and header rules go in each server"),
    ]
    for proto, extra, want in cases:
        text = config(free_port(), [free_port()], listener_extra=extra)
        if proto:
            text = text.replace('protocol = "http"', proto.replace("=", " = "))
        rc, out, _ = run_check(text)
        check(rc != 0 and want in out, f"{proto} {extra}: rc={rc} {out}")
    # An HTTP listener offering h2 would have every browser choose it, and fail.
    from tls_env import pki
    tls = https_tables(pki()) + 'alpn = ["h2", "http/1.1"]\nhandshake_timeout_ms = 5000\n'
    rc, out, _ = run_check(config(free_port(), [free_port()], protocol="https", tls=tls))
    check(rc != 0 and "listener[0].tls.alpn: 'h2': an https listener speaks only" in out and
          "unknown key" not in out, out)
    # Nor may a group it sends requests to over TLS offer h2 to its servers.
    to_upstream = '[upstream.tls]\nverify = false\nalpn = ["h2", "http/1.1"]\n'
    rc, out, _ = run_check(config(free_port(), [free_port()], upstream_extra=to_upstream))
    check(rc != 0 and "listener[0].upstream: [[upstream]] \"web\" offers 'h2' by ALPN" in out, out)



def offer_page(fifo, reader, proxy):
    """Writes an error page into `fifo` once the proxy opens it to read; fails when it
    does not within 10 s, or exits (never blocks: the reader may not come)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            check(time.monotonic() < deadline and proxy.proc.poll() is None,
                  f"{reader} never opened the page: exit {proxy.proc.poll()}")
            time.sleep(0.05)
    os.write(fd, b"<html>later</html>\n")
    os.close(fd)


@test
def signals_while_the_config_is_read_wait_for_the_start():
    # Reading the config can wait (here on a FIFO as an error page): a SIGHUP then
    # (logrotate after a restart) must not end the process, and a SIGTERM drains.
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "502.html")
        os.mkfifo(fifo)
        port = free_port()
        p = Proxy(config(port, [refused_port()], listener_extra=f'error_page_502 = "{fifo}"'),
                  ready=lambda: time.sleep(0.3))
        try:
            p.signal(signal.SIGHUP)
            p.signal(signal.SIGUSR1)
            time.sleep(0.2)
            for reader, done in (("the start", r"ready: \d+ listeners"), ("the reload", "reload done")):
                offer_page(fifo, reader, p)
                p.wait_log(done)  # the page was read whole before it is offered again
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/size/1")
            r = c.getresponse()
            check(r.status == 502, f"status {r.status}")
            p.signal(signal.SIGTERM)
            check(p.wait_exit() == 0, f"exit {p.proc.returncode}")
        finally:
            p.stop()


@test
def a_stop_signal_is_heard_while_a_reload_reads_the_config():
    # The reload's read waits (a FIFO as an error page here; names to resolve in life):
    # SIGTERM drains at once, and the exit does not wait for the read.
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "502.html")
        os.mkfifo(fifo)
        port = free_port()
        with Proxy(config(port, [refused_port()], drain_ms=500)) as p:
            p.write_config(config(port, [refused_port()], drain_ms=500,
                                  listener_extra=f'error_page_502 = "{fifo}"'))
            p.signal(signal.SIGHUP)
            p.wait_log(r"SIGHUP: reloading")
            time.sleep(0.3)  # the read is waiting on the FIFO
            start = time.monotonic()
            p.signal(signal.SIGTERM)
            p.wait_log(r"SIGTERM: stopping accepts and draining", timeout=5)
            check(p.wait_exit(timeout=10) == 0, f"exit {p.proc.returncode}")
            took = time.monotonic() - start
            check(took < 5, f"the stop took {took:.1f} s")
            p.wait_log(r"exiting with a configuration read still waiting: abandoned")


@test
def a_sighup_during_a_reload_reads_the_file_again_after_it():
    # The file may have changed after the read began: the second SIGHUP is not lost.
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "502.html")
        os.mkfifo(fifo)
        port = free_port()
        with Proxy(config(port, [refused_port()])) as p:
            p.write_config(config(port, [refused_port()],
                                  listener_extra=f'error_page_502 = "{fifo}"'))
            p.signal(signal.SIGHUP)
            p.wait_log(r"SIGHUP: reloading")
            p.signal(signal.SIGHUP)
            p.signal(signal.SIGUSR1)  # heard while the read waits
            p.wait_log(r"stats ")
            for n in (1, 2):
                offer_page(fifo, f"read {n}", p)
                p.wait_log(r"reload done", count=n)
            check("asked for during the last reload" in p.log_text(), p.log_text()[-2000:])


def https_tables(d):
    """[listener.tls] with the test PKI in `d`."""
    return f"""
[listener.tls]
certificate = "{d}/default.crt"
key = "{d}/default.key"
certificate_dir = "{d}/certs"
"""


def _gib_both_ways(make_socket, port, host):
    """1 GiB up (hashed by the origin) and 1 GiB down (hashed here), byte-exact."""
    total = 1 << 30
    s = make_socket()
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" %
              (host.encode(), total))
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    for _ in range(total >> 20):
        digest.update(block)
        s.sendall(block)
    reader = ClientReader(s)
    r = reader.response()
    check(r.status == 200 and r.body.decode() == digest.hexdigest(), f"upload: {r.head}")
    s.sendall(b"GET /stream/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (total, host.encode()))
    head = reader.r.head()
    check(b" 200 " in head and b"Content-Length: %d" % total in head, head)
    got = hashlib.sha256()
    want = hashlib.sha256()
    piece = pattern(1 << 20)
    for _ in range(total >> 20):
        want.update(piece)
    left = total
    while left > 0:
        chunk = reader.r.some(min(left, 1 << 20))
        got.update(chunk)
        left -= len(chunk)
    check(got.hexdigest() == want.hexdigest(), "download differs")
    s.close()


@test
def urgent_data_in_a_spliced_body_is_stepped_over():
    # A body of 256 KiB and more is spliced; splice(2) stops in front of TCP urgent
    # data (out of band, not part of the body) while poll keeps saying readable.
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port, timeout=10)
        first, rest = b"a" * (1 << 20), b"b" * 1000
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" %
                  (len(first) + len(rest)))
        s.sendall(first)
        time.sleep(0.2)  # the body is being spliced by now
        s.send(b"!", socket.MSG_OOB)
        time.sleep(0.2)
        s.sendall(rest)  # before the fix: the splice loop spun on, and no answer came
        r = ClientReader(s).response()
        check(r.status == 200 and r.body.decode() == hashlib.sha256(first + rest).hexdigest(),
              f"upload: {r.head}")
        s.close()


@test
def a_tls_upstream_body_cut_without_close_notify_is_not_passed_on_as_whole():
    # A body delimited by the close is whole over TLS only when close_notify ends it
    # (RFC 9112 §9.8): after a bare FIN the client must not get the final chunk.
    from tls_env import localhost_server_context, pki
    p = pki()
    ctx = localhost_server_context()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        for notify in (True, False):
            raw, _ = listener.accept()
            conn = ctx.wrap_socket(raw, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome of the body")
            if notify:
                try:
                    conn.unwrap()  # close_notify (the proxy's own need not come)
                except (ssl.SSLError, OSError):
                    pass
                raw.close()
            else:
                conn.close()  # a FIN without close_notify
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    port = free_port()
    tls = f'''
[upstream.tls]
ca_file = "{p}/ca.pem"
server_name = "localhost"
'''
    with Proxy(config(port, [listener.getsockname()[1]], upstream_extra=tls)) as proxy:
        for whole in (True, False):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/x")
            r = c.getresponse()
            try:
                body = r.read()
            except http.client.IncompleteRead:
                body = None
            if whole:
                check(r.status == 200 and body == b"some of the body", f"whole: {body!r}")
            else:
                check(body is None, f"a cut body was passed on as whole: {body!r}")
            c.close()
        proxy.wait_log(r"response body ended: error; closing the client")
    server.join(timeout=10)
    listener.close()


@test
def a_server_failing_the_tls_handshake_is_skipped_and_counted():
    # The handshake failed before any request byte went out: the next server gets the
    # request (a POST too), and the failing one counts against max_fails (1 here).
    from tls_env import closes_after_client_hello, localhost_server_context, pki
    p = pki()
    ctx = localhost_server_context()

    def good(raw):
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            while True:
                head = read_head(conn)
                if not head:
                    return
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                need = int(length.group(1)) if length else 0
                body = head[head.index(b"\r\n\r\n") + 4:]
                while len(body) < need:
                    body += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (ssl.SSLError, OSError):
            pass

    tls = f'''
[upstream.tls]
ca_file = "{p}/ca.pem"
server_name = "localhost"
'''
    port = free_port()
    with ThreadedServer(closes_after_client_hello) as bad, ThreadedServer(good) as good_server, \
            Proxy(config(port, [bad.port, good_server.port], upstream_extra=tls)):
        statuses = []
        for i in range(8):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST" if i % 2 else "GET", "/x", body=b"abc" if i % 2 else None)
            r = c.getresponse()
            statuses.append((r.status, r.read()))
            c.close()
        check(statuses == [(200, b"ok")] * 8, statuses)
        check(bad.connections == 1, f"the failing server had {bad.connections} connections")


@test
def a_refusal_and_a_dead_upstream_are_not_logged_as_reused_or_ok():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])) as p:
        s = connect(port)
        reader = ClientReader(s)
        for target in ("/size/1", "/size/1"):  # the second goes on the pooled connection
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            check(reader.response().status == 200, "a response")
        p.wait_log(r"access http .*target=/size/1 .*reused=1 ")
        s.sendall(b"GET /a%0d%0ab HTTP/1.1\r\nHost: a\r\n\r\n")
        check(reader.response().status == 403, "an encoded CR LF is refused")
        p.wait_log(r"access http .*target=/a%0d%0ab status=403 ")
        line = re.search(r"access http .*target=/a%0d%0ab status=403 .*", p.log_text()).group(0)
        check(" reused=0 " in line and " upstream=- " in line and line.endswith("end=refused"),
              line)
        s.close()
    dead = refused_port()
    with Proxy(config(port, [dead])) as p:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/size/1")
        check(c.getresponse().status == 502, "no upstream")
        p.wait_log(r"access http .*status=502 .*end=no-upstream")


@test
def a_query_cannot_forge_a_field_of_the_kv_access_line():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])) as p:
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(b"GET /size/1?status=999&user=mallory HTTP/1.1\r\nHost: a=b\r\n\r\n")
        check(reader.response().status == 200, "a response")
        s.close()
        p.wait_log(r"access http .*status=200 ")
        line = re.search(r"access http .*", p.log_text()).group(0)
        keys = re.findall(r"([a-z_]+)=", line)  # a naive reader's regex
        check(keys.count("status") == 1 and keys.count("user") == 1 and
              keys.count("host") == 1, line)
        check("target=/size/1?status\\x3D999&user\\x3Dmallory " in line, line)


def _dates(head):
    return [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"date:")]


@test
def every_answer_has_one_date_the_proxys_own_and_those_of_an_undated_upstream():
    port = free_port()
    location = '[[listener.location]]\nprefix = "/old/"\nredirect = "/new/"\n'
    with Origin() as origin, Proxy(config(port, [origin.port], listener_extra=location)):
        s = connect(port)
        reader = ClientReader(s)
        s.sendall(get(port, "/size/3") + get(port, "/old/") + b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n")
        answers = [reader.response() for _ in range(3)]
        s.close()
        check([r.status for r in answers] == [200, 302, 405], [r.head for r in answers])
        for r in answers:
            dates = _dates(r.head)
            check(len(dates) == 1, r.head)
            when = email.utils.parsedate_to_datetime(dates[0])
            check(dates[0].endswith(" GMT") and abs(time.time() - when.timestamp()) < 60, dates[0])


@test
def the_proxys_own_answer_to_head_has_no_body():
    port = free_port()
    with Proxy(config(port, [refused_port()])):
        s = connect(port)
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = recv_all(s)
        s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 502 ") and b"Content-Length: 16" in head and rest == b"",
              data)


@test
def one_gib_up_and_down_byte_exact_over_http():
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        _gib_both_ways(lambda: connect(port, timeout=120), port, "a")


def _read_to_end(sock, cut_error):
    """Everything until the peer's end, and whether that end was `cut_error`."""
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got, False
            got += chunk
    except cut_error:
        return got, True


@test
def an_https_http_1_0_body_cut_by_the_upstream_ends_without_close_notify():
    # The body goes to an HTTP/1.0 client delimited by the close: only the missing
    # close_notify tells it that the upstream cut it short.
    from tls_env import name, pki

    def origin(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        if b"/whole" in head:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        conn.close()

    port = free_port()
    with ThreadedServer(origin) as up, \
            Proxy(config(port, [up.port], protocol="https", tls=https_tables(pki()))):
        ctx = ssl.create_default_context(cafile=os.path.join(pki(), "ca.pem"))
        for target, whole in (("/whole", True), ("/cut", False)):
            s = ctx.wrap_socket(connect(port), server_hostname=name(3),
                                suppress_ragged_eofs=False)
            s.sendall(f"GET {target} HTTP/1.0\r\nHost: mail.example.com\r\n\r\n".encode())
            got, cut = _read_to_end(s, ssl.SSLEOFError)
            ended = "cut" if cut else "close_notify"
            s.close()
            check(got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\nhello"), got)
            check(ended == ("close_notify" if whole else "cut"), f"{target}: {ended}")


@test
def a_plain_http_1_0_body_cut_by_the_upstream_ends_with_a_reset():
    # Without TLS a close-delimited body has only the way the connection ends to say it
    # is incomplete: a FIN would pass a cut body off as whole.
    def origin(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        if b"/whole" in head:
            conn.sendall(b"0\r\n\r\n")
        else:
            time.sleep(0.2)  # the head and "hello" reach the client first
            conn.sendall(b"5\r\nwor")
        conn.close()

    port = free_port()
    with ThreadedServer(origin) as up, Proxy(config(port, [up.port])):
        for target, whole in (("/whole", True), ("/cut", False)):
            s = connect(port)
            s.sendall(f"GET {target} HTTP/1.0\r\nHost: mail.example.com\r\n\r\n".encode())
            got, cut = _read_to_end(s, ConnectionResetError)
            ended = "reset" if cut else "fin"
            s.close()
            check(got.startswith(b"HTTP/1.1 200 ") and b"\r\n\r\nhello" in got, got)
            check(ended == ("fin" if whole else "reset"), f"{target}: {ended} after {got!r}")


@test
def a_plain_http_1_0_body_the_proxy_gives_up_on_ends_with_a_reset():
    # The proxy ends a close-delimited body itself (the drain deadline, a client that
    # stopped reading): that end must not be a FIN either, or the body passes for whole.
    def origin(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nhello")
            if b"/big" in head:
                conn.sendall(b"x" * (32 << 20))
            else:
                time.sleep(3)  # still streaming at the drain deadline
        except OSError:
            pass
        conn.close()

    port = free_port()
    with ThreadedServer(origin) as up:
        p = Proxy(config(port, [up.port], drain_ms=500))
        try:
            s = connect(port)
            s.sendall(b"GET /slow HTTP/1.0\r\n\r\n")
            head = b""
            while b"hello" not in head:
                head += s.recv(4096)
            p.signal(signal.SIGTERM)
            got, cut = _read_to_end(s, ConnectionResetError)
            s.close()
            check(cut, f"drain: the cut body ended with a FIN after {got!r}")
            p.wait_exit(timeout=10)
        finally:
            p.stop()
    port = free_port()
    with ThreadedServer(origin) as up, \
            Proxy(config(port, [up.port], listener_extra="send_timeout_ms = 300")) as p:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        p.wait_log(r"end=send-failed")
        s.settimeout(10)
        got, cut = _read_to_end(s, ConnectionResetError)
        s.close()
        check(len(got) < (32 << 20), "the whole body arrived")
        check(cut, f"send timeout: {len(got)} bytes, then a FIN")


@test
def https_clients_that_stop_reading_pin_no_receive_buffers():
    # Each client sends two requests as two TLS records in one write and reads nothing:
    # the first one's answer fills the sockets, so its session waits to write. Were the
    # buffer holding the second record kept meanwhile, these clients would pin all of
    # the shard's 64 receive buffers and nobody else would be read.
    from tls_env import name, pki
    d = pki()
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port], protocol="https",
                                          tls=https_tables(d), listener_extra="send_buffer = 4096",
                                          runtime_extra="buffer_count = 64")):
        stalled = []
        for _ in range(80):
            sock = connect(port)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_hostname=name(3))
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            tls.write(get(port, "/size/20000000"))
            tls.write(get(port, "/size/1"))
            sock.sendall(outgoing.read())  # the Finished flight and both records at once
            stalled.append(sock)
        time.sleep(0.5)
        c = ctx.wrap_socket(connect(port, timeout=5), server_hostname=name(3))
        c.sendall(get(port, "/size/10"))
        r = ClientReader(c).response()
        check(r.status == 200 and r.body == pattern(10), f"not served while {len(stalled)} stall")
        c.close()
        for sock in stalled:
            sock.close()


@test
def one_gib_up_and_down_byte_exact_over_https():
    import ssl
    from tls_env import name, pki
    d = pki()
    port = free_port()
    tls = https_tables(d)
    host = name(3)
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")

    def make():
        raw = connect(port, timeout=120)
        return ctx.wrap_socket(raw, server_hostname=host)
    with Origin() as origin, Proxy(config(port, [origin.port], protocol="https", tls=tls)):
        _gib_both_ways(make, port, host)


@test
def an_https_listener_turns_the_mailbox_servers_http_redirects_into_https():
    # Zimbra (spec §5.2): on HTTPS servers, a Location naming the client's Host, or the
    # mailbox server itself, over http becomes https://<Host>/...; others are left alone.
    import ssl
    from urllib.parse import quote
    from tls_env import name, pki
    d = pki()
    port = free_port()
    host = name(3)
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    with Origin() as origin, Proxy(config(port, [origin.port], protocol="https",
                                          tls=https_tables(d))):
        cases = [(f"http://{host}/zimbra/?a=1", f"https://{host}/zimbra/?a=1"),
                 (f"HTTP://{host.upper()}", f"https://{host}/"),
                 (f"http://127.0.0.1:{origin.port}/service/home/x",
                  f"https://{host}/service/home/x"),
                 (f"http://{host}:{origin.port}/y", f"https://{host}/y"),
                 (f"https://{host}/z", f"https://{host}/z"),
                 ("http://elsewhere.example/q", "http://elsewhere.example/q"),
                 (f"http://{host}.evil.example/", f"http://{host}.evil.example/"),
                 ("/relative", "/relative")]
        for sent, want in cases:
            s = ctx.wrap_socket(connect(port), server_hostname=host)
            s.sendall(b"GET /location?to=%s HTTP/1.1\r\nHost: %s\r\n\r\n"
                      % (quote(sent, safe="").encode(), host.encode()))
            r = ClientReader(s).response()
            check(r.status == 302 and r.field("location") == want,
                  f"{sent}: {r.field('location')}")
            s.close()
    # Over plain HTTP nothing is rewritten.
    port = free_port()
    with Origin() as origin, Proxy(config(port, [origin.port])):
        s = connect(port)
        s.sendall(b"GET /location?to=%s HTTP/1.1\r\nHost: %s\r\n\r\n"
                  % (quote(f"http://{host}/a", safe="").encode(), host.encode()))
        r = ClientReader(s).response()
        check(r.field("location") == f"http://{host}/a", r.head)
        s.close()


@test
def curl_and_https_listener():
    from tls_env import name, pki
    d = pki()
    port = free_port()
    tls = https_tables(d)
    with Origin() as origin, Proxy(config(port, [origin.port], protocol="https", tls=tls)):
        host = name(7)
        out = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ca.pem", "--resolve",
                              f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/size/100000",
                              f"https://{host}:{port}/chunked/5000"],
                             capture_output=True, timeout=30)
        check(out.returncode == 0, out.stderr)
        check(out.stdout == pattern(100000) + pattern(5000), "curl body over TLS")
        check(origin.connections == 1, "curl's two requests used one upstream connection")
        head = origin.heads()[0].decode()
        check("X-Forwarded-Proto: https\r\n" in head, head)


@test
def web_mail_modes_redirect_between_the_http_and_https_listeners():
    import ssl
    from tls_env import name, pki
    d = pki()
    host = name(7)
    port, sport = free_port(), free_port()
    https_listener = f"""
[[listener]]
name = "web-tls"
protocol = "https"
listen = "127.0.0.1:{sport}"
upstream = "web"
mail_mode = "mixed"
mail_mode_port = {port}
{https_tables(d)}"""
    modes = f'mail_mode = "mixed"\nmail_mode_port = {sport}'
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    with Origin() as a, Proxy(config(port, [a.port], listener_extra=modes, tls=https_listener)):
        def ask(tls, target, cookie=""):
            s = connect(sport if tls else port)
            if tls:
                s = ctx.wrap_socket(s, server_hostname=host)
            extra = f"Cookie: {cookie}\r\n" if cookie else ""
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
            r = ClientReader(s).response()
            s.close()
            return r
        token = "ZM_AUTH_TOKEN=0_abc_69643d333a313233"
        r = ask(False, "/h/search?q=1")
        check(r.status == 302 and
              r.field("location") == f"https://{host}:{sport}/h/search?q=1&zminitmode=http", r.head)
        r = ask(False, "/?loginOp=logout", token)
        check(r.status == 302 and r.field("location") ==
              f"https://{host}:{sport}/?loginOp=logout&zminitmode=http", r.head)
        r = ask(False, "/h/changepass", token)
        check(r.status == 302, r.head)
        check(a.heads() == [], "a redirected request reached the origin")
        r = ask(False, "/size/5", token)
        check(r.status == 200 and r.body == pattern(5), "an authenticated HTTP request is proxied")
        s = connect(port)  # the server itself ("*") has no page to redirect to
        s.sendall(f"OPTIONS * HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        r = ClientReader(s).response()
        s.close()
        check(r.status != 302, f"OPTIONS * was redirected: {r.head}")
        r = ask(True, "/h/search?q=1&zminitmode=http", token)
        check(r.status == 302 and r.field("location") == f"http://{host}:{port}/h/search?q=1",
              r.head)
        a.clear()
        r = ask(True, "/size/3?zminitmode=http")  # the login page, over HTTPS
        check(r.status == 200 and r.body == pattern(3), r.head)
        check(a.heads()[0].startswith(b"GET /size/3?zminitmode=http HTTP/1.1"), a.heads()[0])
        # curl follows the logout from HTTP to HTTPS and stays there.
        out = subprocess.run(
            ["curl", "-sS", "-L", "--cacert", f"{d}/ca.pem", "-b", token, "-o", "/dev/null",
             "-w", "%{http_code} %{num_redirects} %{url_effective}",
             "--resolve", f"{host}:{port}:127.0.0.1", "--resolve", f"{host}:{sport}:127.0.0.1",
             f"http://{host}:{port}/size/1?loginOp=logout"],
            capture_output=True, timeout=30, text=True)
        check(out.returncode == 0 and out.stdout ==
              f"200 1 https://{host}:{sport}/size/1?loginOp=logout&zminitmode=http",
              f"{out.stdout} {out.stderr}")
    with Origin() as a:
        port = free_port()
        with Proxy(config(port, [a.port], listener_extra='mail_mode = "redirect"')):
            s = connect(port)
            s.sendall(get(port, "/x/y?z=1", host="mail.example.com:8080"))
            r = ClientReader(s).response()
            s.close()
            check(r.status == 302 and r.field("location") == "https://mail.example.com/x/y?z=1",
                  r.head)
            check(a.heads() == [], "redirect mode proxied a request")


if __name__ == "__main__":
    sys.exit(run_all(sys.argv))

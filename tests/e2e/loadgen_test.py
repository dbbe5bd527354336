#!/usr/bin/env python3
"""The load generator's own tests: against trivial in-test servers, its counts of
operations, bytes and errors must be exact, and a misbehaving server must show up as
counted errors (never silently ignored). The TLS modes run against a real ringproxy
TLS listener with self-signed ECDSA P-256 and RSA-2048 pairs made by `openssl req`."""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Proxy, ThreadedServer, check, echo_handler, free_port,  # noqa: E402
                     refused_port, run_all, test)

LOADGEN = os.environ.get("LOADGEN_BIN", "build/release/tools/loadgen")


def loadgen(*args, timeout=120):
    r = subprocess.run([LOADGEN, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    lines = r.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    return r.returncode, result, r.stderr


def read_until(conn, marker):
    data = b""
    while marker not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


@test
def tcp_echo_counts_exactly():
    with ThreadedServer(echo_handler) as s:
        rc, r, err = loadgen("tcp-echo", "--target", f"127.0.0.1:{s.port}", "--connections", 4,
                             "--size", 100, "--count", 1000, "--duration", 60)
        check(rc == 0, err)
        check(r["ops"] == 1000, r)
        check(r["bytes_sent"] == 100000 and r["bytes_received"] == 100000, r)
        check(r["latency_us"]["count"] == 1000, r)
        check(r["errors_total"] == 0 and r["connects"] == 4, r)


@test
def a_count_smaller_than_the_threads_is_kept():
    # A thread whose share is 0 ran without limit (0 meant "no --count").
    with ThreadedServer(echo_handler) as s:
        rc, r, err = loadgen("tcp-echo", "--target", f"127.0.0.1:{s.port}", "--connections", 4,
                             "--threads", 4, "--size", 10, "--count", 2, "--duration", 0,
                             timeout=30)
        check(rc == 0, err)
        check(r["ops"] == 2, r)


@test
def open_loop_operations_due_before_the_end_are_measured_when_late():
    # A stall just before the end puts the schedule behind: the late operations were
    # dropped, and with them the latency the stall caused.
    def stalling_echo(conn):
        stalled = False
        started = None
        while True:
            data = conn.recv(65536)
            if not data:
                return
            started = started or time.monotonic()
            if not stalled and time.monotonic() - started > 2.7:
                stalled = True
                time.sleep(0.5)
            conn.sendall(data)

    with ThreadedServer(stalling_echo) as s:
        rc, r, err = loadgen("tcp-echo", "--target", f"127.0.0.1:{s.port}", "--connections", 1,
                             "--size", 10, "--rate", 1000, "--duration", 3, timeout=30)
        check(rc == 0, err)
        check(r["latency_us"]["count"] >= 2950, r)
        check(r["latency_us"]["p99"] > 100000, r)


@test
def tcp_echo_catches_corrupted_bytes():
    def corrupting(conn):
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                return
            n += len(data)
            if n > 5000:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            conn.sendall(data)

    with ThreadedServer(corrupting) as s:
        rc, r, err = loadgen("tcp-echo", "--target", f"127.0.0.1:{s.port}", "--connections", 1,
                             "--size", 1000, "--count", 100, "--duration", 60)
        check(rc == 3, f"exit {rc}: {err}")
        check(r["errors"].get("received bytes differ from those sent") == 1, r)
        check(r["ops"] == 5, r)  # bytes 0..4999 came back right, the 6th exchange did not
        check("received bytes differ" in err, err)


@test
def bulk_verifies_every_byte():
    with ThreadedServer(echo_handler) as s:
        rc, r, err = loadgen("bulk", "--target", f"127.0.0.1:{s.port}", "--connections", 2,
                             "--duration", 1)
        check(rc == 0, err)
        check(r["verified_bytes"] == r["bytes_sent"] > 0, r)
        check(r["errors_total"] == 0, r)


def http_server(responses_per_conn=None, chunked=False, status_every=0, corrupt_every=0):
    """A minimal keep-alive HTTP server; counts requests, bytes and request bodies."""
    state = {"requests": 0, "req_bytes": 0, "resp_bytes": 0, "bodies": []}
    lock = threading.Lock()

    def handler(conn):
        buf = b""
        served = 0
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = 0
            for h in head.split(b"\r\n")[1:]:
                name, _, value = h.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return
                buf += chunk
            body_in, buf = buf[:length], buf[length:]
            with lock:
                state["requests"] += 1
                state["req_bytes"] += len(head) + 4 + length
                if length:
                    state["bodies"].append(body_in)
                n = state["requests"]
            status = b"500 Oops" if status_every and n % status_every == 0 else b"200 OK"
            body = b"x" * 300
            if corrupt_every and n % corrupt_every == 0:
                body = body[:150] + b"y" + body[151:]
            if chunked:
                resp = (b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"100\r\n" + body[:256] + b"\r\n2c\r\n" + body[256:] + b"\r\n0\r\n\r\n")
            else:
                resp = b"HTTP/1.1 " + status + b"\r\nContent-Length: 300\r\n\r\n" + body
            served += 1
            close = b"connection: close" in head.lower() or (
                responses_per_conn and served >= responses_per_conn)
            if close:
                resp = resp.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            with lock:
                state["resp_bytes"] += len(resp)
            conn.sendall(resp)
            if close:
                return
    return handler, state


@test
def http_counts_requests_and_bytes_exactly():
    handler, state = http_server()
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 4,
                             "--count", 500, "--duration", 60, "--expect-size", 300)
        check(rc == 0, err)
        check(r["ops"] == 500 and state["requests"] == 500, (r, state))
        check(r["connects"] == 4, r)
        check(r["errors_total"] == 0, r)
        check(r["bytes_sent"] == state["req_bytes"], (r["bytes_sent"], state["req_bytes"]))
        check(r["bytes_received"] == state["resp_bytes"],
              (r["bytes_received"], state["resp_bytes"]))


@test
def http_post_bodies_larger_than_a_pattern_chunk_are_whole():
    # 2.5 MiB: above the pattern's 1 MiB chunk, so the body is built from several.
    size = 5 << 19
    handler, state = http_server()
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 1,
                             "--count", 3, "--duration", 60, "--request-size", size,
                             "--expect-size", 300)
        check(rc == 0, err)
        check(r["ops"] == 3 and state["requests"] == 3, (r, state["requests"]))
        check([len(b) for b in state["bodies"]] == [size] * 3, [len(b) for b in state["bodies"]])
        check(r["bytes_sent"] == state["req_bytes"], (r["bytes_sent"], state["req_bytes"]))
        # The body is the pattern stream from offset 0, which repeats with a period of
        # 1048573 bytes (bench/loadgen/pattern.h): chunks joined with a seam break that.
        period = 1048573
        for body in state["bodies"]:
            check(body[:size - period] == body[period:], "body is not the pattern stream")


@test
def http_pipelining_chunked_and_reconnects():
    handler, state = http_server(responses_per_conn=10, chunked=True)
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 2,
                             "--pipeline", 5, "--count", 200, "--duration", 60,
                             "--expect-size", 300)
        check(rc == 0, err)
        check(r["ops"] == 200 and state["requests"] == 200, (r, state))
        # The server closes after 10 responses: 20 connections for 200 requests, or 21
        # when the count runs out while both connections are half-way through theirs.
        check(20 <= r["connects"] <= 21, r)


@test
def http_wrong_status_is_counted_per_response():
    handler, state = http_server(status_every=10)
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 1,
                             "--count", 100, "--duration", 60)
        check(rc == 3, f"exit {rc}")
        check(r["errors"] == {"http: status 500": 10}, r)
        # A wrong answer is an error, not an operation: it must not make a target look faster.
        check(r["ops"] == 90, r)


@test
def http_body_bytes_are_checked_against_the_fill():
    handler, state = http_server(corrupt_every=5, chunked=True)
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 2,
                             "--count", 50, "--duration", 60, "--expect-size", 300,
                             "--expect-fill", "x")
        check(rc == 3, f"exit {rc}")
        check(r["errors"] == {"http: body differs from --expect-fill": 10}, r)
        check(r["ops"] == 40 and state["requests"] == 50, (r, state["requests"]))


@test
def http_one_request_per_connection():
    handler, state = http_server()
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--connections", 3,
                             "--keepalive", 0, "--count", 60, "--duration", 60)
        check(rc == 0, err)
        check(r["ops"] == 60 and r["connects"] == 60, r)


@test
def http_garbage_is_a_protocol_error():
    def garbage(conn):
        read_until(conn, b"\r\n\r\n")
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

    with ThreadedServer(garbage) as s:
        rc, r, err = loadgen("http", "--target", f"127.0.0.1:{s.port}", "--count", 5,
                             "--duration", 60)
        check(rc == 3, f"exit {rc}")
        check(r["errors"].get("http: bad status line") == 5, r)


def imap_server(accept_password="secret"):
    state = {"logins": 0}
    lock = threading.Lock()  # a handler thread per connection

    def handler(conn):
        conn.sendall(b"* OK test ready\r\n")
        f = conn.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return
            tag, cmd, *rest = line.decode().rstrip("\r\n").split(" ", 2)
            if cmd.upper() == "LOGIN":
                args = rest[0]
                if args.endswith(f'"{accept_password}"'):
                    with lock:
                        state["logins"] += 1
                    conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag.encode() + b" OK done\r\n")
                else:
                    conn.sendall(tag.encode() + b" NO [AUTHENTICATIONFAILED] bad\r\n")
            elif cmd.upper() == "LOGOUT":
                conn.sendall(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n")
                return
    return handler, state


@test
def imap_login_counts_logins_exactly():
    handler, state = imap_server()
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("imap-login", "--target", f"127.0.0.1:{s.port}", "--connections", 4,
                             "--count", 200, "--duration", 60)
        check(rc == 0, err)
        check(r["ops"] == 200 and state["logins"] == 200 and r["connects"] == 200, (r, state))
        check(r["latency_us"]["count"] == 200, r)


@test
def imap_rejected_login_is_counted():
    handler, state = imap_server(accept_password="other")
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("imap-login", "--target", f"127.0.0.1:{s.port}", "--count", 20,
                             "--duration", 60)
        check(rc == 3, f"exit {rc}")
        check(r["ops"] == 0, r)
        check(r["errors"] == {"imap login rejected: 'a NO [AUTHENTICATIONFAILED] bad'": 20}, r)


@test
def imap_login_has_one_deadline_for_the_whole_dialogue():
    # A target that answers LOGIN with an untagged line every 0.3 s and never a tagged
    # one: each line used to start a fresh --io-timeout, so the run never ended.
    def handler(conn):
        conn.sendall(b"* OK test ready\r\n")
        conn.recv(1024)
        for _ in range(200):
            try:
                conn.sendall(b"* OK still here\r\n")
            except OSError:
                return
            time.sleep(0.3)
    with ThreadedServer(handler) as s:
        started = time.monotonic()
        rc, r, err = loadgen("imap-login", "--target", f"127.0.0.1:{s.port}", "--count", 1,
                             "--duration", 1, "--io-timeout", 1.5, timeout=30)
        took = time.monotonic() - started
        check(rc == 3 and r["ops"] == 0, (rc, r, err))
        check(list(r["errors"]) == ["imap login: Connection timed out"], r)
        check(took < 10, f"took {took:.1f} s")
        check(r.get("latency_us", {}).get("count", 0) == 0, r)  # no histogram when empty


@test
def imap_latency_counts_only_sessions_that_ended_well():
    # LOGIN succeeds, LOGOUT is refused: the session is an error, and its login latency
    # is not in the percentiles.
    def handler(conn):
        conn.sendall(b"* OK test ready\r\n")
        f = conn.makefile("rb")
        while line := f.readline():
            tag, cmd = line.decode().split(" ", 2)[:2]
            if cmd.upper() == "LOGIN":
                conn.sendall(tag.encode() + b" OK done\r\n")
            else:
                conn.sendall(tag.encode() + b" NO not now\r\n")
                return
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("imap-login", "--target", f"127.0.0.1:{s.port}", "--count", 5,
                             "--duration", 60)
        check(rc == 3 and r["ops"] == 0, (rc, r, err))
        check(r.get("latency_us", {}).get("count", 0) == 0, r)  # no histogram when empty


@test
def pop3_login_with_a_users_file():
    seen = []

    def handler(conn):
        conn.sendall(b"+OK ready\r\n")
        f = conn.makefile("rb")
        while True:
            line = f.readline().decode().rstrip("\r\n")
            if not line:
                return
            cmd, _, arg = line.partition(" ")
            if cmd == "USER":
                seen.append(arg)
            if cmd == "PASS" and arg != "pw-" + seen[-1]:
                conn.sendall(b"-ERR bad\r\n")
                continue
            conn.sendall(b"+OK\r\n")
            if cmd == "QUIT":
                return

    users = os.path.join(tempfile.gettempdir(), f"loadgen-users-{os.getpid()}")
    with open(users, "w") as f:
        f.write("# comment\nalice pw-alice\nbob pw-bob\n")
    with ThreadedServer(handler) as s:
        rc, r, err = loadgen("pop3-login", "--target", f"127.0.0.1:{s.port}", "--users", users,
                             "--count", 10, "--duration", 60)
        check(rc == 0, err)
        check(r["ops"] == 10, r)
        check(sorted(set(seen)) == ["alice", "bob"], seen)
    os.unlink(users)


@test
def idle_counts_connections_the_target_closes():
    closed = []
    lock = threading.Lock()  # the check and the append as one step across threads

    def half_close(conn):
        data = conn.recv(64)
        conn.sendall(data)
        with lock:
            close_now = len(closed) < 5
            if close_now:
                closed.append(1)
        if close_now:
            return  # closes this one while it should be idle
        conn.recv(1)

    with ThreadedServer(half_close) as s:
        rc, r, err = loadgen("idle", "--target", f"127.0.0.1:{s.port}", "--connections", 20,
                             "--send-first", 8, "--hold", 0.5)
        check(r["opened"] == 20, r)
        check(r["closed_early"] == 5, r)
        check(rc == 3, f"exit {rc}")


CERT_NAME = "loadgen.test"
_CERTS = {}


def cert_pair(kind):
    """(certificate, key) of a self-signed pair for CERT_NAME: kind ecdsa or rsa."""
    if kind not in _CERTS:
        d = _CERTS.setdefault("dir", tempfile.mkdtemp(prefix="loadgen-tls-"))
        new_key = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                   "rsa": ["-newkey", "rsa:2048"]}[kind]
        crt, key = os.path.join(d, f"{kind}.crt"), os.path.join(d, f"{kind}.key")
        subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-keyout", key,
                        "-out", crt, "-days", "2", "-subj", f"/CN={CERT_NAME}",
                        "-addext", f"subjectAltName=DNS:{CERT_NAME}"],
                       check=True, capture_output=True, timeout=60)
        _CERTS[kind] = (crt, key)
    return _CERTS[kind]


class TlsRelay:
    """ringproxy terminating TLS with one pair, relaying to an in-test echo server."""

    def __init__(self, kind="ecdsa", handler=echo_handler):
        crt, key = cert_pair(kind)
        self.upstream = ThreadedServer(handler)
        self.port = free_port()
        self.proxy = Proxy(f"""
[runtime]
shards = 1
[log]
level = "info"
access = false
[[upstream]]
name = "echo"
servers = ["127.0.0.1:{self.upstream.port}"]
[[listener]]
name = "tls"
protocol = "tcp"
listen = "127.0.0.1:{self.port}"
upstream = "echo"
[listener.tls]
certificate = "{crt}"
key = "{key}"
""")
        self.target = f"127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        self.upstream.close()


@test
def tls_handshakes_count_exactly_with_either_key():
    for kind in ("ecdsa", "rsa"):
        with TlsRelay(kind) as relay:
            crt, _ = cert_pair(kind)
            rc, r, err = loadgen("tls-handshake", "--target", relay.target, "--connections", 4,
                                 "--count", 60, "--duration", 60, "--sni", CERT_NAME,
                                 "--ca", crt)
            check(rc == 0, err)
            check(r["ops"] == 60 and r["connects"] == 60 and r["latency_us"]["count"] == 60, r)
            # One 16-byte message each way per handshake, every byte checked.
            check(r["bytes_sent"] == r["bytes_received"] == r["verified_bytes"] == 60 * 16, r)
            tls = r["tls"]
            check(tls["handshakes"] == tls["full"] == 60 and tls["resumed"] == 0, tls)
            check(tls["verify"] is True and tls["sni"] == CERT_NAME, tls)
            check(relay.upstream.connections == 60, relay.upstream.connections)


@test
def tls_resume_reuses_each_slots_session():
    with TlsRelay() as relay:
        for version in ("1.2", "1.3"):
            rc, r, err = loadgen("tls-handshake", "--target", relay.target, "--connections", 4,
                                 "--count", 100, "--duration", 60, "--resume", "--tls-version",
                                 version)
            check(rc == 0, err)
            tls = r["tls"]
            # The first handshake of each of the 4 slots is full, every later one resumed.
            check(r["ops"] == 100 and tls["full"] == 4 and tls["resumed"] == 96, tls)
            check(tls["resumed_fraction"] == 0.96, tls)
            check(sum(tls["negotiated"].values()) == 100, tls)
            check(all(k.startswith(f"TLSv{version} ") for k in tls["negotiated"]), tls)


@test
def tls_echo_bulk_and_idle_over_the_proxy():
    with TlsRelay() as relay:
        rc, r, err = loadgen("tcp-echo", "--tls", "--target", relay.target, "--connections", 4,
                             "--size", 1000, "--count", 400, "--duration", 60)
        check(rc == 0, err)
        check(r["ops"] == 400 and r["bytes_sent"] == r["bytes_received"] == 400000, r)
        check(r["tls"]["handshakes"] == 4 and r["connects"] == 4, r)
        rc, r, err = loadgen("bulk", "--tls", "--target", relay.target, "--connections", 2,
                             "--duration", 1)
        check(rc == 0, err)
        check(r["verified_bytes"] == r["bytes_sent"] > 0 and r["ops"] == 2, r)
        check(r["tls"]["handshakes"] == 2, r)
        rc, r, err = loadgen("idle", "--tls", "--target", relay.target, "--connections", 40,
                             "--send-first", 16, "--hold", 0.5, "--batch", 10,
                             "--measure-pid", relay.proxy.pid)
        check(rc == 0, err)
        check(r["opened"] == 40 and r["closed_early"] == 0, r)
        check(r["tls"]["handshakes"] == 40 and r["verified_bytes"] == 40 * 16, r)
        check("rss_per_conn" in r, r)


@test
def tls_idle_connections_take_session_tickets_as_quiet():
    # An OpenSSL server (nginx, Python's ssl) sends its TLS 1.3 tickets after the
    # handshake: records, not data, on a connection that is otherwise idle. One that
    # closes is still counted.
    crt, key = cert_pair("ecdsa")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    closing = []

    def handler(conn):
        with server_ctx.wrap_socket(conn, server_side=True) as s:
            if not closing:  # the first connection is closed at once
                closing.append(1)
                return
            try:
                s.recv(1)
            except OSError:
                pass

    with ThreadedServer(handler) as srv:
        rc, r, err = loadgen("idle", "--tls", "--target", f"127.0.0.1:{srv.port}",
                             "--connections", 6, "--hold", 0.5, "--batch", 1)
        check(r["opened"] == 6 and r["closed_early"] == 1, (r, err))


@test
def http_over_tls_keep_alive_and_one_request_per_connection():
    handler, state = http_server()
    with TlsRelay(handler=handler) as relay:
        rc, r, err = loadgen("http", "--tls", "--target", relay.target, "--connections", 4,
                             "--count", 200, "--duration", 60, "--expect-size", 300)
        check(rc == 0, err)
        check(r["ops"] == 200 and state["requests"] == 200 and r["errors_total"] == 0, r)
        check(r["tls"]["handshakes"] == 4 and r["connects"] == 4, r)
        check(r["bytes_received"] == state["resp_bytes"], (r["bytes_received"], state))
        rc, r, err = loadgen("http", "--tls", "--target", relay.target, "--connections", 3,
                             "--keepalive", 0, "--count", 30, "--duration", 60, "--resume")
        check(rc == 0, err)
        check(r["ops"] == 30 and r["tls"]["handshakes"] == 30 and r["tls"]["resumed"] >= 20, r)


@test
def tls_failures_are_counted():
    with TlsRelay() as relay:
        crt, _ = cert_pair("ecdsa")
        rc, r, err = loadgen("tls-handshake", "--target", relay.target, "--count", 5,
                             "--duration", 60, "--sni", "other.test", "--ca", crt)
        check(rc == 3, f"exit {rc}: {err}")
        check(r["ops"] == 0 and r["tls"]["handshakes"] == 0, r)
        check(list(r["errors"].values()) == [5] and "name mismatch" in list(r["errors"])[0], r)
    # A plaintext echo server answers the ClientHello with the ClientHello: not TLS.
    with ThreadedServer(echo_handler) as s:
        rc, r, err = loadgen("tls-handshake", "--target", f"127.0.0.1:{s.port}", "--count", 3,
                             "--duration", 60)
        check(rc == 3, f"exit {rc}: {err}")
        check(r["errors_total"] == 3 and all(k.startswith("tls handshake") for k in r["errors"]),
              r)


@test
def tls_usage_is_checked():
    for args, text in ((["tcp-echo", "--sni", "a"], "need --tls"),
                       (["serve", "--tls", "--listen", "127.0.0.1:0"], "--tls is for"),
                       (["bulk", "--tls", "--ca", "x.pem"], "--ca needs --sni"),
                       (["bulk", "--tls", "--tls-version", "1.1"], "bad value")):
        r = subprocess.run([LOADGEN, *args, "--target", "127.0.0.1:1"], capture_output=True,
                           text=True)
        check(r.returncode == 1 and text in r.stderr, (args, r.stderr))


@test
def unreachable_target_is_a_clear_error():
    rc, r, err = loadgen("tcp-echo", "--target", f"127.0.0.1:{refused_port()}", "--count", 3,
                         "--duration", 5)
    check(rc == 1, f"exit {rc}")
    check("unreachable" in err and "Connection refused" in err, err)


@test
def bad_usage_is_reported():
    r = subprocess.run([LOADGEN, "http", "--target", "nowhere"], capture_output=True, text=True)
    check(r.returncode == 1 and "expected host:port" in r.stderr, r.stderr)
    r = subprocess.run([LOADGEN, "flood"], capture_output=True, text=True)
    check(r.returncode == 1 and "unknown scenario" in r.stderr, r.stderr)


if __name__ == "__main__":
    check(os.path.exists(LOADGEN), f"no binary at {LOADGEN} (set LOADGEN_BIN)")
    sys.exit(run_all(sys.argv))

#!/usr/bin/env python3
"""End-to-end tests of TLS on the TCP listener: the real daemon with real clients
(openssl s_client, curl, Python ssl) and real upstreams (plain and TLS), a private PKI
made by tests/tls/make_test_certs. Run:
  RINGPROXY_BIN=build/release/tools/ringproxy \
  MAKE_TEST_CERTS_BIN=build/release/tests/make_test_certs tests/e2e/tls_test.py"""
import asyncio
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, RUN_DIR, Proxy, ThreadedServer, check, echo_handler, free_port,  # noqa: E402
                     read_head, read_slowly, recv_all, run_all, run_check, sender_then_eof,
                     test, wait_until)
from tls_env import (MAKE_CERTS, NAMES, client_context, closes_after_client_hello,  # noqa: E402
                     common_name, config, echo_once, localhost_server_context, name, pki,
                     s_client, tls_connect)


@test
def tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port)) as proxy:
            for flag in ("-tls1", "-tls1_1"):
                # SECLEVEL=0 makes the client willing; the refusal must be the proxy's.
                rc, out = s_client(port, flag, "-cipher", "DEFAULT@SECLEVEL=0", "-servername",
                                   name(1))
                # The proxy's refusal: an alert or no cipher, not a client that would
                # not offer the version ("no protocols available").
                check(rc != 0 and ("alert protocol version" in out or "Cipher is (NONE)" in out)
                      and "no protocols available" not in out,
                      f"{flag} was not refused by the proxy:\n{out[-1500:]}")
            for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
                rc, out = s_client(port, flag, "-servername", name(1), "-CAfile",
                                   os.path.join(pki(), "ca.pem"), "-verify_return_error")
                check(f"Protocol  : {version}" in out or f"New, {version}" in out,
                      f"{flag} not accepted:\n{out[-1500:]}")
            for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                ctx = client_context(minimum=version, maximum=version,
                                     ciphers="DEFAULT@SECLEVEL=0")
                try:
                    tls_connect(port, name(1), ctx).close()
                    raise AssertionError(f"Python {version} handshake succeeded")
                except ssl.SSLError:
                    pass
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                with tls_connect(port, name(1), client_context(minimum=version,
                                                               maximum=version)) as s:
                    check(s.version() == version.name.replace("_", "."),
                          f"negotiated {s.version()}")
                    cipher = s.cipher()[0]
                    check("GCM" in cipher or "CHACHA20" in cipher, f"not AEAD: {cipher}")
                    check(cipher.startswith("TLS_") or cipher.startswith("ECDHE"),
                          f"no forward secrecy: {cipher}")
                    check(echo_once(s) == b"ping", "echo through TLS")
            proxy.wait_log(r"TLS handshake failed", count=4)


@test
def only_the_policy_key_exchange_groups_are_accepted():
    # X25519, P-256, X448, P-521, P-384 (OpenSSL's default set). The others (brainpool,
    # secp256k1, ...) run on wolfSSL's generic ECC code, which keeps a ~800 KB table per
    # curve and thread; a client must not be able to make a shard build them.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port)) as proxy:
            for group in ("brainpoolP256r1", "brainpoolP384r1", "secp256k1"):
                # Offered first, with P-256 (which the ECDSA certificate needs in TLS
                # 1.2) after it: the key exchange must be P-256's.
                rc, out = s_client(port, "-tls1_2", "-groups", f"{group}:P-256", "-cipher",
                                   "ECDHE@SECLEVEL=0", "-servername", name(1))
                check("Server Temp Key: ECDH, prime256v1" in out or
                      "Server Temp Key: ECDH, P-256" in out,
                      f"{group} was used or the handshake failed:\n{out[-1500:]}")
            for group in ("X25519", "P-256", "X448", "P-521", "P-384"):
                for flag in ("-tls1_2", "-tls1_3"):
                    # TLS 1.2 clients apply their groups to the ECDSA certificate too.
                    groups = f"{group}:P-256" if flag == "-tls1_2" and group != "P-256" else group
                    rc, out = s_client(port, flag, "-groups", groups, "-servername", name(1))
                    check("Cipher is (NONE)" not in out and "Server Temp Key" in out,
                          f"{group} {flag} was refused:\n{out[-1500:]}")



@test
def sni_picks_the_right_certificate_among_1000_names():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, level="warn"), ready=lambda: wait_until(
                lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0)) as proxy:
            ctx = client_context()
            for i in range(1, NAMES + 1):
                with tls_connect(port, name(i), ctx) as s:
                    check(common_name(s) == name(i), f"{name(i)} got {common_name(s)}")
            with tls_connect(port, "anything.wild.example.test", ctx) as s:
                check(common_name(s) == "*.wild.example.test", f"wildcard: {common_name(s)}")
            loose = client_context(check_hostname=False)
            for unknown in ("nobody.example.test", "a.b.wild.example.test"):
                with tls_connect(port, unknown, loose) as s:
                    check(common_name(s) == "default.example.test",
                          f"unknown {unknown} got {common_name(s)}")
            with tls_connect(port, None, loose) as s:
                check(common_name(s) == "default.example.test", "no SNI: default")
            rc, out = s_client(port, "-servername", name(777), "-CAfile",
                               os.path.join(pki(), "ca.pem"), "-verify_return_error")
            check(f"CN = {name(777)}" in out and "Verify return code: 0 (ok)" in out,
                  f"s_client -servername:\n{out[-1500:]}")
            check(proxy.proc.poll() is None, "proxy alive")


@test
def strict_sni_refuses_unknown_and_missing_names_with_unrecognized_name():
    p = pki()
    strict = f'certificate_dir = "{p}/certs"\nstrict_sni = true\n'
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, tls=strict)) as proxy:
            with tls_connect(port, name(5)) as s:
                check(common_name(s) == name(5), "a known name still works")
            for server_name in ("nobody.example.test", None):
                try:
                    tls_connect(port, server_name, client_context(check_hostname=False)).close()
                    raise AssertionError(f"strict mode served {server_name!r}")
                except ssl.SSLError as e:
                    check("UNRECOGNIZED_NAME" in str(e).upper(),
                          f"{server_name!r}: expected unrecognized_name, got {e}")
            rc, out = s_client(port, "-servername", "nobody.example.test")
            check("unrecognized name" in out, f"s_client sees the alert:\n{out[-800:]}")
            proxy.wait_log(r"TLS handshake failed", count=3)
            proxy.wait_log(r"access tcp listener=tls-tcp client=\S+ upstream=- to_upstream=0 "
                           r"to_client=0 duration_ms=\d+ end=handshake_failed\n", count=3)
            check(up.connections == 1, f"refused handshakes reached the upstream: {up.connections}")


def tls12_client_hello(server_name):
    """A TLS 1.2 ClientHello (ECDHE-ECDSA-AES128-GCM-SHA256, P-256) naming server_name
    as given, bytes that no TLS library would let a client send included."""
    sni = struct.pack(">HBH", len(server_name) + 3, 0, len(server_name)) + server_name
    exts = (struct.pack(">HH", 0, len(sni)) + sni +
            struct.pack(">HHH", 10, 4, 2) + struct.pack(">H", 23) +
            struct.pack(">HHB", 11, 2, 1) + b"\x00" +
            struct.pack(">HHH", 13, 4, 2) + b"\x04\x03")
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", 2) + b"\xc0\x2b" +
            b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


@test
def a_name_with_a_nul_in_it_is_not_the_name_before_the_nul():
    # wolfSSL keeps a ClientHello's name as a C string, so "known\0x" read as "known":
    # strict mode served that name's certificate. It is an invalid name: refused.
    p = pki()
    strict = f'certificate_dir = "{p}/certs"\nstrict_sni = true\n'
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, tls=strict)):
            for sent, served in ((name(5).encode(), True), (name(5).encode() + b"\x00x", False)):
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(tls12_client_hello(sent))
                    first = b""
                    while len(first) < 7:
                        more = s.recv(7 - len(first))
                        if not more:
                            break
                        first += more
                # A handshake record (ServerHello) or a fatal unrecognized_name alert.
                if served:
                    check(first[:1] == b"\x16", f"{sent!r}: {first!r}")
                else:
                    check(first[:1] == b"\x15" and first[5:7] == b"\x02\x70",
                          f"{sent!r}: {first!r}")


@test
def ecdsa_and_rsa_on_one_name_serve_each_client_what_it_can_use():
    p = pki()
    dual = (f'certificate = "{p}/default.crt"\nkey = "{p}/default.key"\n'
            f'certificate_rsa = "{p}/default.rsa.crt"\nkey_rsa = "{p}/default.rsa.key"\n')
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, tls=dual)):
            cases = (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDSA"),
                     ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "RSA"),
                     ("-tls1_3", "-sigalgs", "ECDSA+SHA256", "ECDSA"),
                     ("-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "RSA"))
            for version, opt, value, want in cases:
                rc, out = s_client(port, version, opt, value, "-servername",
                                   "default.example.test")
                got = "RSA" if "Server public key is 2048 bit" in out else (
                    "ECDSA" if "Server public key is 256 bit" in out else "?")
                check(got == want, f"{version} {opt} {value}: got {got}\n{out[-1200:]}")


def resumption_check(port, proxy, maximum, rounds=40):
    ctx = client_context(maximum=maximum)
    with tls_connect(port, name(9), ctx) as s:
        check(echo_once(s) == b"ping", "first echo")  # a TLS 1.3 ticket arrives with data
        session = s.session
    check(session is not None, "no session to resume")
    reused = 0
    for _ in range(rounds):
        with tls_connect(port, name(9), ctx, session=session) as s:
            check(echo_once(s) == b"ping", "echo")
            reused += s.session_reused
            session = s.session or session
    check(reused == rounds, f"{reused} of {rounds} resumed")


@test
def a_ticket_from_one_shard_resumes_on_another():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, shards=2)) as proxy:
            resumption_check(port, proxy, ssl.TLSVersion.TLSv1_3)
            resumption_check(port, proxy, ssl.TLSVersion.TLSv1_2)
            # Both shards served resumed handshakes: a ticket is good whichever shard
            # SO_REUSEPORT picks.
            log = proxy.log_text()
            for shard in (0, 1):
                check(re.search(rf"\[shard {shard}\] access tcp .*resumed=1", log),
                      f"shard {shard} resumed nothing:\n{log[-2000:]}")
            # s_client's own reconnects: -sess_out then -sess_in, and -reconnect (1.2).
            sess = os.path.join(tempfile.mkdtemp(), "sess.pem")
            ca = os.path.join(pki(), "ca.pem")
            rc, out = s_client(port, "-tls1_2", "-servername", name(3), "-CAfile", ca,
                               "-sess_out", sess)
            check(os.path.exists(sess), f"no session written:\n{out[-800:]}")
            for _ in range(6):
                rc, out = s_client(port, "-tls1_2", "-servername", name(3), "-CAfile", ca,
                                   "-sess_in", sess)
                check("Reused, TLSv1.2" in out, f"-sess_in not reused:\n{out[-800:]}")
            rc, out = s_client(port, "-tls1_2", "-servername", name(3), "-reconnect")
            check(out.count("Reused, TLSv1.2") >= 5, f"-reconnect:\n{out[-1500:]}")


def tls_listener(listener_name, port, alpn):
    p = pki()
    return f"""
[[listener]]
name = "{listener_name}"
protocol = "tcp"
listen = "127.0.0.1:{port}"
upstream = "backend"

[listener.tls]
certificate = "{p}/default.crt"
key = "{p}/default.key"
certificate_dir = "{p}/certs"
alpn = {alpn}
"""


@test
def a_ticket_resumes_only_where_the_certificates_and_alpn_are_the_same():
    # A ticket skips the certificate: where a full handshake would show other
    # certificates or agree to another protocol (an IMAPS listener for a ticket from an
    # HTTPS one), it must not resume.
    with ThreadedServer(echo_handler) as up:
        port, same, other = free_port(), free_port(), free_port()
        extra = (tls_listener("same-settings", same, '[]') +
                 tls_listener("other-protocol", other, '["imap"]'))
        with Proxy(config(port, up.port, extra=extra)):
            for maximum in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = client_context(maximum=maximum)
                with tls_connect(port, name(9), ctx) as s:
                    check(echo_once(s) == b"ping", "first echo")
                    session = s.session
                for to, resumes in ((same, True), (other, False)):
                    with tls_connect(to, name(9), ctx, session=session) as s:
                        check(echo_once(s) == b"ping", "echo")
                        check(s.session_reused == resumes,
                              f"{maximum.name} to port {to}: resumed={s.session_reused}")


class TlsDuplexServer:
    """A TLS upstream (asyncio, own thread) that hashes what it receives while sending
    `total` pseudo-random bytes, then reports both digests."""

    def __init__(self, cert, key, total):
        self.total = total
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.port = free_port()
        self.result = None
        self.connections = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        check(self._ready.wait(10), "TLS upstream did not start")

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def handle(reader, writer):
            self.connections += 1
            self.result = await duplex(reader, writer, self.total, seed=2)

        async def main():
            self._server = await asyncio.start_server(handle, "127.0.0.1", self.port,
                                                      ssl=self.ctx)
            self._ready.set()
            await self._server.serve_forever()
        try:
            self._loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass

    def close(self):
        self._loop.call_soon_threadsafe(self._server.close)


async def duplex(reader, writer, total, seed, chunk=1 << 20):
    """Sends `total` bytes while reading `total` bytes; returns (sent digest, (received
    digest, count)). Python's TLS cannot half-close (closing sends close_notify and
    ends reading too), so each side closes only once it has everything."""
    sent = hashlib.sha256()
    rng = random.Random(seed)

    async def send():
        left = total
        while left:
            block = rng.randbytes(min(chunk, left))
            sent.update(block)
            writer.write(block)
            await writer.drain()
            left -= len(block)

    async def receive():
        h, n = hashlib.sha256(), 0
        while n < total:
            d = await reader.read(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
        return h.hexdigest(), n
    _, received = await asyncio.gather(send(), receive())
    try:
        writer.close()
        await writer.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    return sent.hexdigest(), received


@test
def a_slow_but_steady_tls_reader_is_not_cut_by_the_send_timeout():
    # As over plain TCP (tcp_proxy_test): send_timeout_ms ends a write without progress;
    # a TLS client reading 1 KiB every 50 ms through a small socket gets everything.
    payload = bytes(range(256)) * 512  # 128 KiB
    with ThreadedServer(sender_then_eof(payload)) as up:
        port = free_port()
        text = config(port, up.port).replace(
            'upstream = "backend"\n\n[listener.tls]',
            'upstream = "backend"\nsend_buffer = 4096\nsend_timeout_ms = 1000\n\n[listener.tls]'
        ).replace("[runtime]\n", "[runtime]\nbuffer_size = 65536\nbuffer_count = 256\n")
        check("send_timeout_ms = 1000" in text, "the listener keys were placed")
        with Proxy(text) as proxy:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.connect(("127.0.0.1", port))
            c = client_context().wrap_socket(raw, server_hostname=name(3))
            got = read_slowly(c, 1024, 0.05)
            c.close()
            check(got == payload, f"the client got {len(got)} of {len(payload)}")
            proxy.wait_log(r"access tcp .*end=closed")


@test
def tls_on_both_sides_moves_256_mib_each_way_byte_exact():
    total = 256 << 20
    p = pki()
    upstream_tls = (f'[upstream.tls]\nverify = true\nca_file = "{p}/ca.pem"\n'
                    f'server_name = "localhost"\n')
    up = TlsDuplexServer(f"{p}/localhost.crt", f"{p}/localhost.key", total)
    try:
        port = free_port()
        with Proxy(config(port, up.port, upstream_tls=upstream_tls)) as proxy:
            async def client():
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_context(), server_hostname=name(11))
                return await duplex(reader, writer, total, seed=1)
            client_sent, client_received = asyncio.run(client())
            wait_until(lambda: up.result is not None, timeout=60, what="upstream result")
            up_sent, up_received = up.result
            check(up_received == (client_sent, total), f"client->upstream: {up_received}")
            check(client_received == (up_sent, total), f"upstream->client: {client_received}")
            proxy.wait_log(rf"to_upstream={total} to_client={total} .*tls=TLSv1.3")
    finally:
        up.close()


@test
def a_client_refused_for_want_of_an_upstream_gets_close_notify_not_a_bare_fin():
    # A TLS client whose upstream cannot be reached (nothing listens), or whose upstream
    # fails its own TLS handshake, is closed with close_notify: a bare FIN reads as a
    # truncation attack to a client that does not suppress ragged EOFs.
    p = pki()
    dead = free_port()
    with ThreadedServer(echo_handler) as plain_up:
        verify = (f'[upstream.tls]\nverify = true\nca_file = "{p}/ca.pem"\n'
                  f'server_name = "localhost"\n')
        for up_port, upstream_tls in ((dead, ""), (plain_up.port, verify)):
            port = free_port()
            with Proxy(config(port, up_port, upstream_tls=upstream_tls)):
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                with client_context().wrap_socket(raw, server_hostname=name(1),
                                                  suppress_ragged_eofs=False) as s:
                    s.sendall(b"x")
                    try:
                        got = s.recv(10)
                    except ssl.SSLEOFError as e:
                        got = f"a bare FIN ({e})"
                    check(got == b"", f"upstream_tls={bool(upstream_tls)}: {got!r}")


@test
def a_client_flooding_key_update_requests_it_never_reads_is_cut_off():
    # Each TLS 1.3 KeyUpdate that asks for an answer queues one; a client that never
    # reads them grew the proxy's queue without end (300000 requests: about 7 MB, some
    # 4 MB of it in the proxy once the kernel's buffers were full).
    flood = os.environ.get("KEY_UPDATE_FLOOD_BIN", "build/release/tests/key_update_flood")

    def rss_kib(pid):
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port)) as proxy:
            before = rss_kib(proxy.pid)
            client = subprocess.Popen([flood, "127.0.0.1", str(port), "300000"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = client.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                # Under load the proxy may stop reading first (its answers stuck behind
                # the kernel's full buffers): a stalled client, bounded memory.
                grown = rss_kib(proxy.pid) - before
                client.kill()
                out, err = client.communicate()
                out = "stalled"
            else:
                grown = rss_kib(proxy.pid) - before
            out = out.strip()
            check(out.startswith("closed after ") or out == "stalled", (out, err))
            # ASan keeps freed memory in quarantine: RSS says nothing there.
            sanitized = "sanitize=address" in subprocess.run(
                [BIN, "--version"], capture_output=True, text=True, timeout=10).stdout
            check(sanitized or grown < 2048, f"the proxy grew by {grown} KiB")
            if out.startswith("closed after "):
                proxy.wait_log(r"does not read the answers")
            with tls_connect(port, name(1)) as s:  # the proxy serves the next client
                check(echo_once(s) == b"ping", "no echo after the flood")


@test
def an_upstream_tls_stream_cut_without_close_notify_reaches_the_client_cut():
    # TLS on both sides: the upstream's FIN without close_notify (an attacker's, on the
    # way to the server) must not become the proxy's authenticated close_notify to the
    # client, who would take the cut stream as whole.
    server_ctx = localhost_server_context()

    def cut(conn):
        with server_ctx.wrap_socket(conn, server_side=True) as s:
            s.recv(100)
            s.sendall(b"partial")
            s.shutdown(socket.SHUT_WR)  # Python's SSLSocket.shutdown sends no close_notify
            time.sleep(2)

    p = pki()
    verify = f'[upstream.tls]\nverify = true\nca_file = "{p}/ca.pem"\nserver_name = "localhost"\n'
    with ThreadedServer(cut) as up:
        port = free_port()
        with Proxy(config(port, up.port, upstream_tls=verify)):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with client_context().wrap_socket(raw, server_hostname=name(1),
                                              suppress_ragged_eofs=False) as s:
                s.sendall(b"x")
                got, ended = b"", "close_notify"
                try:
                    while d := s.recv(100):
                        got += d
                except ssl.SSLEOFError:
                    ended = "cut"
                check((got, ended) == (b"partial", "cut"), (got, ended))


@test
def handshakes_cut_by_a_shutdown_are_not_counted_as_failures():
    # The drain deadline stops clients that never sent a ClientHello: they count as
    # stopped sessions, not as TLS handshake failures (which an operator alerts on).
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        text = config(port, up.port).replace("drain_timeout_ms = 2000", "drain_timeout_ms = 200")
        with Proxy(text) as proxy:
            quiet = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
            time.sleep(0.3)
            proxy.signal(signal.SIGTERM)
            check(proxy.wait_exit(timeout=10) == 0, "exit code")
            stats = re.search(r"stopped; stats .*", proxy.log_text())
            check(stats and "tls_handshake_failures=0 " in stats.group(0) and
                  "sessions_stopped=5 " in stats.group(0), stats.group(0) if stats else "none")
            for s in quiet:
                s.close()


@test
def a_server_failing_the_upstream_handshake_is_passed_over_and_counted():
    # A TCP listener's upstream handshake failed: the client was closed and the server
    # stayed healthy (a connect cleared its failures), so half the clients failed for
    # good. Now the next server gets the client, and max_fails (1) marks the first down.
    ctx = localhost_server_context()

    def tls_echo(raw):
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except (ssl.SSLError, OSError):
            pass

    with ThreadedServer(closes_after_client_hello) as bad, ThreadedServer(tls_echo) as good:
        port = free_port()
        text = config(port, bad.port, upstream_tls='[upstream.tls]\nverify = false\n').replace(
            f'servers = ["127.0.0.1:{bad.port}"]',
            f'servers = ["127.0.0.1:{bad.port}", "127.0.0.1:{good.port}"]')
        with Proxy(text) as proxy:
            for i in range(6):
                with tls_connect(port, name(1)) as s:
                    s.settimeout(10)
                    s.sendall(b"ping %d" % i)
                    check(s.recv(100) == b"ping %d" % i, f"client {i} is relayed")
            check(bad.connections == 1, f"the failing server had {bad.connections} connections")
            proxy.wait_log(r"TLS with upstream 127\.0\.0\.1:\d+ \(backend\) failed")


@test
def a_client_whose_handshake_fails_takes_no_pick_from_the_balancer():
    # Round robin over two servers, each real client after a client that failed its
    # handshake (a health probe that connects and closes): the real ones alternate.
    with ThreadedServer(echo_handler) as a, ThreadedServer(echo_handler) as b:
        port = free_port()
        text = config(port, a.port).replace(f'servers = ["127.0.0.1:{a.port}"]',
                                            f'servers = ["127.0.0.1:{a.port}", "127.0.0.1:{b.port}"]')
        with Proxy(text) as proxy:
            for i in range(4):
                socket.create_connection(("127.0.0.1", port)).close()
                proxy.wait_log(r"TLS handshake failed", count=i + 1)
                with tls_connect(port, name(1)) as s:
                    s.settimeout(10)
                    s.sendall(b"r%d" % i)
                    check(s.recv(10) == b"r%d" % i, "echo")
            check((a.connections, b.connections) == (2, 2),
                  f"real clients went {a.connections}:{b.connections}")


@test
def an_upstream_certificate_from_an_unknown_ca_is_refused_when_verifying():
    p = pki()
    up = TlsDuplexServer(f"{p}/foreign.crt", f"{p}/foreign.key", 4)
    try:
        port = free_port()
        verify = f'[upstream.tls]\nverify = true\nca_file = "{p}/ca.pem"\nserver_name = "localhost"\n'
        with Proxy(config(port, up.port, upstream_tls=verify)) as proxy:
            with tls_connect(port, name(1)) as s:
                s.settimeout(10)
                s.sendall(b"x")
                check(s.recv(10) == b"", "the client is closed when the upstream is refused")
            proxy.wait_log(r"TLS with upstream 127\.0\.0\.1:\d+ \(backend\) failed: .*"
                           r"(signer|issuer|verify|trust)")
        port = free_port()
        loose = '[upstream.tls]\nverify = false\n'
        with Proxy(config(port, up.port, upstream_tls=loose)):
            with tls_connect(port, name(1)) as s:
                s.sendall(b"abcd")
                got = recv_all(s, timeout=10)
                check(len(got) == 4, f"verify off: data flows ({got!r})")
    finally:
        up.close()


@test
def sighup_reloads_the_certificate_directory_under_traffic_without_a_failed_connection():
    p = pki()
    work = tempfile.mkdtemp(prefix="ringproxy-certs-")
    certs = os.path.join(work, "certs")
    shutil.copytree(os.path.join(p, "certs"), certs)
    tls = (f'certificate = "{p}/default.crt"\nkey = "{p}/default.key"\n'
           f'certificate_dir = "{certs}"\n')
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, shards=2, tls=tls, access=False)) as proxy:
            stop = threading.Event()
            failures, done = [], [0]

            def traffic():
                ctx = client_context()
                while not stop.is_set():
                    try:
                        with tls_connect(port, name(20), ctx) as s:
                            if echo_once(s) != b"ping":
                                failures.append("bad echo")
                        done[0] += 1
                    except Exception as e:  # noqa: BLE001 - counted and reported
                        failures.append(repr(e))
            threads = [threading.Thread(target=traffic) for _ in range(4)]
            for t in threads:
                t.start()
            loose = client_context(check_hostname=False)
            with tls_connect(port, "brand-new.example.test", loose) as s:
                check(common_name(s) == "default.example.test", "unknown before the reload")
            for ext in ("crt", "key"):
                shutil.copy(os.path.join(certs, f"{name(2)}.{ext}"),
                            os.path.join(certs, f"brand-new.example.test.{ext}"))
            before = done[0]
            proxy.signal(signal.SIGHUP)
            wait_until(lambda: "reload done" in proxy.log_text() or
                       "reload failed" in proxy.log_text(), what="reload")
            check("reload failed" not in proxy.log_text(), proxy.log_text()[-1500:])

            def served_new():
                with tls_connect(port, "brand-new.example.test", loose) as s:
                    return common_name(s) == name(2)
            # Both shards apply the new generation; new connections see the new name.
            wait_until(lambda: all(served_new() for _ in range(10)), what="new name served")
            time.sleep(1)
            stop.set()
            for t in threads:
                t.join()
            check(not failures, f"{len(failures)} failed connections: {failures[:3]}")
            check(done[0] > before, "traffic went on through the reload")


@test
def a_reload_that_changes_the_ticket_keys_says_they_need_a_restart():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        text = config(port, up.port, extra="[tls]\nticket_key_rotation_s = 3600\n")
        with Proxy(text) as proxy:
            key_file = os.path.join(proxy.dir, "tickets.key")
            proxy.write_config(text + f'ticket_key_file = "{key_file}"\n')
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done")
            check(re.search(r"warn .*tls: ticket_key_rotation_s / ticket_key_file changed: "
                            r"restart to apply; keeping the keys of the start", proxy.log_text()),
                  proxy.log_text()[-1500:])


@test
def a_ticket_key_file_rewritten_in_place_says_it_needs_a_restart():
    # Replacing a leaked secret: the same path, new bytes, SIGHUP. The keys of the start
    # stay (a reload must not cut every ticket out there), and the log says so.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        key_file = os.path.join(tempfile.mkdtemp(dir=RUN_DIR), "tickets.key")
        with open(key_file, "wb") as f:
            f.write(os.urandom(48))
        text = config(port, up.port, extra=f'[tls]\nticket_key_file = "{key_file}"\n')
        with Proxy(text) as proxy:
            ctx = client_context()
            with tls_connect(port, name(9), ctx) as s:
                check(echo_once(s) == b"ping", "first echo")
                session = s.session
            with open(key_file, "wb") as f:
                f.write(os.urandom(48))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done")
            check(re.search(r"warn .*tls: ticket_key_file's contents changed: restart to "
                            r"apply; keeping the keys of the start", proxy.log_text()),
                  proxy.log_text()[-1500:])
            with tls_connect(port, name(9), ctx, session=session) as s:
                check(echo_once(s) == b"ping" and s.session_reused, "the old keys were dropped")
            # A file gone is not reported as changed contents.
            os.remove(key_file)
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done", count=2)
            check(re.search(r"warn .*tls: ticket_key_file cannot be read again \(.*\); a "
                            r"restart would fail", proxy.log_text()), proxy.log_text()[-1500:])


@test
def a_rejected_reload_does_not_fix_the_ticket_keys():
    # Started without a TLS listener, so no keys yet. A reload that adds one with key
    # file A but fails on another key must leave the keys to the next good config (B):
    # its tickets then resume in another process started with B.
    d = tempfile.mkdtemp(prefix="ringproxy-tickets-")
    key_a, key_b = os.path.join(d, "a.key"), os.path.join(d, "b.key")
    for path in (key_a, key_b):
        with open(path, "wb") as f:
            f.write(os.urandom(48))
    with ThreadedServer(echo_handler) as up:
        port, other = free_port(), free_port()
        with_tls = config(port, up.port)
        plain = with_tls.split("[listener.tls]")[0]
        with Proxy(plain + f'[tls]\nticket_key_file = "{key_a}"\n') as proxy:
            proxy.write_config(with_tls.replace("[log]\n", "[log]\nno_such_key = 1\n")
                               + f'[tls]\nticket_key_file = "{key_a}"\n')
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed")
            proxy.write_config(with_tls + f'[tls]\nticket_key_file = "{key_b}"\n')
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done")
            check("restart to apply" not in proxy.log_text(), proxy.log_text()[-1500:])
            with Proxy(config(other, up.port) + f'[tls]\nticket_key_file = "{key_b}"\n'):
                for maximum in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                    ctx = client_context(maximum=maximum)
                    with tls_connect(port, name(9), ctx) as s:
                        check(echo_once(s) == b"ping", "echo")
                        session = s.session
                    with tls_connect(other, name(9), ctx, session=session) as s:
                        check(echo_once(s) == b"ping", "echo")
                        check(s.session_reused, f"{maximum}: not resumed by the process with B")


@test
def a_plaintext_client_on_the_tls_port_reaches_no_upstream():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port)) as proxy:
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = recv_all(c, timeout=10)
            c.close()
            check(b"GET" not in data, "the plaintext came back")
            proxy.wait_log(r"TLS handshake failed")
            time.sleep(0.2)
            check(up.connections == 0, f"{up.connections} upstream connections")


@test
def a_silent_handshake_is_cut_at_its_deadline_and_logged():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        p = pki()
        tls = (f'certificate = "{p}/default.crt"\nkey = "{p}/default.key"\n'
               "handshake_timeout_ms = 300\n")
        with Proxy(config(port, up.port, tls=tls)) as proxy:
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            start = time.monotonic()
            check(c.recv(10) == b"", "closed")
            elapsed = time.monotonic() - start
            c.close()
            check(0.25 < elapsed < 3, f"cut after {elapsed:.2f}s with a 300 ms deadline")
            proxy.wait_log(r"TLS handshake failed: no handshake within the deadline")
            check(up.connections == 0, "no upstream for a silent client")


@test
def sigterm_stops_a_session_waiting_in_its_tls_handshake():
    # The handshake deadline is far away; the drain deadline must still end the wait.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        p = pki()
        tls = (f'certificate = "{p}/default.crt"\nkey = "{p}/default.key"\n'
               "handshake_timeout_ms = 600000\n")
        text = config(port, up.port, tls=tls).replace("drain_timeout_ms = 2000",
                                                      "drain_timeout_ms = 300")
        with Proxy(text) as proxy:
            silent = socket.create_connection(("127.0.0.1", port), timeout=10)
            half = socket.create_connection(("127.0.0.1", port), timeout=10)
            half.sendall(b"\x16\x03\x01\x00\xff")  # a ClientHello that never finishes
            time.sleep(0.2)
            start = time.monotonic()
            proxy.signal(signal.SIGTERM)
            rc = proxy.wait_exit(timeout=10)
            elapsed = time.monotonic() - start
            check(rc == 0, f"exit code {rc}")
            check(elapsed < 3, f"exit took {elapsed:.2f}s with a 300 ms drain")
            proxy.wait_log(r"drain deadline reached: closing 2 sessions")
            silent.close()
            half.close()


@test
def sigterm_stops_a_session_waiting_for_its_upstream_tls_handshake():
    def silent(conn):
        while conn.recv(4096):
            pass
    with ThreadedServer(silent) as up:
        port = free_port()
        p = pki()
        upstream_tls = (f'[upstream.tls]\nverify = true\nca_file = "{p}/ca.pem"\n'
                        'server_name = "localhost"\nhandshake_timeout_ms = 600000\n')
        text = config(port, up.port, upstream_tls=upstream_tls).replace(
            "drain_timeout_ms = 2000", "drain_timeout_ms = 300")
        with Proxy(text) as proxy:
            s = tls_connect(port, name(1))
            wait_until(lambda: up.connections == 1, what="the upstream connection")
            start = time.monotonic()
            proxy.signal(signal.SIGTERM)
            rc = proxy.wait_exit(timeout=10)
            elapsed = time.monotonic() - start
            check(rc == 0, f"exit code {rc}")
            check(elapsed < 3, f"exit took {elapsed:.2f}s with a 300 ms drain")
            s.close()


@test
def close_notify_comes_before_the_fin_when_the_upstream_closes():
    def say_and_close(conn):
        conn.sendall(b"bye")
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass
    with ThreadedServer(say_and_close) as up:
        port = free_port()
        with Proxy(config(port, up.port)):
            for maximum in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                s = client_context(maximum=maximum).wrap_socket(
                    raw, server_hostname=name(4), suppress_ragged_eofs=False)
                got = b""
                while True:
                    # A FIN without close_notify raises SSLEOFError here.
                    d = s.recv(100)
                    if not d:
                        break
                    got += d
                check(got == b"bye", f"{maximum}: {got!r}")
                s.close()


@test
def curl_fetches_through_the_tls_listener_with_alpn():
    def http(conn):
        if not read_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
                     b"hello, curl\n")
    with ThreadedServer(http) as up:
        port = free_port()
        tls = (f'certificate = "{pki()}/default.crt"\nkey = "{pki()}/default.key"\n'
               f'certificate_dir = "{pki()}/certs"\nalpn = ["http/1.1"]\n')
        with Proxy(config(port, up.port, tls=tls)):
            host = name(42)
            r = subprocess.run(["curl", "-sS", "-v", "--cacert", os.path.join(pki(), "ca.pem"),
                                "--resolve", f"{host}:{port}:127.0.0.1",
                                f"https://{host}:{port}/"], capture_output=True, text=True,
                               timeout=30)
            check(r.returncode == 0, r.stderr[-1500:])
            check(r.stdout == "hello, curl\n", repr(r.stdout))
            check(re.search(r"ALPN.*accepted.*http/1\.1", r.stderr), r.stderr[-1500:])


@test
def a_tcp_listener_agrees_to_no_alpn_unless_told():
    # It relays whatever its upstream speaks: agreeing to http/1.1 (or to anything the
    # client offers) would vouch for a protocol it does not know (ALPACA).
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port)):
            for offered in (["http/1.1"], ["h2", "http/1.1"], ["imap", "smtp"]):
                ctx = client_context()
                ctx.set_alpn_protocols(offered)
                with tls_connect(port, name(9), ctx) as s:
                    check(s.selected_alpn_protocol() is None,
                          f"offered {offered}: agreed to {s.selected_alpn_protocol()}")
                    check(echo_once(s) == b"ping", "echo")


@test
def an_implicit_tls_mail_listener_takes_starttls_off_and_refuses_on():
    p = pki()

    def text(mode):
        return config(free_port(), 1, extra=f"""
[lookup]
servers = ["127.0.0.1:{free_port()}"]

[[listener]]
name = "imaps"
protocol = "imaps"
listen = "127.0.0.1:{free_port()}"
starttls = "{mode}"

[listener.tls]
certificate = "{p}/default.crt"
key = "{p}/default.key"
""")
    rc, out, _ = run_check(text("off"))
    check(rc == 0 and "ok (2 listeners" in out, f"off: {rc} {out}")
    rc, out, path = run_check(text("on"))
    errors = [line for line in out.splitlines() if line.startswith(path)]
    check(rc == 1 and len(errors) == 1 and
          "listener[1].starttls: an implicit-TLS listener has no STARTTLS" in errors[0],
          f"on: {rc} {out}")


@test
def a_broken_certificate_is_a_config_error_with_file_and_line():
    p = pki()
    port = free_port()
    text = config(port, 1, tls=f'certificate = "{p}/nope.crt"\nkey = "{p}/default.key"\n')
    rc, out, path = run_check(text)
    check(rc != 0, "accepted a missing certificate")
    check(re.search(r":\d+: listener\[0\]\.tls: .*nope\.crt", out), out)


if __name__ == "__main__":
    for tool in (BIN, MAKE_CERTS):
        check(os.path.exists(tool), f"no binary at {tool}")
    sys.exit(run_all(sys.argv))

#!/usr/bin/env python3
"""End-to-end tests of the IMAP and POP3 listeners: real Dovecot behind, real memcached
and tools/lookupd for routes, real clients in front (Python imaplib/poplib/ssl, curl,
openssl s_client) and raw sockets where exact bytes matter."""
import base64
import glob
import imaplib
import json
import os
import poplib
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import mail_env  # noqa: E402
import tls_env  # noqa: E402
from harness import check, free_port, reset_on_close, test, wait_until  # noqa: E402

ENV = None
JOHN = "john@example.com"
JOHN_PW = mail_env.USERS[JOHN]


def env():
    global ENV
    if ENV is None:
        ENV = mail_env.Env()
    return ENV


class Mail:
    """A proxy with one listener of each kind (plain IMAP with STARTTLS on, IMAPS, POP3
    with STLS on, POP3S), an audit log, and `extra` keys on every listener."""

    def __init__(self, extra="", starttls="on", throttle="", memcache=True, level="info",
                 lookup_extra="", upstream_tls=False, shards=1, lookup_timeout_ms=3000):
        e = env()
        self.imap = free_port()
        self.imaps = free_port()
        self.pop3 = free_port()
        self.pop3s = free_port()
        self.audit = os.path.join(e.dir, f"audit-{self.imap}.jsonl")
        st = f'starttls = "{starttls}"\n{extra}'
        listeners = (
            mail_env.listener("imap", "imap", self.imap, tls=True, extra=st,
                              upstream_tls=upstream_tls) +
            mail_env.listener("imaps", "imaps", self.imaps, tls=True, extra=extra,
                              upstream_tls=upstream_tls) +
            mail_env.listener("pop3", "pop3", self.pop3, tls=True, extra=st,
                              upstream_tls=upstream_tls) +
            mail_env.listener("pop3s", "pop3s", self.pop3s, tls=True, extra=extra,
                              upstream_tls=upstream_tls))
        self.config = mail_env.proxy_config(e, listeners, memcache=memcache, throttle=throttle,
                                            audit=self.audit, level=level,
                                            lookup_extra=lookup_extra, shards=shards,
                                            lookup_timeout_ms=lookup_timeout_ms)
        self.proxy = harness.Proxy(self.config)

    def audit_lines(self):
        try:
            with open(self.audit) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proxy.__exit__(*exc)


def imap_client(port, tls=False):
    if tls:
        return imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx(), timeout=20)
    return imaplib.IMAP4("127.0.0.1", port, timeout=20)


def ctx():
    c = tls_env.client_context(check_hostname=False)
    return c


def raw(port, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def answer_to(port, line):
    """Everything an IMAP listener sends after its greeting in answer to `line`, to its end."""
    with raw(port) as s:
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(line)
        return read_to_eof(s)


def read_until(sock, pattern, timeout=20):
    """Bytes from sock until `pattern` (bytes regex) matches, or EOF."""
    rx = re.compile(pattern)
    data = b""
    deadline = time.monotonic() + timeout
    while not rx.search(data):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no {pattern!r} in {timeout}s; got {data!r}")
        if not chunk:
            break
        data += chunk
    return data


def read_to_eof(sock, timeout=20):
    data = b""
    sock.settimeout(timeout)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def fetch_all(client):
    typ, data = client.select("INBOX")
    check(typ == "OK", f"SELECT: {typ} {data}")
    n = int(data[0])
    out = []
    for i in range(1, n + 1):
        typ, data = client.fetch(str(i), "(BODY.PEEK[])")
        check(typ == "OK", f"FETCH {i}: {typ}")
        out.append(data[0][1])
    return out


def check_seeded(messages):
    check(len(messages) >= mail_env.SEEDED, f"{len(messages)} messages")
    for i in range(1, mail_env.SEEDED + 1):
        check(messages[i - 1] == mail_env.message(i),
              f"message {i} differs: {messages[i - 1][:80]!r}")


# --- IMAP ------------------------------------------------------------------------------

@test
def imap_login_select_fetch_byte_exact_logout():
    with Mail() as m:
        c = imap_client(m.imap)
        typ, data = c.login(JOHN, JOHN_PW)
        check(typ == "OK", f"LOGIN: {typ} {data}")
        check_seeded(fetch_all(c))
        typ, data = c.logout()
        check(typ == "BYE", f"LOGOUT: {typ} {data}")
        lines = m.audit_lines()
        check(len(lines) == 1 and lines[0]["result"] == "ok", f"audit: {lines}")
        a = lines[0]
        check(a["user"] == JOHN and a["account"] == JOHN and a["protocol"] == "imap" and
              a["tls"] is False and a["route"] == "lookup" and
              a["upstream"] == f"127.0.0.1:{env().imap_port}", f"audit fields: {a}")


@test
def imap_alias_logs_in_as_the_canonical_account_with_the_clients_tag():
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b"t1 LOGIN jd@example.com \"" + JOHN_PW.encode() + b"\"\r\n")
        got = read_until(s, rb"t1 (OK|NO|BAD).*\r\n")
        check(re.search(rb"^t1 OK .*\r\n", got, re.M), f"reply: {got!r}")
        s.sendall(b"t2 SELECT INBOX\r\n")
        got = read_until(s, rb"t2 (OK|NO|BAD).*\r\n")
        check(b"t2 OK" in got and b"EXISTS" in got, f"SELECT: {got!r}")
        s.close()
        a = m.audit_lines()[0]
        check(a["user"] == "jd@example.com" and a["account"] == JOHN, f"audit: {a}")


@test
def imap_literal_login_synchronising_and_literal_plus():
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        user, pw = JOHN.encode(), JOHN_PW.encode()
        s.sendall(b"a1 LOGIN {%d}\r\n" % len(user))
        read_until(s, rb"\+ .*\r\n")
        s.sendall(user + b" {%d}\r\n" % len(pw))
        read_until(s, rb"\+ .*\r\n")
        s.sendall(pw + b"\r\n")
        got = read_until(s, rb"a1 (OK|NO|BAD).*\r\n")
        check(re.search(rb"a1 OK", got), f"literal login: {got!r}")
        s.close()
        # LITERAL+ : no continuation, everything in one write.
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b"a2 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(pw), pw))
        got = read_until(s, rb"a2 (OK|NO|BAD).*\r\n")
        check(re.search(rb"a2 OK", got) and not got.startswith(b"+"), f"literal+ login: {got!r}")
        s.close()


@test
def imap_password_with_quotes_and_spaces():
    with Mail() as m:
        c = imap_client(m.imap)
        pw = mail_env.USERS["alice@example.com"]
        typ, _ = c.login("alice@example.com", pw)
        check(typ == "OK", "alice's quoted password was refused")
        c.logout()


@test
def imap_authenticate_plain_without_and_with_sasl_ir():
    with Mail() as m:
        c = imap_client(m.imap)
        typ, data = c.authenticate("PLAIN", lambda _: f"\0{JOHN}\0{JOHN_PW}".encode())
        check(typ == "OK", f"AUTHENTICATE PLAIN: {typ} {data}")
        check_seeded(fetch_all(c))
        c.logout()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        ir = base64.b64encode(f"\0{JOHN}\0{JOHN_PW}".encode())
        s.sendall(b"p1 AUTHENTICATE PLAIN " + ir + b"\r\n")
        got = read_until(s, rb"p1 (OK|NO|BAD).*\r\n")
        check(b"p1 OK" in got and not got.startswith(b"+"), f"SASL-IR: {got!r}")
        s.close()
        check([a["mechanism"] for a in m.audit_lines()] == ["plain", "plain"], "mechanisms")


@test
def imap_curl_sasl_ir_and_login_options():
    with Mail() as m:
        url = f"imap://127.0.0.1:{m.imap}/INBOX;UID=1"
        for opts in (["--sasl-ir", "--login-options", "AUTH=PLAIN"], ["--login-options", "AUTH=LOGIN"],
                     []):
            r = subprocess.run(["curl", "-sS", "--max-time", "20", *opts, "-u",
                                f"{JOHN}:{JOHN_PW}", url], capture_output=True, timeout=30)
            check(r.returncode == 0, f"curl {opts}: {r.returncode} {r.stderr!r}")
            check(r.stdout.replace(b"\r\n", b"\n") == mail_env.message(1).replace(b"\r\n", b"\n"),
                  f"curl {opts} fetched {r.stdout[:100]!r}")
        mechs = [a["mechanism"] for a in m.audit_lines()]
        check(mechs == ["plain", "sasl-login", "plain"], f"mechanisms: {mechs}")


@test
def imap_starttls_then_login_and_implicit_tls():
    with Mail(starttls="only") as m:
        c = imap_client(m.imap)
        typ, caps = c.capability()
        check(b"STARTTLS" in caps[0] and b"LOGINDISABLED" in caps[0], f"caps: {caps}")
        c.starttls(ssl_context=ctx())
        typ, caps = c.capability()
        check(b"STARTTLS" not in caps[0] and b"AUTH=PLAIN" in caps[0], f"caps after: {caps}")
        typ, _ = c.login(JOHN, JOHN_PW)
        check(typ == "OK", "login after STARTTLS")
        check_seeded(fetch_all(c))
        c.logout()
        c = imap_client(m.imaps, tls=True)
        typ, _ = c.login(JOHN, JOHN_PW)
        check(typ == "OK", "login over IMAPS")
        check_seeded(fetch_all(c))
        c.logout()
        tls_flags = [a["tls"] for a in m.audit_lines()]
        check(tls_flags == [True, True], f"audit tls: {tls_flags}")


@test
def mail_listeners_agree_to_their_own_alpn_name_never_http():
    # ALPACA: a browser sent to the IMAPS port offers http/1.1; a mail listener that
    # agreed would tell it the server speaks HTTP.
    with Mail() as m:
        for port, own in ((m.imaps, "imap"), (m.pop3s, "pop3")):
            for offered, chosen in ((["http/1.1"], None), (["h2", own], own)):
                c = ctx()
                c.set_alpn_protocols(offered)
                with c.wrap_socket(raw(port), server_hostname="localhost") as s:
                    got = s.selected_alpn_protocol()
                    check(got == chosen, f"{own} listener, {offered} offered: {got!r}")


@test
def imap_openssl_s_client_starttls():
    with Mail(starttls="only") as m:
        rc, out = tls_env.s_client(
            m.imap, "-starttls", "imap", "-quiet", "-verify_return_error", "-CAfile",
            os.path.join(tls_env.pki(), "ca.pem"), "-verify_hostname", "localhost",
            data=f'a LOGIN "{JOHN}" "{JOHN_PW}"\r\nb SELECT INBOX\r\nc LOGOUT\r\n'.encode())
        check("a OK" in out and "b OK" in out and "c OK" in out, f"s_client: {out[-1500:]}")


@test
def imap_starttls_only_refuses_plaintext_login():
    with Mail(starttls="only") as m:
        lookups = env().lookups()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(f'a LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
        got = read_until(s, rb"a (OK|NO|BAD).*\r\n")
        check(re.search(rb"^a (NO|BAD) ", got, re.M), f"plaintext login: {got!r}")
        s.sendall(b"b AUTHENTICATE PLAIN\r\n")
        got = read_until(s, rb"b (OK|NO|BAD).*\r\n")
        check(re.search(rb"^b (NO|BAD) ", got, re.M), f"plaintext AUTHENTICATE: {got!r}")
        s.close()
        check(m.audit_lines() == [] and env().lookups() == lookups, "no login attempt was made")


@test
def a_tls_session_ending_before_login_sends_close_notify():
    with Mail() as m:
        for port, greeting, bye in ((m.imaps, rb"\* OK .*\r\n", b"z LOGOUT\r\n"),
                                    (m.pop3s, rb"\+OK .*\r\n", b"QUIT\r\n")):
            s = raw(port)
            # A FIN without close_notify raises SSLEOFError here instead of ending cleanly.
            t = ctx().wrap_socket(s, server_hostname="localhost", suppress_ragged_eofs=False)
            read_until(t, greeting)
            t.sendall(bye)
            try:
                got = read_to_eof(t, timeout=10)
            except ssl.SSLEOFError as e:
                check(False, f"port {port}: closed without close_notify: {e}")
            check(got.startswith(b"* BYE") or got.startswith(b"+OK"), f"{got!r}")
            t.close()


@test
def imap_starttls_injection_is_discarded():
    with Mail(starttls="only") as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        # A man in the middle appends a command to the STARTTLS line: it must never be
        # answered, neither in clear nor inside TLS.
        s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        got = read_until(s, rb"a OK.*\r\n")
        check(b"b " not in got, f"injected command answered in clear: {got!r}")
        t = ctx().wrap_socket(s, server_hostname="localhost")
        t.sendall(b"c NOOP\r\n")
        got = read_until(t, rb"c (OK|NO|BAD).*\r\n")
        check(b"b " not in got and b"* CAPABILITY" not in got, f"injected answered: {got!r}")
        t.close()


@test
def imap_wrong_password_is_delayed_then_closed():
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        start = time.monotonic()
        s.sendall(f'w1 LOGIN "{JOHN}" "Wr0ng-Pw-1"\r\n'.encode())
        got = read_to_eof(s)
        took = time.monotonic() - start
        check(re.search(rb"w1 NO .*\r\n", got), f"reply: {got!r}")
        check(took >= 0.3, f"answered after {took:.3f}s, before the auth wait")
        check(m.audit_lines()[-1]["result"] == "login_failed", "audit result")


@test
def an_audit_line_is_valid_json_for_a_user_name_that_is_not_utf8():
    with Mail() as m:
        got = answer_to(m.imap, b"u1 LOGIN \xffbob Wr0ng-Pw-1\r\n")
        check(re.search(rb"u1 NO .*\r\n", got), f"reply: {got!r}")
        a = m.audit_lines()[-1]  # json.loads of a line read as UTF-8
        check(a["user"] == "\ufffdbob", f"audit: {a}")


@test
def a_half_closed_client_gets_no_refusal_before_the_auth_wait():
    with Mail(extra="auth_wait_ms = 3000") as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        start = time.monotonic()
        s.sendall(f'w1 LOGIN "{JOHN}" "Wr0ng-Pw-1"\r\n'.encode())
        s.shutdown(socket.SHUT_WR)  # still reading: the hold must not end in an answer
        got = read_to_eof(s)
        took = time.monotonic() - start
        check(b"w1 NO" not in got or took >= 3, f"refused after {took:.3f}s: {got!r}")
        check(m.audit_lines()[-1]["result"] == "login_failed", "audit result")


@test
def clients_held_in_their_login_pin_no_receive_buffers():
    # Each of these clients pipelines a command behind a login the mailbox refuses, and is
    # held for the auth wait. The shard has 64 receive buffers: were a buffer holding a
    # pipelined command kept through the hold, the ring would run dry and nobody else on
    # the shard would be read.
    e = env()
    port = free_port()
    listeners = mail_env.listener("imap", "imap", port, tls=True,
                                  extra='starttls = "on"\nauth_wait_ms = 8000')
    config = mail_env.proxy_config(e, listeners).replace(
        "drain_timeout_ms = 2000", "drain_timeout_ms = 2000\nbuffer_count = 64")
    with harness.Proxy(config):
        held = []
        for i in range(100):
            s = raw(port)
            read_until(s, rb"\* OK .*\r\n")
            s.sendall(f'a{i} LOGIN "{JOHN}" "Wr0ng-Pw-1"\r\nb{i} NOOP\r\n'.encode())
            held.append(s)
        time.sleep(0.5)
        s = raw(port, timeout=5)
        read_until(s, rb"\* OK .*\r\n", timeout=5)
        s.sendall(b"c CAPABILITY\r\n")
        got = read_until(s, rb"c (OK|NO|BAD).*\r\n", timeout=5)
        check(b"c OK" in got, f"another client was not served while {len(held)} were held: "
              f"{got!r}")
        s.close()
        for s in held:
            s.close()


@test
def audit_lines_on_standard_output_stay_whole_beside_the_logs():
    # Standard output and error on one pipe (2>&1, systemd), read slowly, with long access
    # lines and audit lines written at once by four shards: every audit line must arrive
    # whole. A shard writing its own audit lines would cut into the log's batches.
    from http_env import Origin
    e = env()
    hport, iport = free_port(), free_port()
    config = f"""
[runtime]
shards = 4
[log]
access = true
access_format = "json"
[lookup]
servers = ["127.0.0.1:{e.lookupd_port}"]
[audit]
path = "-"
[[upstream]]
name = "web"
servers = ["127.0.0.1:%d"]
[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:{hport}"
upstream = "web"
[[listener]]
name = "imap"
protocol = "imap"
listen = "127.0.0.1:{iport}"
flavour = "dovecot"
auth_wait_ms = 0
"""
    with Origin() as origin:
        path = os.path.join(e.dir, f"stdout-{iport}.toml")
        with open(path, "w") as f:
            f.write(config % origin.port)
        proc = subprocess.Popen([harness.BIN, "--config", path], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            harness.wait_port(hport)
            harness.wait_port(iport)
            stop = threading.Event()

            def web():
                while not stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", hport))
                        one = b"GET /size/1 HTTP/1.1\r\nHost: a\r\nUser-Agent: " + b"U" * 3000
                        s.sendall((one + b"\r\n\r\n") * 50 +
                                  b"GET /size/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                        while s.recv(1 << 20):
                            pass
                        s.close()
                    except OSError:
                        pass

            def mail():
                while not stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", iport))
                        s.recv(1000)
                        s.sendall(b"a LOGIN nobody" + b"Z" * 200 + b" pw\r\na LOGOUT\r\n")
                        while s.recv(65536):
                            pass
                        s.close()
                    except OSError:
                        pass
            workers = [threading.Thread(target=web) for _ in range(6)] + \
                [threading.Thread(target=mail) for _ in range(12)]
            for t in workers:
                t.start()
            out = b""
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                out += proc.stdout.read1(4096)
                time.sleep(0.002)  # a slow reader: the pipe fills
            stop.set()
            for t in workers:
                t.join()
        finally:
            proc.terminate()
            out += proc.stdout.read()
            proc.wait()
    # Audit and access lines are JSON objects; a piece of one inside another line, or
    # a line that does not parse, is a cut.
    lines = [line for line in out.split(b"\n") if line.startswith(b"{") or b'":' in line]
    cut = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            cut.append(line)
    audit = [line for line in lines if b'"mechanism":' in line]
    check(len(audit) >= 50, f"only {len(audit)} audit lines")
    check(not cut, f"{len(cut)} of {len(lines)} lines were cut, e.g. {cut[:1]!r}")


@test
def imap_login_retry_allows_another_attempt():
    with Mail(extra="login_retry = true") as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(f'r1 LOGIN "{JOHN}" "Wr0ng-Pw-1"\r\n'.encode())
        got = read_until(s, rb"r1 (OK|NO|BAD).*\r\n")
        check(b"r1 NO" in got, f"first: {got!r}")
        s.sendall(f'r2 LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
        got = read_until(s, rb"r2 (OK|NO|BAD).*\r\n")
        check(b"r2 OK" in got and b"* OK" not in got, f"second: {got!r}")
        s.close()
        check([a["result"] for a in m.audit_lines()] == ["login_failed", "ok"], "audit")


@test
def imap_unknown_user_gets_no_after_the_lookups_wait():
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        start = time.monotonic()
        s.sendall(b'u1 LOGIN "nobody@example.com" "x"\r\n')
        got = read_to_eof(s)
        check(got == b"u1 NO LOGIN failed\r\n", f"reply: {got!r}")
        check(time.monotonic() - start >= 0.9, "lookupd's Auth-Wait (1 s) was not kept")
        check(b"user not found" not in got, "the lookup's reason reached the client")


@test
def imap_lookup_down_is_an_internal_error():
    e = env()
    e.flush_memcached()  # no route of an earlier test may answer
    e.stop_lookupd()
    try:
        with Mail() as m:
            s = raw(m.imap)
            read_until(s, rb"\* OK .*\r\n")
            s.sendall(f'd1 LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
            got = read_to_eof(s, timeout=30)
            check(got == b"* BAD internal server error\r\n", f"reply: {got!r}")
            check(m.audit_lines()[-1]["result"] == "lookup_unavailable", "audit")
        # A lookup service that answers, but not with a route (HTTP 500): the same.
        e.start_lookupd(extra=("--error-rate", "1"))
        with Mail() as m:
            s = raw(m.pop3)
            read_until(s, rb"\+OK.*\r\n")
            s.sendall(f"USER {JOHN}\r\nPASS {JOHN_PW}\r\n".encode())
            got = read_to_eof(s, timeout=30)
            check(got.endswith(b"-ERR internal server error\r\n"), f"reply: {got!r}")
        e.stop_lookupd()
    finally:
        e.start_lookupd()


@test
def imap_memcached_down_routes_still_resolve():
    e = env()
    e.stop_memcached()
    try:
        with Mail() as m:
            for _ in range(2):
                c = imap_client(m.imap)
                check(c.login(JOHN, JOHN_PW)[0] == "OK", "login without memcached")
                c.logout()
    finally:
        e.start_memcached()


@test
def imap_unreachable_mailbox_server_is_an_internal_error():
    with Mail() as m:
        got = answer_to(m.imap, b'x1 LOGIN "lost@example.com" "x"\r\n')
        check(got == b"* BAD internal server error\r\n", f"reply: {got!r}")
        check(m.audit_lines()[-1]["result"] == "upstream_unreachable", "audit")


def memcached_add(key, value, ttl=3600):
    with socket.create_connection(("127.0.0.1", env().memcached_port), timeout=5) as mc:
        mc.sendall(f"add {key} 0 {ttl} {len(value)}\r\n{value}\r\n".encode())
        got = read_until(mc, rb"\r\n")
    check(got == b"STORED\r\n", f"memcached add {key}: {got!r}")


@test
def a_cached_route_to_an_unreachable_server_is_forgotten():
    # A mailbox moved (or its server's address changed) and the cached route names the
    # old one, which no longer answers: that login gets the internal error, and the
    # route is dropped (per-core cache and memcached) so the next login asks the lookup
    # service instead of failing until the cache entry's TTL.
    e = env()
    e.flush_memcached()
    memcached_add(f"route:proto=imap;user={JOHN}", f"127.0.0.1:{free_port()}")
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(f'x1 LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
        check(read_to_eof(s) == b"* BAD internal server error\r\n", "the stale route")
        check(m.audit_lines()[-1]["route"] == "memcached", f"audit: {m.audit_lines()[-1]}")
        c = imap_client(m.imap)
        check(c.login(JOHN, JOHN_PW)[0] == "OK", "the next login is routed by the lookup")
        c.logout()
        check(m.audit_lines()[-1]["route"] == "lookup", f"audit: {m.audit_lines()[-1]}")


@test
def imap_commands_pipelined_before_login():
    with Mail() as m:
        s = raw(m.imap)
        s.sendall(f'p1 CAPABILITY\r\np2 NOOP\r\np3 LOGIN "{JOHN}" "{JOHN_PW}"\r\n'
                  f'p4 SELECT INBOX\r\np5 FETCH 1 (BODY.PEEK[])\r\np6 LOGOUT\r\n'.encode())
        got = read_to_eof(s)
        for tag in (b"p1", b"p2", b"p3", b"p4", b"p5", b"p6"):
            check(re.search(tag + rb" OK", got), f"{tag} not answered OK: {got[-400:]!r}")
        check(mail_env.message(1) in got, "pipelined FETCH did not return message 1")


@test
def a_quoted_id_of_five_kib_fits_the_default_line():
    # Clients send ID as quoted strings: five 1000-byte values (RFC 2971 allows up to
    # 1024) make a 5 KiB line, within Zimbra's 16 KiB imap_client_buffer.
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        pairs = " ".join(f'"f{i}" "{chr(97 + i) * 1000}"' for i in range(5))
        s.sendall(f"x ID ({pairs})\r\n".encode())
        got = read_until(s, rb"x (OK|NO|BAD).*\r\n", timeout=10)
        check(b"x OK" in got, f"reply: {got[-200:]!r}")
        s.close()


@test
def imap_over_long_line_is_bad_and_closed():
    with Mail() as m:
        got = answer_to(m.imap, b"a NOOP " + b"x" * 20000 + b"\r\n")
        check(re.search(rb"BAD", got) and got.endswith(b"\r\n"), f"reply: {got[:200]!r}")
        m.proxy.wait_log(r"info .*client 127\.0\.0\.1:\d+: closed before login: line too long")


@test
def the_last_reply_before_the_close_is_not_cut_off():
    # A refusal (the mailbox server's own text: pass_errors is on) larger than the room in
    # both socket buffers is partly queued in the proxy; the FIN must wait for the rest
    # (bounded by the send timeout).
    text = b"x" * 30000
    with Mail(extra="send_buffer = 4096\nline_max_bytes = 65536\nauth_wait_ms = 0\n") as m:
        server = threading.Thread(target=scripted_imap_upstream, args=(env().silent, b""),
                                  kwargs={"refuse": True, "refusal": text}, daemon=True)
        server.start()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect(("127.0.0.1", m.imap))
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b't LOGIN "silent@example.com" "pw"\r\n')
        deadline = time.monotonic() + 10
        while not m.audit_lines() and time.monotonic() < deadline:
            time.sleep(0.05)  # the audit line comes after the refusal's write
        time.sleep(0.3)  # and the session ends
        got = read_to_eof(s)
        server.join(5)
        check(got == b"t NO [AUTHENTICATIONFAILED] " + text + b"\r\n",
              f"{len(got)} bytes: {got[-60:]!r}")


def scripted_imap_upstream(listener, alerts, seen=None, refuse=False,
                           capabilities=b"IMAP4rev1 LITERAL+ SASL-IR ID", refusal=b"bad"):
    """Serves one connection of `listener` as an IMAP server would: ID, LOGIN or
    AUTHENTICATE (answered after `alerts`, untagged lines; NO `refusal` with `refuse`),
    NOOP; literals taken. The first line of each command goes to `seen` when given."""
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"* OK [CAPABILITY " + capabilities + b"] scripted\r\n")
        f = conn.makefile("rb")
        while True:
            first = line = f.readline()
            if not line:
                return
            literal = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            while literal:
                if not literal.group(2):
                    conn.sendall(b"+ go on\r\n")
                f.read(int(literal.group(1)))
                line = f.readline()
                literal = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            if seen is not None:
                seen.append(first)
            tag, _, rest = first.partition(b" ")
            command = rest.split(b" ", 1)[0].strip().upper()
            if command == b"ID":
                conn.sendall(b"* ID NIL\r\n" + tag + b" OK ID done\r\n")
            elif command in (b"LOGIN", b"AUTHENTICATE") and refuse:
                conn.sendall(alerts + tag + b" NO [AUTHENTICATIONFAILED] " + refusal + b"\r\n")
            elif command in (b"LOGIN", b"AUTHENTICATE"):
                conn.sendall(alerts + tag + b" OK [CAPABILITY IMAP4rev1] logged in\r\n")
            elif command == b"NOOP":
                conn.sendall(tag + b" OK noop done\r\n")
            else:
                conn.sendall(tag + b" BAD unknown\r\n")


def recording_imap_upstream():
    """The scripted mailbox behind silent@example.com, recording each command's first
    line: (that list, its thread)."""
    seen = []
    server = threading.Thread(target=scripted_imap_upstream, args=(env().silent, b"", seen),
                              daemon=True)
    server.start()
    return seen, server


@test
def the_mailbox_servers_alerts_reach_the_client_also_when_the_login_is_refused():
    # Spec §4.2: an untagged [ALERT] goes to the client as it comes, also when the
    # refusal's own text is the proxy's (pass_errors off).
    alert = b"* OK [ALERT] account locked by the administrator\r\n"
    with Mail(extra="pass_errors = false\nauth_wait_ms = 0\n") as m:
        server = threading.Thread(target=scripted_imap_upstream,
                                  args=(env().silent, alert, None, True), daemon=True)
        server.start()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b'a LOGIN "silent@example.com" "pw"\r\n')
        got = read_until(s, rb"a (OK|NO|BAD).*\r\n", timeout=10)
        check(got == alert + b"a NO LOGIN failed\r\n", f"reply: {got!r}")
        s.close()
        server.join(5)


@test
def no_password_goes_to_a_mailbox_server_that_says_logindisabled():
    # Such a server refuses a cleartext login: the password must not cross the link to
    # be refused, nor the client be held and counted as a failed login.
    with Mail(extra="auth_wait_ms = 3000\n") as m:
        for n, command in enumerate((b'a LOGIN "silent@example.com" "pw"\r\n',
                                     b"a AUTHENTICATE PLAIN AHNpbGVudEBleGFtcGxlLmNvbQBwdw==\r\n")):
            seen = []
            server = threading.Thread(
                target=scripted_imap_upstream,
                args=(env().silent, b"", seen, False, b"IMAP4rev1 SASL-IR ID LOGINDISABLED"),
                daemon=True)
            server.start()
            s = raw(m.imap)
            read_until(s, rb"\* OK .*\r\n")
            started = time.monotonic()
            s.sendall(command)
            got = read_until(s, rb"(a (OK|NO|BAD)|\* BAD).*\r\n", timeout=10)
            check(time.monotonic() - started < 2, "the client was held for the auth wait")
            check(b"internal" in got and b" OK" not in got, f"reply: {got!r}")
            s.close()
            server.join(5)
            check(not any(b"LOGIN" in line or b"AUTHENTICATE" in line for line in seen),
                  f"sent upstream: {seen}")
            wait_until(lambda: len(m.audit_lines()) == n + 1, what="the audit line")
            check(m.audit_lines()[-1]["result"] == "upstream_error", m.audit_lines()[-1])


@test
def an_ipv6_mailbox_server_is_audited_in_brackets():
    if env().silent6 is None:
        print("skipped: no IPv6 here")
        return
    with Mail(extra="auth_wait_ms = 0\n") as m:
        server = threading.Thread(target=scripted_imap_upstream, args=(env().silent6, b""),
                                  daemon=True)
        server.start()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b'a LOGIN "six@example.com" "pw"\r\n')
        check(b"a OK" in read_until(s, rb"a (OK|NO|BAD).*\r\n", timeout=10), "login")
        s.close()
        server.join(5)
        wait_until(lambda: m.audit_lines(), what="the audit line")
        a = m.audit_lines()[-1]
        check(a["upstream"] == f"[::1]:{env().silent6_port}", f"audit: {a}")


@test
def what_id_said_before_starttls_is_forgotten_with_the_plaintext():
    # STARTTLS injection applied to state: an ID an attacker slipped in ahead of the
    # client's STARTTLS must not reach the mailbox server as the client's name and via.
    with Mail(extra='flavour = "zimbra"\n') as m:
        seen, server = recording_imap_upstream()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b'x ID ("name" "evil" "version" "6.6.6")\r\na STARTTLS\r\n')
        read_until(s, rb"a OK .*\r\n")
        t = ctx().wrap_socket(s, server_hostname="localhost")
        t.sendall(b'b LOGIN "silent@example.com" "pw"\r\n')
        got = read_until(t, rb"b (OK|NO|BAD).*\r\n", timeout=10)
        check(b"b OK" in got, f"login: {got!r}")
        t.close()
        server.join(5)
        ids = [line for line in seen if b" ID " in line]
        check(len(ids) == 1 and b"evil" not in ids[0], f"ID upstream: {ids}")


@test
def a_second_login_attempt_still_tells_the_mailbox_the_clients_id():
    # With login_retry, each attempt is a new dialogue: the ID the client sent before
    # its first attempt must still reach the mailbox server with the second.
    with Mail(extra='flavour = "zimbra"\nlogin_retry = true\n') as m:
        seen, server = recording_imap_upstream()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b'x ID ("name" "Thunderbird" "version" "115")\r\n')
        read_until(s, rb"x OK .*\r\n")
        s.sendall(b'a LOGIN "nobody@example.com" "pw"\r\n')
        check(b"a NO" in read_until(s, rb"a (OK|NO|BAD).*\r\n", timeout=10), "first attempt")
        s.sendall(b'b LOGIN "silent@example.com" "pw"\r\n')
        got = read_until(s, rb"b (OK|NO|BAD).*\r\n", timeout=10)
        check(b"b OK" in got, f"second attempt: {got!r}")
        s.close()
        server.join(5)
        ids = [line for line in seen if b" ID " in line]
        # The client in X-VIA; "name" and "version" are the proxy's own (spec §4.2).
        check(len(ids) == 1 and b'"X-VIA" "Thunderbird/115,' in ids[0] and
              b'"name" "ringproxy" "version" "Unknown Version"' in ids[0], f"ID upstream: {ids}")


@test
def a_reply_larger_than_the_socket_buffers_is_sent_whole_while_the_session_goes_on():
    # A reply the client's socket cannot take at once is partly queued in the proxy; it
    # must go out without waiting for anything else: a refusal with login_retry on (the
    # dialogue then waits for the client, which waits for the rest of its NO), and the
    # login's answer before the relay (a server silent after it sends nothing that would
    # push the rest out; here 16 KiB of [ALERT] lines and the tagged OK).
    extra = "send_buffer = 4096\nline_max_bytes = 65536\nlogin_retry = true\n"
    alerts = b"".join(b"* OK [ALERT] %s\r\n" % (b"%02d" % i * 400) for i in range(20))
    with Mail(extra=extra) as m:
        # The refusal: 16 KB of the server's own text (pass_errors is on).
        for refuse, alerts_sent, reply in ((True, b"", b"NO"), (False, alerts, b"OK")):
            server = threading.Thread(target=scripted_imap_upstream,
                                      args=(env().silent, alerts_sent),
                                      kwargs={"refuse": refuse, "refusal": b"x" * 16000},
                                      daemon=True)
            server.start()
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            s.connect(("127.0.0.1", m.imap))
            read_until(s, rb"\* OK .*\r\n")
            s.sendall(b't LOGIN "silent@example.com" "pw"\r\n')
            time.sleep(1.5)  # the reply is written meanwhile (after the lookup's wait)
            got = read_until(s, rb"t (OK|NO|BAD).*\r\n", timeout=5)
            check(re.search(b"t " + reply + b" .*\r\n", got), f"{len(got)} bytes: {got[-60:]!r}")
            if reply == b"NO":
                check(len(got) > 16000, f"the refusal: {len(got)} bytes")
            if reply == b"OK":
                check(got.count(b"[ALERT]") == 10, f"alerts (8 KiB of them): {got.count(b'[ALERT]')}")
            s.sendall(b"n NOOP\r\n")
            got = read_until(s, rb"n (OK|NO|BAD).*\r\n", timeout=5)
            check(b"n OK" in got, f"{reply}: after the reply: {got[-80:]!r}")
            s.close()
            server.join(5)


@test
def imap_append_10mb_literal_and_fetch_it_back():
    with Mail() as m:
        c = imap_client(m.imap)
        c.login("bob@example.com", mail_env.USERS["bob@example.com"])
        body = b"".join(b"%08d append line xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n" % i
                        for i in range(10 * 1024 * 1024 // 52))
        msg = b"From: a@example.org\r\nSubject: big\r\n\r\n" + body
        typ, data = c.append("INBOX", None, None, msg)
        check(typ == "OK", f"APPEND: {typ} {data}")
        c.select("INBOX")
        typ, data = c.search(None, "SUBJECT", "big")
        last = data[0].split()[-1]
        typ, data = c.fetch(last, "(BODY.PEEK[])")
        check(data[0][1] == msg, "the 10 MB message came back different")
        c.logout()


@test
def imap_idle_survives_a_quiet_minute():
    with Mail() as m:
        c = imap_client(m.imap)
        c.login(JOHN, JOHN_PW)
        c.select("INBOX")
        tag = c._new_tag()
        c.send(tag + b" IDLE\r\n")
        line = c.readline()
        check(line.startswith(b"+"), f"IDLE: {line!r}")
        time.sleep(65)
        c.send(b"DONE\r\n")
        line = c.readline()
        while line and not line.startswith(tag):
            line = c.readline()
        check(b"OK" in line, f"IDLE end: {line!r} (empty: the connection closed)")
        check(c.noop()[0] == "OK", "NOOP after IDLE")
        c.logout()


@test
def imap_500_concurrent_sessions_fetch_byte_exact():
    with Mail() as m:
        errors = []
        threads, per_thread = 100, 5
        all_in = threading.Barrier(threads, timeout=120)

        def worker(k):
            clients = []
            try:
                for j in range(per_thread):
                    c = imap_client(m.imap)
                    c.login(JOHN, JOHN_PW)
                    c.select("INBOX", readonly=True)
                    clients.append(c)
                all_in.wait()  # 500 sessions relayed at once
                for j, c in enumerate(clients):
                    i = 1 + (k + j) % mail_env.SEEDED
                    typ, data = c.fetch(str(i), "(BODY.PEEK[])")
                    if data[0][1] != mail_env.message(i):
                        errors.append(f"worker {k}: message {i} differs")
                    c.logout()
            except Exception as ex:  # noqa: BLE001
                errors.append(f"worker {k}: {ex!r}")
                all_in.abort()

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, f"{len(errors)} errors: {errors[:5]}")
        oks = sum(a["result"] == "ok" for a in m.audit_lines())
        check(oks == threads * per_thread, f"{oks} successful logins audited")


@test
def imap_route_naming_a_host_is_resolved():
    with Mail() as m:
        for _ in range(2):  # the second login finds the name in the shard's cache
            c = imap_client(m.imap)
            typ, _ = c.login("host@example.com", mail_env.USERS["host@example.com"])
            check(typ == "OK", "login routed to 'localhost'")
            c.select("INBOX")
            c.logout()
        a = m.audit_lines()[-1]
        check(a["upstream"] == f"localhost:{env().imap_port}" and a["result"] == "ok",
              f"audit: {a}")
        check(a["route"] == "local", f"the second login's route came from {a['route']}")


@test
def imap_and_pop3_with_tls_to_the_mailbox_server():
    with Mail(upstream_tls=True) as m:
        c = imap_client(m.imap)
        check(c.login(JOHN, JOHN_PW)[0] == "OK", "login over TLS to Dovecot's IMAPS port")
        check_seeded(fetch_all(c))
        c.logout()
        c = poplib.POP3("127.0.0.1", m.pop3, timeout=20)
        c.user(JOHN)
        c.pass_(JOHN_PW)
        _, lines, _ = c.retr(1)
        check(b"\r\n".join(lines) + b"\r\n" == mail_env.message(1), "RETR over upstream TLS")
        c.quit()
        ups = [a["upstream"] for a in m.audit_lines()]
        check(ups == [f"127.0.0.1:{env().imaps_port}", f"127.0.0.1:{env().pop3s_port}"],
              f"routes asked for imapssl/pop3ssl: {ups}")


# --- POP3 ------------------------------------------------------------------------------

@test
def pop3_user_pass_retr_byte_exact_quit():
    with Mail() as m:
        c = poplib.POP3("127.0.0.1", m.pop3, timeout=20)
        c.user(JOHN)
        c.pass_(JOHN_PW)
        count, _ = c.stat()
        check(count >= mail_env.SEEDED, f"STAT: {count}")
        for i in range(1, mail_env.SEEDED + 1):
            _, lines, _ = c.retr(i)
            check(b"\r\n".join(lines) + b"\r\n" == mail_env.message(i), f"RETR {i} differs")
        c.quit()
        a = m.audit_lines()[-1]
        check(a["protocol"] == "pop3" and a["result"] == "ok", f"audit: {a}")


@test
def capabilities_copied_from_zimbra_advertise_login_only_as_the_tls_state_allows():
    # Zimbra's POP3 default lists USER, and an IMAP list may name STARTTLS or AUTH=PLAIN:
    # those are the proxy's to add by state. Taken as written, CAPA advertised USER on a
    # port that refuses it (starttls = only), and twice after STLS.
    caps = ('capabilities = ["IMAP4rev1", "STARTTLS", "AUTH=PLAIN", "TOP", "USER", "UIDL", '
            '"EXPIRE 31 USER", "XOIP", "STLS", "SASL PLAIN"]\n')
    with Mail(extra=caps, starttls="only") as m:
        c = poplib.POP3("127.0.0.1", m.pop3, timeout=20)
        before = c.capa()
        check("USER" not in before and "SASL" not in before and "STLS" in before,
              f"before STLS: {before}")
        check(before.get("EXPIRE") == ["31", "USER"] and "TOP" in before, f"kept: {before}")
        c.stls(ctx())
        c._putcmd("CAPA")
        _, lines, _ = c._getlongresp()
        users = [line for line in lines if line.split(b" ")[0] == b"USER"]
        check(len(users) == 1 and not any(line.startswith(b"STLS") for line in lines),
              f"after STLS: {lines}")
        c.quit()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b"a CAPABILITY\r\n")
        got = read_until(s, rb"a OK.*\r\n")
        check(b"AUTH=PLAIN" not in got and got.count(b"STARTTLS") == 1 and
              b"LOGINDISABLED" in got, f"IMAP before STARTTLS: {got!r}")
        s.close()


@test
def pop3_auth_plain_login_stls_and_pop3s():
    with Mail() as m:
        s = raw(m.pop3)
        read_until(s, rb"\+OK.*\r\n")
        s.sendall(b"AUTH PLAIN " + base64.b64encode(f"\0{JOHN}\0{JOHN_PW}".encode()) + b"\r\n")
        got = read_until(s, rb"(\+OK|-ERR).*\r\n")
        check(got.startswith(b"+OK"), f"AUTH PLAIN: {got!r}")
        s.sendall(b"STAT\r\nQUIT\r\n")
        got = read_to_eof(s)
        check(got.startswith(b"+OK"), f"STAT: {got!r}")
        s = raw(m.pop3)
        read_until(s, rb"\+OK.*\r\n")
        s.sendall(b"AUTH LOGIN\r\n")
        read_until(s, rb"\+ .*\r\n")
        s.sendall(base64.b64encode(JOHN.encode()) + b"\r\n")
        read_until(s, rb"\+ .*\r\n")
        s.sendall(base64.b64encode(JOHN_PW.encode()) + b"\r\n")
        got = read_until(s, rb"(\+OK|-ERR).*\r\n")
        check(got.startswith(b"+OK"), f"AUTH LOGIN: {got!r}")
        s.close()
        c = poplib.POP3("127.0.0.1", m.pop3, timeout=20)
        c.stls(context=ctx())
        c.user(JOHN)
        c.pass_(JOHN_PW)
        _, lines, _ = c.retr(2)
        check(b"\r\n".join(lines) + b"\r\n" == mail_env.message(2), "RETR over STLS")
        c.quit()
        c = poplib.POP3_SSL("127.0.0.1", m.pop3s, context=ctx(), timeout=20)
        c.user(JOHN)
        c.pass_(JOHN_PW)
        _, lines, _ = c.retr(3)
        check(b"\r\n".join(lines) + b"\r\n" == mail_env.message(3), "RETR over POP3S")
        c.quit()
        rc, out = tls_env.s_client(m.pop3, "-starttls", "pop3", "-quiet",
                                   data=f"USER {JOHN}\r\nPASS {JOHN_PW}\r\nSTAT\r\nQUIT\r\n".encode())
        check(out.count("+OK") >= 4, f"s_client -starttls pop3: {out[-800:]}")


@test
def pop3_wrong_password_and_unknown_user():
    with Mail() as m:
        s = raw(m.pop3)
        read_until(s, rb"\+OK.*\r\n")
        start = time.monotonic()
        s.sendall(f"USER {JOHN}\r\nPASS N0pe-Pw-2\r\n".encode())
        got = read_to_eof(s)
        took = time.monotonic() - start
        # Dovecot's refusal passes through (pass_errors), after the auth wait; not the
        # proxy's internal error.
        last = got.split(b"\r\n")[-2]
        check(last.startswith(b"-ERR [AUTH] "), f"wrong password: {got!r}")
        check(took >= 0.3, f"answered after {took:.3f}s, before the auth wait")
        check(m.audit_lines()[-1]["result"] == "login_failed", m.audit_lines()[-1])
        s = raw(m.pop3)
        read_until(s, rb"\+OK.*\r\n")
        s.sendall(b"USER nobody@example.com\r\nPASS x\r\n")
        got = read_to_eof(s)
        check(got.endswith(b"-ERR LOGIN failed\r\n"), f"unknown user: {got!r}")


# --- Throttles ---------------------------------------------------------------------------

def throttle(**kw):
    lines = "\n".join(f"{k} = {v}" for k, v in kw.items())
    return f"\n[throttle]\n{lines}\n"


@test
def ip_throttle_exactly_at_its_limit_shared_by_two_proxies():
    key_ttl = 30
    # Each run uses its own protocol window key: flush memcached first.
    e = env()
    e.flush_memcached()
    t = throttle(imap_max=4, imap_ttl_s=key_ttl, ip_reject_message='"Go away"')
    with Mail(throttle=t) as a, Mail(throttle=t) as b:
        got = []
        for port in (a.imap, b.imap, a.imap, b.imap, a.imap, b.imap):
            s = raw(port)
            got.append(read_until(s, rb"\r\n"))
            s.close()
        check(all(g.startswith(b"* OK") for g in got[:4]), f"first four: {got[:4]}")
        check(got[4] == b"* BYE Go away\r\n" and got[5] == b"* BYE Go away\r\n",
              f"fifth and sixth: {got[4:]}")


@test
def user_throttle_exactly_at_its_limit_shared_by_two_proxies():
    e = env()
    e.flush_memcached()
    t = throttle(user_max=2, user_ttl_s=30)
    with Mail(throttle=t) as a, Mail(throttle=t) as b:
        # Counted under the canonical account, whatever name the user typed: the alias's
        # login and the account's add up to the limit.
        for i, (port, user) in enumerate(((a.imap, "jd@example.com"), (b.imap, JOHN))):
            c = imap_client(port)
            check(c.login(user, JOHN_PW)[0] == "OK", f"login {i + 1}")
            c.logout()
        got = answer_to(a.imap, f'z LOGIN "jd@example.com" "{JOHN_PW}"\r\n'.encode())
        check(got == b"* BYE Login rejected for this user\r\nz NO LOGIN failed\r\n",
              f"third login: {got!r}")
        check(a.audit_lines()[-1]["result"] == "user_throttled", "audit")
        # Another account is not affected.
        c = imap_client(b.imap)
        check(c.login("bob@example.com", mail_env.USERS["bob@example.com"])[0] == "OK", "bob")
        c.logout()


@test
def refused_commands_and_logins_are_logged():
    with Mail() as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b"a SELECT INBOX\r\nb LOGIN \"jo\x01hn\" pw\r\n")
        check(read_until(s, rb"b (OK|NO|BAD).*\r\n").endswith(b"b NO LOGIN failed\r\n"),
              "the control byte's login")
        s.close()
        s = raw(m.pop3)
        read_until(s, rb"\+OK .*\r\n")
        s.sendall(b"STAT\r\n")
        check(read_until(s, rb"-ERR .*\r\n") == b"-ERR invalid command\r\n", "STAT")
        s.close()
        m.proxy.wait_log(r"imap: client 127\.0\.0\.1:\d+: BAD invalid command")
        m.proxy.wait_log(r"imap: client 127\.0\.0\.1:\d+: login refused: LOGIN: a name or "
                         r"password too long or with control bytes")
        m.proxy.wait_log(r"pop3: client 127\.0\.0\.1:\d+: -ERR invalid command")


@test
def refused_cleartext_logins_and_mechanisms_are_logged():
    with Mail(starttls="only") as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(b"a LOGIN john pw\r\nb AUTHENTICATE GSSAPI\r\n")
        check(read_until(s, rb"b (OK|NO|BAD).*\r\n").endswith(b"b NO mechanism not supported\r\n"),
              "the mechanism")
        s.close()
        s = raw(m.pop3)
        read_until(s, rb"\+OK .*\r\n")
        s.sendall(b"USER john\r\nAUTH CRAM-MD5\r\n")
        check(read_until(s, rb"(-ERR .*\r\n){2}") ==
              b"-ERR cleartext logins disabled\r\n-ERR mechanism not supported\r\n", "POP3")
        s.close()
        m.proxy.wait_log(r"imap: client 127\.0\.0\.1:\d+: NO \[PRIVACYREQUIRED\] cleartext logins "
                         r"disabled")
        m.proxy.wait_log(r"imap: client 127\.0\.0\.1:\d+: NO mechanism not supported")
        m.proxy.wait_log(r"pop3: client 127\.0\.0\.1:\d+: -ERR cleartext logins disabled")
        m.proxy.wait_log(r"pop3: client 127\.0\.0\.1:\d+: -ERR mechanism not supported")


# --- Robustness ------------------------------------------------------------------------

def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@test
def no_fd_leak_over_1000_failed_logins():
    with Mail(extra="auth_wait_ms = 0") as m:
        c = imap_client(m.imap)
        c.login(JOHN, JOHN_PW)
        c.logout()
        time.sleep(0.3)
        before = open_fds(m.proxy.pid)
        errors = []

        def worker(n):
            for _ in range(n):
                try:
                    got = answer_to(m.imap, f'f LOGIN "{JOHN}" "B4d-Pw-3"\r\n'.encode())
                    if b"f NO" not in got:
                        errors.append(got)
                except Exception as ex:  # noqa: BLE001
                    errors.append(repr(ex))

        ts = [threading.Thread(target=worker, args=(50,)) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, f"{len(errors)} errors: {errors[:3]}")
        harness.wait_until(lambda: open_fds(m.proxy.pid) <= before + 2, timeout=10,
                           what=f"fds back to {before} (now {open_fds(m.proxy.pid)})")


@test
def parked_connections_that_leave_are_closed():
    # Greeted and silent connections are parked (no session yet); each way of leaving
    # (FIN, RST, FIN with a command already sent) must free them, and a parked one
    # that speaks must still get a full session.
    with Mail() as m:
        before = open_fds(m.proxy.pid)
        socks = []
        for port in (m.imap, m.pop3):
            for _ in range(100):
                s = raw(port)
                read_until(s, rb"(\* OK|\+OK) .*\r\n")
                socks.append(s)
        check(open_fds(m.proxy.pid) >= before + 200, "the parked connections are not held")
        for i, s in enumerate(socks):
            if i % 3 == 0:
                reset_on_close(s)
            elif i % 3 == 1:
                s.sendall(b"a NOOP\r\n" if i < 100 else b"NOOP\r\n")
            s.close()
        harness.wait_until(lambda: open_fds(m.proxy.pid) <= before + 2, timeout=10,
                           what=f"fds back to {before} (now {open_fds(m.proxy.pid)})")
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        time.sleep(0.3)
        s.sendall(f'l LOGIN "{JOHN}" "{JOHN_PW}"\r\nc CAPABILITY\r\n'.encode())
        got = read_until(s, rb"c OK.*\r\n")
        check(b"l OK" in got, f"a parked connection that spoke: {got!r}")
        s.close()


@test
def deadlines_before_during_and_after_login():
    extra = "preauth_timeout_ms = 600\nupstream_timeout_ms = 700\nidle_timeout_ms = 800"
    with Mail(extra=extra) as m:
        # Before login: a silent client gets BYE and the connection closes.
        s = raw(m.imap)
        start = time.monotonic()
        got = read_to_eof(s, timeout=10)
        check(got.startswith(b"* OK") and got.endswith(b"* BYE Zimbra IMAP server terminating "
                                                       b"connection\r\n"), f"pre-auth: {got!r}")
        check(time.monotonic() - start < 5, "pre-auth deadline not kept")
        s = raw(m.pop3)
        got = read_to_eof(s, timeout=10)
        check(got.startswith(b"+OK") and b"-ERR" in got, f"POP3 pre-auth: {got!r}")
        # During: a mailbox server that never greets.
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        start = time.monotonic()
        s.sendall(b'q LOGIN "silent@example.com" "x"\r\n')
        got = read_to_eof(s, timeout=10)
        check(got == b"* BAD internal server error\r\n", f"silent upstream: {got!r}")
        check(time.monotonic() - start < 5, "upstream deadline not kept")
        check(m.audit_lines()[-1]["result"] == "upstream_error", "audit")

        # A mailbox server that greets and then says an untagged line every 0.3 s, never
        # an answer: the deadline is the login's, not each line's.
        def drip():
            conn, _ = env().silent.accept()
            harness.trickle(conn, b"* OK ready\r\n", b"* OK still thinking\r\n", 40, 0.3)
            conn.close()
        env().silent.settimeout(0)  # the connections the part above left in the backlog
        try:
            while True:
                env().silent.accept()[0].close()
        except OSError:
            pass
        env().silent.settimeout(None)
        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        start = time.monotonic()
        s.sendall(b'q LOGIN "silent@example.com" "x"\r\n')
        got = read_to_eof(s, timeout=20)
        took = time.monotonic() - start
        check(got == b"* BAD internal server error\r\n", f"dripping upstream: {got!r}")
        check(took < 3, f"the login was held {took:.1f}s by a server that never answered")
        dripper.join(15)

        # POP3: a mailbox server that answers every step, each 0.5 s late (XOIP, USER,
        # PASS: 1.5 s in all): the 700 ms are the whole login's, not each step's.
        def slow_pop3():
            conn, _ = env().silent.accept()
            try:
                conn.sendall(b"+OK ready\r\n")
                f = conn.makefile("rb")
                while f.readline():
                    time.sleep(0.5)
                    conn.sendall(b"+OK\r\n")
            except OSError:
                pass
            conn.close()
        slow = threading.Thread(target=slow_pop3, daemon=True)
        slow.start()
        s = raw(m.pop3)
        read_until(s, rb"\+OK.*\r\n")
        start = time.monotonic()
        s.sendall(b"USER silent@example.com\r\nPASS x\r\n")
        got = read_to_eof(s, timeout=20)
        took = time.monotonic() - start
        check(got.endswith(b"-ERR internal server error\r\n"), f"slow POP3 upstream: {got!r}")
        check(took < 1.3, f"the POP3 login was held {took:.1f}s, past its 0.7 s")
        slow.join(15)
        # After: an idle relayed session is closed.
        c = imap_client(m.imap)
        c.login(JOHN, JOHN_PW)
        start = time.monotonic()
        c.sock.settimeout(10)
        check(c.sock.recv(100) == b"", "the idle relayed session was not closed")
        check(time.monotonic() - start < 5, "post-login idle deadline not kept")


@test
def reload_keeps_a_sessions_generation_and_its_route_stack():
    with Mail(extra='greeting = "first generation"') as m:
        old = raw(m.imap)
        check(read_until(old, rb"\r\n") == b"* OK first generation\r\n", "first greeting")
        # The new generation's route stack reaches no route: neither lookup service nor
        # memcached answers there. Only the old generation's stack logs the old session in.
        dead = harness.refused_port()
        new = (m.config.replace("first generation", "second generation")
               .replace(f"127.0.0.1:{env().lookupd_port}", f"127.0.0.1:{dead}")
               .replace(f"127.0.0.1:{env().memcached_port}", f"127.0.0.1:{dead}"))
        check(new.count(f"127.0.0.1:{dead}") == 2, "the new config's route stack")
        m.proxy.write_config(new)
        m.proxy.signal(1)
        m.proxy.wait_log(r"reload done", timeout=10)

        def greeting():
            s = raw(m.imap)
            g = read_until(s, rb"\r\n")
            s.close()
            return g

        harness.wait_until(lambda: greeting() == b"* OK second generation\r\n", timeout=10,
                           what="the new greeting")
        # The session of the old generation logs in through that generation's stack.
        old.sendall(f'o LOGIN "{JOHN}" "{JOHN_PW}"\r\no2 SELECT INBOX\r\n'.encode())
        got = read_until(old, rb"o2 (OK|NO|BAD).*\r\n")
        check(b"o OK" in got and b"o2 OK" in got, f"old session: {got[-300:]!r}")
        old.close()
        # A session of the new generation has that generation's (dead) stack.
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        s.sendall(f'n LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
        got = read_until(s, rb"(n (OK|NO|BAD)|\* BAD).*\r\n", timeout=15)
        check(b"n OK" not in got and re.search(rb"n NO|\* BAD|\* BYE", got),
              f"new session: {got!r}")
        s.close()


@test
def a_route_forgotten_on_one_core_is_forgotten_on_every_core():
    # A refused login drops the cached route (a moved mailbox): on every core, not only
    # the one that saw the refusal, or each other core fails one more login on it.
    with Mail(extra="auth_wait_ms = 0\n", shards=2) as m:
        def login_and_shard():
            c = imap_client(m.imap)
            check(c.login(JOHN, JOHN_PW)[0] == "OK", "login")
            port = c.sock.getsockname()[1]
            c.logout()
            m.proxy.wait_log(rf"\[shard (\d)\] access imap .*client=127\.0\.0\.1:{port} ")
            shard = re.search(rf"\[shard (\d)\] access imap .*client=127\.0\.0\.1:{port} ",
                              m.proxy.log_text()).group(1)
            harness.wait_until(lambda: any(a["client"].endswith(f":{port}")
                                           for a in m.audit_lines()), what="audit line")
            route = [a["route"] for a in m.audit_lines() if a["client"].endswith(f":{port}")][0]
            return shard, route

        served = {}
        for _ in range(60):  # both cores have the route cached
            shard, _route = login_and_shard()
            served[shard] = served.get(shard, 0) + 1
            if len(served) == 2 and min(served.values()) >= 2:
                break
        check(len(served) == 2, f"one core served every login: {served}")
        # memcached stalls (its deletes land late): the other cores must drop the route
        # before the refusal reaches the client, not once memcached has answered.
        memcached = env().procs["memcached"].proc
        memcached.send_signal(signal.SIGSTOP)
        try:
            c = imap_client(m.imap)
            try:
                c.login(JOHN, "Wr0ng-Pw-3")
            except imaplib.IMAP4.error:
                pass
            first = {}
            for _ in range(60):
                shard, route = login_and_shard()
                first.setdefault(shard, route)
                if len(first) == 2:
                    break
        finally:
            memcached.send_signal(signal.SIGCONT)
        check(len(first) == 2, f"one core served every login: {first}")
        check("local" not in first.values(), f"first route per core after the refusal: {first}")


@test
def a_route_forgotten_in_an_old_generation_is_forgotten_in_the_new_one():
    # A session from before a reload that changed the route settings refuses a login in
    # its generation's route stack: the new generation's stack, which the logins after
    # the reload filled, must drop the route too (the same core, another stack).
    with Mail(extra="auth_wait_ms = 0\n", lookup_timeout_ms=3000) as m:
        old = raw(m.imap)
        read_until(old, rb"\* OK .*\r\n")
        m.proxy.write_config(m.config.replace("timeout_ms = 3000", "timeout_ms = 3001"))
        m.proxy.signal(1)
        m.proxy.wait_log(r"reload done")

        def login_route():
            c = imap_client(m.imap)
            check(c.login(JOHN, JOHN_PW)[0] == "OK", "login")
            port = c.sock.getsockname()[1]
            c.logout()
            harness.wait_until(lambda: any(a["client"].endswith(f":{port}")
                                           for a in m.audit_lines()), what="audit line")
            return [a["route"] for a in m.audit_lines() if a["client"].endswith(f":{port}")][0]

        login_route()
        check(login_route() == "local", "the new generation did not cache the route")
        old.sendall(f'w LOGIN "{JOHN}" "Wr0ng-Pw-4"\r\n'.encode())
        check(b"w NO" in read_until(old, rb"w (OK|NO|BAD).*\r\n", timeout=10), "refusal")
        old.close()
        route = login_route()
        check(route != "local", f"the new generation kept the forgotten route: {route}")


@test
def reloads_that_keep_the_route_settings_keep_one_route_stack():
    # A log rotation's SIGHUP every hour and IMAP sessions that last days: each
    # generation that a logged-in session held kept its own route stack, with its own
    # memcached connection and a cold route cache.
    with Mail(extra='greeting = "g0"') as m:
        kept = []

        def greeting():
            s = raw(m.imap)
            g = read_until(s, rb"\r\n")
            s.close()
            return g

        for i in range(1, 5):
            c = imap_client(m.imap)
            check(c.login(JOHN, JOHN_PW)[0] == "OK", f"login {i}")
            kept.append(c)
            m.proxy.write_config(m.config.replace('"g0"', f'"g{i}"'))
            m.proxy.signal(1)
            harness.wait_until(lambda: greeting() == f"* OK g{i}\r\n".encode(), timeout=10,
                               what=f"generation {i}")
        c = imap_client(m.imap)
        check(c.login(JOHN, JOHN_PW)[0] == "OK", "login in the last generation")
        kept.append(c)
        port = env().memcached_port
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout
        check(len(out.splitlines()) == 1, f"connections to memcached:\n{out}")
        # The last login's route came from the cache the first generation filled.
        check(m.audit_lines()[-1]["route"] == "local", m.audit_lines()[-1])
        for c in kept:
            c.logout()


@test
def a_reload_that_fails_still_reopens_the_audit_file():
    # Rotation: the file is moved away, then SIGHUP. A config error keeps the running
    # configuration, and its audit file is opened again all the same (as its log files
    # are), so the next login's line lands in a new file at the path.
    with Mail() as m:
        c = imap_client(m.imap)
        check(c.login(JOHN, JOHN_PW)[0] == "OK", "first login")
        c.logout()
        harness.wait_until(lambda: len(m.audit_lines()) == 1, what="the first audit line")
        rotated = m.audit + ".1"
        os.rename(m.audit, rotated)
        m.proxy.write_config(m.config + "\n[no_such_section]\n")
        m.proxy.signal(1)
        m.proxy.wait_log(r"reload failed", timeout=10)
        c = imap_client(m.imap)
        check(c.login(JOHN, JOHN_PW)[0] == "OK", "second login")
        c.logout()
        harness.wait_until(lambda: len(m.audit_lines()) == 1, what="a line in the new file")
        with open(rotated) as f:
            check(len(f.readlines()) == 1, "the second line went to the rotated file")


@test
def a_long_tag_is_refused_at_once():
    # The upstream login reuses the client's tag: one that Dovecot refuses without a tag
    # (over 126 bytes, with ".ID") held the client for upstream_timeout_ms, then failed.
    with Mail(extra="upstream_timeout_ms = 5000\n") as m:
        s = raw(m.imap)
        read_until(s, rb"\* OK .*\r\n")
        started = time.monotonic()
        s.sendall(b"t" * 125 + f' LOGIN "{JOHN}" "{JOHN_PW}"\r\nb NOOP\r\n'.encode())
        got = read_until(s, rb"b (OK|NO|BAD).*\r\n", timeout=10)
        check(time.monotonic() - started < 2, "held for the upstream timeout")
        check(got.startswith(b"* BAD bad tag\r\nb OK"), f"reply: {got[-120:]!r}")
        s.close()
        m.proxy.wait_log(r"imap: client 127\.0\.0\.1:\d+: BAD bad tag")


@test
def a_reload_moves_the_audit_lines_of_older_sessions_to_the_new_file():
    # Rotation, then a reload that succeeds: a session from before it (an IMAP session
    # lasts days) writes its line into the new file, and the rotated one is let go.
    with Mail() as m:
        old = raw(m.imap)
        read_until(old, rb"\* OK .*\r\n")
        rotated = m.audit + ".1"
        with open(m.audit, "a"):
            pass
        os.rename(m.audit, rotated)
        m.proxy.write_config(m.config + "\n# rotated\n")
        m.proxy.signal(1)
        m.proxy.wait_log(r"reload done")
        old.sendall(f'a LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
        check(b"a OK" in read_until(old, rb"a (OK|NO|BAD).*\r\n"), "login")
        old.close()
        harness.wait_until(lambda: len(m.audit_lines()) == 1, what="the line in the new file")
        with open(rotated) as f:
            check(f.read() == "", "the old session wrote into the rotated file")
        fds = glob.glob(f"/proc/{m.proxy.pid}/fd/*")
        held = [t for t in (os.readlink(f) for f in fds if os.path.exists(f))
                if t.startswith(rotated)]
        check(held == [], f"the rotated audit file is still open: {held}")


@test
def sigterm_stops_idle_and_relayed_mail_sessions():
    with Mail() as m:
        idle = raw(m.imap)
        read_until(idle, rb"\* OK .*\r\n")
        c = imap_client(m.imap)
        c.login(JOHN, JOHN_PW)
        c.select("INBOX")
        start = time.monotonic()
        m.proxy.signal(15)
        # Both clients see their connection end by the 2 s drain deadline, and the proxy
        # says it closed them (its exit would close them too).
        read_to_eof(idle, timeout=5)
        read_to_eof(c.sock, timeout=5)
        took = time.monotonic() - start
        check(took < 3.5, f"the sessions ended {took:.1f}s after SIGTERM")
        rc = m.proxy.wait_exit(timeout=10)
        check(rc == 0, f"exit code {rc}")
        m.proxy.wait_log(r"drain deadline reached: closing [12] sessions")


def sigterm_within_the_drain(m):
    """SIGTERM half a second after the sessions began to wait: the proxy must exit 0
    within its 2 s drain and some slack, not at the end of what they wait for."""
    time.sleep(0.5)
    start = time.monotonic()
    m.proxy.signal(15)
    rc = m.proxy.wait_exit(timeout=30)
    took = time.monotonic() - start
    check(rc == 0, f"exit code {rc}")
    check(took < 6, f"the proxy took {took:.1f}s to stop")


@test
def sigterm_stops_a_session_waiting_for_a_slow_lookup():
    e = env()
    e.flush_memcached()
    e.stop_lookupd()
    e.start_lookupd(extra=("--latency-ms", "8000"))
    try:
        with Mail(lookup_timeout_ms=20000) as m:
            s = raw(m.imap)
            read_until(s, rb"\* OK .*\r\n")
            s.sendall(f'l LOGIN "{JOHN}" "{JOHN_PW}"\r\n'.encode())
            sigterm_within_the_drain(m)  # the lookup would answer after 8 s
            check(read_to_eof(s, timeout=5) == b"", "the stopped session got an answer")
    finally:
        e.stop_lookupd()
        e.start_lookupd()


@test
def sigterm_stops_sessions_waiting_for_a_silent_memcached():
    # The IP throttle asks memcached before the greeting; a memcached that never answers
    # must not hold a stop for its timeout (20 s here), parked plain client or TLS one.
    e = env()
    t = (f'\n[memcache]\nservers = ["127.0.0.1:{e.silent_port}"]\ntimeout_ms = 20000\n' +
         throttle(ip_max=100))
    with Mail(throttle=t, memcache=False) as m:
        plain = raw(m.imap)
        tls = ctx().wrap_socket(raw(m.imaps), server_hostname="localhost")
        sigterm_within_the_drain(m)
        check(read_to_eof(plain, timeout=5) == b"", "the plain client got an answer")
        check(read_to_eof(tls, timeout=5) == b"", "the TLS client got an answer")


@test
def no_password_in_any_log():
    # Runs last: every password the tests used must be absent from every log.
    e = env()
    texts = [e.dovecot_log()]
    for name in os.listdir(e.dir):
        p = os.path.join(e.dir, name)
        if os.path.isfile(p) and (name.endswith(".jsonl") or name.endswith(".out") or
                                  name.endswith(".requests")):
            with open(p, errors="replace") as f:
                texts.append(f.read())
    for d in harness.PROXY_DIRS:
        p = os.path.join(d, "ringproxy.log")
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                texts.append(f.read())
    check(len(texts) > 10, f"only {len(texts)} logs found")
    for pw in list(mail_env.USERS.values()) + ["Wr0ng-Pw-1", "nope"]:
        for t in texts[1:]:
            check(pw not in t, f"password {pw!r} found in a log")
    for t in texts[1:]:
        check(base64.b64encode(f"\0{JOHN}\0{JOHN_PW}".encode()).decode() not in t,
              "a PLAIN response found in a log")


if __name__ == "__main__":
    try:
        code = harness.run_all(sys.argv)
    finally:
        if ENV is not None:
            ENV.close()
    sys.exit(code)

#!/usr/bin/env python3
"""End-to-end tests of the TCP stream proxy: the real daemon, real sockets, real
signals. Run: RINGPROXY_BIN=build/release/tools/ringproxy tests/e2e/tcp_proxy_test.py"""
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, Proxy, Result, ThreadedServer, check, echo_handler,  # noqa: E402
                     free_port, hash_until_eof, port_closed, read_slowly, recv_all, refused_port,
                     reset_on_close, run_all, run_check, run_config, send_and_hash,
                     sender_then_eof, SynDropper, test, wait_port, wait_until)


def config(listen_port, servers, *, shards=2, idle_ms=600000, connect_ms=1000, drain_ms=30000,
           balance="round_robin", extra_listeners=""):
    # A server is a port, or (port, weight).
    server_list = ", ".join(f'"127.0.0.1:{p[0]} weight={p[1]}"' if isinstance(p, tuple)
                            else f'"127.0.0.1:{p}"' for p in servers)
    return f"""
[runtime]
shards = {shards}
drain_timeout_ms = {drain_ms}

[log]
level = "info"

[[upstream]]
name = "backend"
balance = "{balance}"
servers = [{server_list}]
connect_timeout_ms = {connect_ms}

[[listener]]
name = "tcp-main"
protocol = "tcp"
listen = "127.0.0.1:{listen_port}"
upstream = "backend"
idle_timeout_ms = {idle_ms}
{extra_listeners}
"""


def limited(text, sessions=1):
    """The config with each shard limited to `sessions` sessions; more wait in the backlog."""
    return text.replace("[runtime]\n", f"[runtime]\nmax_connections_per_shard = {sessions}\n")


def tcp_listener(name, port):
    """One more [[listener]] to the "backend" upstream, for config(extra_listeners=)."""
    return f"""
[[listener]]
name = "{name}"
protocol = "tcp"
listen = "127.0.0.1:{port}"
upstream = "backend"
"""


def check_echo(port, data):
    c = connect(port)
    check_echo_on(c, data)
    c.close()


def check_echo_on(c, data):
    c.sendall(data)
    check(c.recv(100) == data, f"echo of {data!r} through {c.getpeername()}")


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


@test
def free_port_never_hands_out_a_port_twice():
    # The kernel gives a just-closed port again within a few hundred draws;
    # a config with two of them is refused ("used by another listener").
    ports = [free_port() for _ in range(2000)]
    check(len(set(ports)) == len(ports), f"{len(ports) - len(set(ports))} ports handed out twice")


@test
def relays_256_mib_each_way_at_once_byte_exact():
    total = 256 << 20
    upstream_result = Result()

    def duplex(conn):
        upstream_result.set(send_and_hash(conn, total))

    with ThreadedServer(duplex) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            c = connect(port)
            client_sent, client_received = send_and_hash(c, total)
            c.close()
            up_sent, up_received = upstream_result.get()
            check(up_received == (client_sent, total),
                  f"client->upstream differs: {up_received} vs {client_sent}")
            check(client_received == (up_sent, total),
                  f"upstream->client differs: {client_received} vs {up_sent}")
            proxy.wait_log(rf"to_upstream={total} to_client={total} .*end=closed")


@test
def serves_1000_concurrent_connections():
    n = 1000
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            async def one(i, opened, go):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                opened.append(i)
                await go.wait()
                msg = f"conn {i} payload {'x' * (i % 97)}\n".encode()
                writer.write(msg)
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(len(msg)), 30)
                writer.close()
                await writer.wait_closed()
                return got == msg

            async def main():
                opened, go = [], asyncio.Event()
                tasks = [asyncio.create_task(one(i, opened, go)) for i in range(n)]
                for _ in range(600):
                    if len(opened) == n:
                        break
                    await asyncio.sleep(0.05)
                check(len(opened) == n, f"only {len(opened)} of {n} connected")
                go.set()  # all 1000 are open at once before any byte is sent
                return await asyncio.gather(*tasks)

            results = asyncio.run(main())
            check(all(results), f"{results.count(False)} connections got wrong bytes")
            proxy.wait_log(r"access tcp", count=n, timeout=30)


@test
def half_close_is_passed_on_both_ways():
    def answer_after_eof(conn):
        request = recv_all(conn)  # only returns once the client's FIN came through
        conn.sendall(b"got " + request)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)

    with ThreadedServer(answer_after_eof) as up:
        port = free_port()
        with Proxy(config(port, [up.port])):
            c = connect(port)
            c.sendall(b"question")
            c.shutdown(socket.SHUT_WR)
            reply = recv_all(c, timeout=10)
            check(reply == b"got question", f"reply {reply!r}")
            c.close()


@test
def urgent_data_neither_spins_nor_loses_what_follows():
    # splice(2) stops in front of TCP urgent data while poll keeps saying readable;
    # the relay must step over it as a receive does (the urgent byte is out of band).
    def count_after_eof(conn):
        request = recv_all(conn)
        conn.sendall(b"got %d" % len(request))
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)

    for mode in ("splice", "auto", "copy"):
        with ThreadedServer(count_after_eof) as up:
            port = free_port()
            text = config(port, [up.port], shards=1).replace(
                "idle_timeout_ms", f'relay = "{mode}"\nidle_timeout_ms')
            with Proxy(text) as p:
                c = connect(port)
                c.sendall(b"a" * (1 << 20))
                c.send(b"!", socket.MSG_OOB)
                c.sendall(b"b" * 1000)
                before = p.cpu_seconds()
                time.sleep(1)
                spent = p.cpu_seconds() - before
                c.shutdown(socket.SHUT_WR)
                reply = recv_all(c, timeout=10)
                check(reply == b"got %d" % ((1 << 20) + 1000), f"{mode}: reply {reply!r}")
                check(spent < 0.3, f"{mode}: {spent:.2f} s of CPU in a quiet second")
                c.close()


@test
def what_a_reset_upstream_sent_first_still_reaches_the_client():
    for relay in ("copy", "splice", "auto"):
        check_a_reset_upstreams_last_bytes_arrive(relay)


def check_a_reset_upstreams_last_bytes_arrive(relay):
    # The upstream sends its last answer and resets (as a server that closes with
    # unread input does) while the client is not reading. The client then sends, so
    # the relay's write to the upstream fails; what the upstream sent before its reset
    # is still delivered to the client, then the connection ends.
    import fcntl
    import termios
    payload = bytes(range(256)) * 512 + b"END"  # 128 KiB and a marker
    reset = threading.Event()
    flushed = []

    def send_then_reset(conn):
        conn.sendall(payload)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every byte acknowledged by the proxy
            if fcntl.ioctl(conn, termios.TIOCOUTQ, b"\0\0\0\0") == b"\0\0\0\0":
                flushed.append(True)
                break
            time.sleep(0.01)
        reset_on_close(conn)
        conn.close()
        reset.set()

    with ThreadedServer(send_then_reset) as up:
        port = free_port()
        text = config(port, [up.port]).replace('idle_timeout_ms =',
                                               f'send_buffer = 16384\nrelay = "{relay}"\nidle_timeout_ms =')
        with Proxy(text) as proxy:
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            c.connect(("127.0.0.1", port))
            check(reset.wait(15), "the upstream did not finish sending")
            check(flushed, f"{relay}: the proxy did not take the whole payload before the reset")
            time.sleep(0.2)
            c.sendall(b"x")  # to the reset upstream
            time.sleep(0.3)
            got = b""
            c.settimeout(10)
            try:
                while True:
                    d = c.recv(1 << 20)
                    if not d:
                        break
                    got += d
            except ConnectionResetError:
                pass
            c.close()
            check(got == payload, f"{relay}: the client got {len(got)} of {len(payload)} bytes")
            proxy.wait_log(r"access tcp .*end=upstream_error")


SLOW_READER_RUNTIME = "buffer_size = 65536\nbuffer_count = 256\n"


def slow_reader_config(port, up_port):
    # 64 KiB chunks and small socket buffers: most of a relayed chunk waits in the proxy
    # while the client reads it.
    text = config(port, [up_port]).replace("[runtime]\n", "[runtime]\n" + SLOW_READER_RUNTIME)
    return text.replace(
        'idle_timeout_ms =',
        'send_buffer = 4096\nsend_timeout_ms = 1000\nrelay = "copy"\nidle_timeout_ms =')


@test
def a_slow_but_steady_reader_is_not_cut_by_the_send_timeout():
    # send_timeout_ms ends a write that makes no progress (nginx's send_timeout), not
    # one that takes longer than that to deliver a chunk: a client that reads 1 KiB
    # every 50 ms takes about 3 s for the part of a 64 KiB chunk that its small socket
    # could not hold (a 1 s timeout), and must get everything.
    payload = bytes(range(256)) * 512  # 128 KiB
    with ThreadedServer(sender_then_eof(payload)) as up:
        port = free_port()
        with Proxy(slow_reader_config(port, up.port)) as proxy:
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect(("127.0.0.1", port))
            got = read_slowly(c, 1024, 0.05)
            c.close()
            check(got == payload, f"the client got {len(got)} of {len(payload)}")
            proxy.wait_log(r"access tcp .*end=closed")


@test
def refused_upstream_fails_over_to_the_next():
    dead = refused_port()
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        # Round-robin over [dead, live]: both shards will pick the dead one first at some point.
        with Proxy(config(port, [dead, up.port], connect_ms=1000)) as proxy:
            for i in range(6):
                c = connect(port)
                c.sendall(b"hello %d" % i)
                check(c.recv(100) == b"hello %d" % i, "echo through failover")
                c.close()
            proxy.wait_log(rf"upstream 127.0.0.1:{dead} \(backend\) connect failed: "
                           r"Connection refused; trying the next server")
            check(up.connections == 6, f"live upstream saw {up.connections} connections")


@test
def weighted_round_robin_and_least_conn_spread_connections():
    with ThreadedServer(echo_handler) as a, ThreadedServer(echo_handler) as b:
        port = free_port()
        with Proxy(config(port, [(a.port, 3), b.port], shards=1)):
            for i in range(8):
                c = connect(port)
                c.sendall(b"w%d" % i)
                check(c.recv(100) == b"w%d" % i, "echo")
                c.close()
            check((a.connections, b.connections) == (6, 2),
                  f"weights 3:1 gave {a.connections}:{b.connections}")
    with ThreadedServer(echo_handler) as a, ThreadedServer(echo_handler) as b:
        port = free_port()
        with Proxy(config(port, [a.port, (b.port, 2)], shards=1, balance="least_conn")):
            held = []
            for i in range(3):  # held open: the load per unit of weight decides
                c = connect(port)
                c.sendall(b"l%d" % i)
                check(c.recv(100) == b"l%d" % i, "echo")
                held.append(c)
            check((a.connections, b.connections) == (1, 2),
                  f"least_conn with weights 1:2 gave {a.connections}:{b.connections}")
            for c in held:
                c.close()
    # Equal weights, one connection held: each short one after it goes to the idle
    # server (round robin would alternate).
    with ThreadedServer(echo_handler) as a, ThreadedServer(echo_handler) as b:
        port = free_port()
        with Proxy(config(port, [a.port, b.port], shards=1, balance="least_conn")) as proxy:
            held = connect(port)
            held.sendall(b"h")
            check(held.recv(10) == b"h", "echo")
            for i in range(4):
                c = connect(port)
                c.sendall(b"s%d" % i)
                check(c.recv(100) == b"s%d" % i, "echo")
                c.close()
                proxy.wait_log(r"access tcp", count=i + 1)  # its lease is released
            check(sorted((a.connections, b.connections)) == [1, 4],
                  f"least_conn with one held gave {a.connections}:{b.connections}")
            held.close()


@test
def connect_timeout_fails_over_to_the_next():
    blackhole = SynDropper()
    bh_port = blackhole.port
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [bh_port, up.port], shards=1, connect_ms=200)) as proxy:
            start = time.monotonic()
            c = connect(port)
            c.sendall(b"ping")
            check(c.recv(10) == b"ping", "echo after connect timeout failover")
            elapsed = time.monotonic() - start
            c.close()
            check(0.15 < elapsed < 5, f"took {elapsed:.2f}s")
            proxy.wait_log(rf"upstream 127.0.0.1:{bh_port} \(backend\) connect failed: "
                           r"Connection timed out")
    blackhole.close()


@test
def all_upstreams_down_closes_the_client_promptly_and_logs():
    port = free_port()
    a, b = refused_port(), refused_port()
    with Proxy(config(port, [a, b])) as proxy:
        start = time.monotonic()
        c = connect(port)
        c.sendall(b"anyone?")
        try:
            data = recv_all(c, timeout=10)
        except ConnectionResetError:
            data = b""  # closed with our bytes unread: the kernel adds a reset
        elapsed = time.monotonic() - start
        c.close()
        check(data == b"", f"got {data!r}")
        check(elapsed < 3, f"client closed after {elapsed:.2f}s")
        proxy.wait_log(r"no upstream of 'backend' reachable \(2 tried, last error: "
                       r"Connection refused\); closing the client connection")
        # The session has its access line too, as every session does.
        proxy.wait_log(r"access tcp listener=tcp-main client=127\.0\.0\.1:\d+ upstream=- "
                       r"to_upstream=0 to_client=0 duration_ms=\d+ end=no_upstream\n")


@test
def idle_timeout_closes_idle_connections_but_not_busy_ones():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port], idle_ms=500)) as proxy:
            idle = connect(port)
            busy = connect(port)
            start = time.monotonic()
            # The busy one talks every 100 ms for 1.5 s: never idle for 500 ms.
            while time.monotonic() - start < 1.5:
                busy.sendall(b"tick")
                check(busy.recv(10) == b"tick", "busy connection echo")
                time.sleep(0.1)
            idle.settimeout(5)
            check(idle.recv(10) == b"", "idle connection should be closed by now")
            busy.sendall(b"still")
            check(busy.recv(10) == b"still", "busy connection survived")
            busy.close()
            idle.close()
            proxy.wait_log(r"end=idle_timeout")


@test
def sigterm_drains_an_active_transfer_to_completion():
    total = 48 << 20
    up_hash = Result()

    def slow_source(conn):
        # ~24 MB/s: the transfer takes about two seconds.
        import hashlib
        h = hashlib.sha256()
        for _ in range(total // (256 << 10)):
            block = os.urandom(256 << 10)
            h.update(block)
            conn.sendall(block)
            time.sleep(0.01)
        up_hash.set(h.hexdigest())
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)

    with ThreadedServer(slow_source) as up:
        port = free_port()
        with Proxy(config(port, [up.port], drain_ms=30000)) as proxy:
            c = connect(port)
            got = Result()
            t = threading.Thread(target=lambda: got.set(hash_until_eof(c, timeout=60)))
            t.start()
            # The session is relaying (upstream connected) before the drain starts.
            wait_until(lambda: up.connections == 1, what="upstream connection")
            proxy.signal(signal.SIGTERM)
            proxy.wait_log(r"SIGTERM: stopping accepts and draining")
            # The listener is closed at once: new connections are refused...
            wait_until(lambda: port_closed(port), timeout=5, what="listener closed during drain")
            # ...while the transfer in flight completes, byte-exact.
            t.join()
            c.close()
            check(got.get() == (up_hash.get(), total), "drained transfer differs")
            rc = proxy.wait_exit(timeout=30)
            check(rc == 0, f"exit code {rc}")
            log = proxy.log_text()
            check("drain deadline reached" not in log, "drain should not have needed the deadline")


@test
def a_reload_keeps_down_marks_and_least_conn_counts():
    # A log rotation's SIGHUP leaves the groups as they are: a server marked down stays
    # down, and sessions begun before still count for least_conn.
    dead = free_port()
    with ThreadedServer(echo_handler) as a, ThreadedServer(echo_handler) as b:
        port = free_port()
        text = config(port, [dead, a.port, b.port], shards=1, balance="least_conn").replace(
            "connect_timeout_ms", "max_fails = 1\nfail_timeout_ms = 60000\nconnect_timeout_ms")
        with Proxy(text) as proxy:
            held = connect(port)
            check_echo_on(held, b"first")
            proxy.wait_log(rf"upstream 127\.0\.0\.1:{dead} .*connect failed")
            first = "a" if a.connections == 1 else "b"
            check(a.connections + b.connections == 1, "one session upstream")
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done")
            c = connect(port)
            check_echo_on(c, b"second")
            check(a.connections == 1 and b.connections == 1,
                  f"the second session went to {first} again: a {a.connections}, "
                  f"b {b.connections}")
            failed = re.findall(rf"upstream 127\.0\.0\.1:{dead} .*connect failed",
                                proxy.log_text())
            check(len(failed) == 1, f"the dead server was tried again: {failed}")
            c.close()
            held.close()


@test
def a_reload_during_a_drain_opens_no_listener():
    # A shard that has finished its drain would never serve a new listener's socket:
    # the kernel would complete handshakes nobody answers until the process exits.
    with ThreadedServer(echo_handler) as up:
        port, added = free_port(), free_port()
        with Proxy(config(port, [up.port], drain_ms=20000)) as proxy:
            c = connect(port)
            check_echo_on(c, b"x")
            proxy.signal(signal.SIGTERM)
            proxy.wait_log(r"SIGTERM: stopping accepts and draining")
            time.sleep(1)  # the shard without sessions finishes
            proxy.write_config(config(port, [up.port], drain_ms=20000,
                                      extra_listeners=tcp_listener("added", added)))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done|SIGHUP while draining")
            check(port_closed(added), "a listener was opened during the drain")
            check_echo_on(c, b"still relayed")
            c.close()
            check(proxy.wait_exit(timeout=30) == 0, "exit code")


@test
def a_log_output_nobody_reads_does_not_hold_the_exit():
    # Standard error is a pipe whose reader stopped (a stuck supervisor): once it is
    # full the writer thread blocks; the shards drop lines, and SIGTERM still ends the
    # process soon after the drain instead of never.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        d = tempfile.mkdtemp(prefix="ringproxy-e2e-")
        path = os.path.join(d, "ringproxy.toml")
        with open(path, "w") as f:
            f.write(config(port, [up.port], shards=1, drain_ms=200).replace(
                'level = "info"', 'level = "debug"'))
        proc = subprocess.Popen([BIN, "--config", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            wait_until(lambda: not port_closed(port), what="the listener")
            # Far more lines than a pipe holds (64 KiB).
            for i in range(1500):
                c = connect(port)
                c.sendall(b"x")
                c.recv(1)
                c.close()
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"exit {rc} after {time.monotonic() - started:.1f} s")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
            shutil.rmtree(d, ignore_errors=True)


def check_drain_deadline_closes_what_is_left(level):
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        text = config(port, [up.port], drain_ms=300).replace('level = "info"', f'level = "{level}"')
        # Without info lines there is no "ready" line to wait for.
        ready = None if level == "info" else (lambda: wait_port(port))
        with Proxy(text, ready=ready) as proxy:
            c = connect(port)
            c.sendall(b"x")
            check(c.recv(1) == b"x", "echo")
            start = time.monotonic()
            proxy.signal(signal.SIGTERM)
            c.settimeout(10)
            check(c.recv(1) == b"", "connection closed at the drain deadline")
            rc = proxy.wait_exit(timeout=10)
            elapsed = time.monotonic() - start
            check(rc == 0, f"exit code {rc}")
            check(elapsed < 5, f"drain took {elapsed:.2f}s with a 300 ms deadline")
            if level == "info":
                proxy.wait_log(r"drain deadline reached: closing 1 sessions")
            c.close()


@test
def drain_deadline_closes_what_is_left():
    check_drain_deadline_closes_what_is_left("info")


@test
def sigterm_drains_with_info_lines_off():
    # The drain must not depend on the log level (a drain call once sat inside an
    # info-level log statement, whose arguments are skipped when info is off).
    check_drain_deadline_closes_what_is_left("error")


@test
def second_sigterm_stops_at_once():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port], drain_ms=60000)) as proxy:
            c = connect(port)
            c.sendall(b"x")
            check(c.recv(1) == b"x", "echo")
            proxy.signal(signal.SIGTERM)
            proxy.wait_log(r"SIGTERM: stopping")
            proxy.signal(signal.SIGINT)
            rc = proxy.wait_exit(timeout=10)
            check(rc == 0, f"exit code {rc}")
            c.settimeout(5)
            check(c.recv(1) == b"", "session closed")
            c.close()


@test
def sighup_with_a_broken_file_keeps_serving_and_a_good_one_applies():
    with ThreadedServer(echo_handler) as up:
        port, port2 = free_port(), free_port()
        with Proxy(config(port, [up.port])) as proxy:
            held = connect(port)  # a session from the first generation
            held.sendall(b"gen1")
            check(held.recv(10) == b"gen1", "echo")
            proxy.write_config("[[listener]]\nname = \"broken\nprotocol = 7\n")
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, keeping the running configuration")
            check("ringproxy.toml:2:15: TOML syntax error" in proxy.log_text(),
                  "the error names file, line and column")
            c = connect(port)
            c.sendall(b"still here")
            check(c.recv(100) == b"still here", "serving after a bad reload")
            c.close()
            # A valid file that adds a listener.
            second = tcp_listener("tcp-second", port2)
            proxy.write_config(config(port, [up.port], extra_listeners=second))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 2 listeners")
            wait_port(port2)
            c = connect(port2)
            c.sendall(b"new listener")
            check(c.recv(100) == b"new listener", "second listener relays")
            c.close()
            # Removing it closes its port; the held session lives on.
            proxy.write_config(config(port, [up.port]))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 1 listeners")
            wait_until(lambda: port_closed(port2), timeout=5, what="removed listener closed")
            held.sendall(b"gen1 again")
            check(held.recv(100) == b"gen1 again", "old session survives reloads")
            held.close()


@test
def a_tunnel_of_a_removed_listener_ends_at_the_drain_deadline():
    # As at SIGTERM: a reload that removes a listener gives its sessions
    # runtime.drain_timeout_ms, then closes them, also the one its backlog held; a kept
    # listener's session lives on.
    with ThreadedServer(echo_handler) as up:
        port, port2 = free_port(), free_port()
        second = tcp_listener("tcp-second", port2)
        # One shard of two sessions: a third connection waits in the backlog.
        with Proxy(limited(config(port, [up.port], shards=1, drain_ms=1500,
                                  extra_listeners=second), 2)) as proxy:
            kept = connect(port)
            check_echo_on(kept, b"kept")
            doomed = connect(port2)
            check_echo_on(doomed, b"doomed")
            queued = connect(port2)
            queued.sendall(b"queued")
            time.sleep(0.3)
            proxy.write_config(limited(config(port, [up.port], shards=1, drain_ms=1500), 2))
            start = time.monotonic()
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 1 listeners")
            check(queued.recv(100) == b"queued", "the backlog's connection was served")
            check_echo_on(doomed, b"still within the deadline")
            for c in (doomed, queued):
                c.settimeout(10)
                check(c.recv(100) == b"", "a tunnel of the removed listener was left open")
            elapsed = time.monotonic() - start
            check(1.0 < elapsed < 6, f"closed {elapsed:.2f}s after the reload (deadline 1.5 s)")
            proxy.wait_log(r"listener tcp-second removed: drain deadline reached: closing 2 sessions")
            check_echo_on(kept, b"kept after the deadline")
            kept.close()
            doomed.close()
            queued.close()
            check(proxy.stop() == 0, "clean exit")


@test
def a_removed_listeners_backlog_is_held_to_the_deadline_even_when_it_has_passed():
    # With drain_timeout_ms = 0 the deadline has passed before the removed listener's
    # accept loop serves its backlog: those sessions are stopped too, not left to run
    # until their idle timeout.
    with ThreadedServer(echo_handler) as up:
        port, port2 = free_port(), free_port()
        second = tcp_listener("tcp-second", port2)
        with Proxy(limited(config(port, [up.port], shards=1, drain_ms=0,
                                  extra_listeners=second))) as proxy:
            doomed = connect(port2)
            check_echo_on(doomed, b"doomed")
            queued = connect(port2)
            queued.sendall(b"queued")
            time.sleep(0.3)
            proxy.write_config(limited(config(port, [up.port], shards=1, drain_ms=0)))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 1 listeners")
            for c in (doomed, queued):
                c.settimeout(10)
                try:
                    while c.recv(100):
                        pass
                except socket.timeout:
                    check(False, "a session of the removed listener was left open")
                except OSError:
                    pass
            doomed.close()
            queued.close()


@test
def the_connection_limit_counts_every_listeners_sessions():
    # runtime.max_connections_per_shard is per shard, not per listener: with one slot, a
    # client of a second listener waits in the backlog while the first one is served
    # (that listener's accept was armed before the slot was taken).
    with ThreadedServer(echo_handler) as up:
        port, port2 = free_port(), free_port()
        second = tcp_listener("tcp-second", port2)
        with Proxy(limited(config(port, [up.port], shards=1, extra_listeners=second))):
            first = connect(port)
            check_echo_on(first, b"first")
            waiting = connect(port2)
            waiting.sendall(b"waiting")
            waiting.settimeout(0.5)
            try:
                got = waiting.recv(100)
            except socket.timeout:
                got = None
            check(got is None, f"the second listener served past the limit: {got!r}")
            first.close()
            waiting.settimeout(10)
            check(waiting.recv(100) == b"waiting", "not served once the slot was free")
            waiting.close()


@test
def a_reload_that_cannot_bind_changes_nothing():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy_port = taken.getsockname()[1]
        with Proxy(config(port, [up.port])) as proxy:
            second = tcp_listener("clash", busy_port)
            proxy.write_config(config(port, [up.port], extra_listeners=second))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, keeping the running configuration: listener clash: "
                           r"cannot bind")
            check_echo(port, b"ok")
        taken.close()


@test
def an_empty_config_file_on_reload_keeps_the_listeners():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            proxy.write_config("")  # as a tool that truncates before it writes leaves it
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, keeping the running configuration: .*"
                           r"no \[\[listener\]\]")
            check_echo(port, b"still")
    rc, out, _ = run_check("")
    check(rc == 1 and "no [[listener]]" in out, f"--check on an empty file: {rc} {out}")


@test
def a_reload_refuses_cpus_the_process_cannot_use():
    # What a start refuses, a reload refuses too: else the next restart fails to come up.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            bad = config(port, [up.port]).replace("[runtime]\n", "[runtime]\ncpus = [0, 4095]\n")
            proxy.write_config(bad)
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, keeping the running configuration: .*"
                           r"runtime\.cpus: CPU 4095 is not available")
            check_echo(port, b"still")
        rc, out, _ = run_check(bad)
        check(rc == 1 and "CPU 4095 is not available" in out, f"--check: {rc} {out}")


@test
def the_shipped_config_and_routes_pass_their_checks():
    # tools/run starts the appliance from these files: a parser change that refuses them
    # must fail here, not on an operator's first run.
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    subprocess.run([os.path.join(root, "tools/lib/demo_pki.sh")], cwd=root, check=True,
                   capture_output=True, timeout=60)
    r = subprocess.run([os.path.abspath(BIN), "--config", "deploy/ringproxy.toml", "--check"],
                       cwd=root, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "ok (" in r.stdout + r.stderr, r.stdout + r.stderr)
    lookupd = os.path.abspath(os.environ.get("LOOKUPD_BIN", "build/release/tools/lookupd"))
    r = subprocess.run([lookupd, "--routes", "deploy/routes.toml", "--check"], cwd=root,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, r.stdout + r.stderr)


def listen_backlogs(port):
    """The backlog of each listening socket on `port` (ss: Send-Q of a LISTEN socket)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10).stdout
    return sorted(int(line.split()[2]) for line in out.splitlines() if line.strip())


@test
def a_reload_applies_a_new_backlog_to_a_kept_listener():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        base = config(port, [up.port])
        with_backlog = lambda n: base.replace("idle_timeout_ms = 600000\n",
                                              f"idle_timeout_ms = 600000\nbacklog = {n}\n")
        with Proxy(with_backlog(100)) as proxy:
            check(listen_backlogs(port) == [100, 100], f"at start: {listen_backlogs(port)}")
            proxy.write_config(with_backlog(200))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 1 listeners")
            wait_until(lambda: listen_backlogs(port) == [200, 200], timeout=5,
                       what=f"backlog 200 on both shards' sockets, not {listen_backlogs(port)}")


@test
def a_failed_reload_still_reopens_the_log_file():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        logs = tempfile.mkdtemp(prefix="ringproxy-logs-")
        log_path = os.path.join(logs, "rp.log")
        text = config(port, [up.port]).replace('[log]\nlevel = "info"\n',
                                               f'[log]\nlevel = "info"\nfile = "{log_path}"\n')
        with Proxy(text, ready=lambda: wait_port(port)) as proxy:
            wait_until(lambda: os.path.exists(log_path), timeout=5, what="log file")
            os.rename(log_path, log_path + ".1")  # rotation
            proxy.write_config("[runtime]\nshardz = 1\n")
            proxy.signal(signal.SIGHUP)

            def reopened():
                if not os.path.exists(log_path):
                    return False
                with open(log_path) as f:
                    return "reload failed" in f.read()
            wait_until(reopened, timeout=5, what="the failure logged in a new rp.log")


@test
def a_reload_whose_log_file_cannot_open_applies_nothing():
    with ThreadedServer(echo_handler) as up:
        port, port2 = free_port(), free_port()
        with Proxy(config(port, [up.port])) as proxy:
            second = tcp_listener("tcp-second", port2)
            text = config(port, [up.port], extra_listeners=second).replace(
                '[log]\nlevel = "info"\n', '[log]\nlevel = "info"\nfile = "/nonexistent/x.log"\n')
            proxy.write_config(text)
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, keeping the running configuration: log.file: "
                           r"cannot open log file /nonexistent/x.log")
            check(port_closed(port2), "the new config's listener was not opened")


@test
def a_reload_refused_after_its_log_file_opened_leaves_the_logs_as_they_were():
    # The new config's log file and level are taken only once the reload is applied:
    # a bind error refuses this one after its log file could be opened.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    d = tempfile.mkdtemp(prefix="ringproxy-logs-")
    new_log = os.path.join(d, "new.log")
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            second = tcp_listener("tcp-second", taken.getsockname()[1])
            text = config(port, [up.port], extra_listeners=second).replace(
                '[log]\nlevel = "info"\n', f'[log]\nlevel = "error"\nfile = "{new_log}"\n')
            proxy.write_config(text)
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, .*tcp-second: cannot bind")
            check(not os.path.exists(new_log), "the refused config's log file was left")
            # Still the running file, and level (info): the stop's info line is there.
            proxy.signal(signal.SIGUSR1)
            proxy.wait_log(r"info .*stats ")
            check_echo(port, b"still")
            proxy.stop()
            check(re.search(r"info .*SIGTERM: stopping accepts", proxy.log_text()),
                  "the running level was not kept")
    taken.close()
    shutil.rmtree(d, ignore_errors=True)


@test
def idle_process_uses_no_cpu():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            conns = []
            for i in range(100):
                c = connect(port)
                c.sendall(b"x")
                check(c.recv(1) == b"x", "echo")
                conns.append(c)
            time.sleep(0.5)
            before = proxy.cpu_seconds()
            time.sleep(3)
            used = proxy.cpu_seconds() - before
            for c in conns:
                c.close()
            # A busy loop would burn ~3 s; a few timer wakeups cost nothing measurable.
            check(used <= 0.03, f"idle proxy used {used:.3f}s CPU in 3s")


@test
def sigusr1_logs_counters():
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, [up.port])) as proxy:
            c = connect(port)
            c.sendall(b"12345")
            check(c.recv(10) == b"12345", "echo")
            c.close()
            proxy.wait_log(r"access tcp")
            proxy.signal(signal.SIGUSR1)
            proxy.wait_log(r"stats connections_active=0 connections_accepted=1 .*"
                           r"bytes_to_upstream=5 bytes_to_downstream=5")
        # Asked for by a signal: written at any log level.
        quiet = config(port, [up.port]).replace('[log]\nlevel = "info"\n',
                                                '[log]\nlevel = "warn"\n')
        check('level = "warn"' in quiet, "the config has a [log] level to change")
        with Proxy(quiet, ready=lambda: wait_until(lambda: not port_closed(port),
                                                   what="the listener")) as proxy:
            proxy.signal(signal.SIGUSR1)
            proxy.wait_log(r"stats connections_active=\d+ ")
            # So is the run's last word, at exit.
            proxy.signal(signal.SIGTERM)
            check(proxy.wait_exit() == 0, "exit status")
            check(re.search(r"stopped; stats connections_active=0 ", proxy.log_text()),
                  proxy.log_text()[-2000:])


@test
def check_flag_validates_config():
    rc, out, path = run_check(config(free_port(), [free_port()]))
    check(rc == 0 and "ok (1 listeners, 1 upstream groups" in out, f"{rc} {out}")
    rc, out, path = run_check("[runtime]\nshards = -1\n")
    check(rc == 1, f"exit {rc}")
    check(f"{path}:2: runtime.shards: expected an integer in 0..1024, got -1" in out, out)
    # A bad server list is one error: the section's other keys are still known.
    for table in ("lookup", "memcache"):
        rc, out, path = run_check(f'[{table}]\nservers = "127.0.0.1:1"\ntimeout_ms = 5\n')
        lines = [line for line in out.splitlines() if line.strip()]
        check(rc == 1 and len(lines) == 1 and
              f"{path}:2: {table}.servers: expected an array of strings" in lines[0], out)


@test
def check_creates_no_file_and_names_one_it_could_not_open():
    d = tempfile.mkdtemp(prefix="ringproxy-check-")
    files = {k: os.path.join(d, k) for k in ("proxy.log", "access.log", "audit.log")}

    def text(log, access, audit):
        return config(free_port(), [free_port()]).replace(
            '[log]\nlevel = "info"\n',
            f'[log]\nlevel = "info"\nfile = "{log}"\naccess_file = "{access}"\n') + f"""
[lookup]
servers = ["127.0.0.1:{free_port()}"]

[audit]
path = "{audit}"

[[listener]]
name = "imap"
protocol = "imap"
listen = "127.0.0.1:{free_port()}"
"""
    rc, out, _ = run_check(text(files["proxy.log"], files["access.log"], files["audit.log"]))
    check(rc == 0 and "ok (2 listeners" in out, f"{rc} {out}")
    check(sorted(os.listdir(d)) == [], f"--check created {os.listdir(d)}")
    # Files it could not open are errors at their keys, still without creating any.
    missing = os.path.join(d, "no-such-dir", "x.log")
    rc, out, path = run_check(text(missing, d, missing))
    check(rc == 1, f"exit {rc}: {out}")
    for key, why in (("log.file", "No such file or directory"), ("log.access_file", "Is a directory"),
                     ("audit.path", "No such file or directory")):
        check(re.search(rf"{re.escape(path)}:\d+: {re.escape(key)}: cannot open '.*': {why}", out),
              f"{key}: {out}")
    check(sorted(os.listdir(d)) == [], f"--check created {os.listdir(d)}")
    # An empty audit path is refused by the check, as the start would refuse it.
    rc, out, path = run_check(text(files["proxy.log"], files["access.log"], ""))
    check(rc == 1 and re.search(rf"{re.escape(path)}:\d+: audit\.path: ", out), f"{rc} {out}")


@test
def bad_start_is_a_clear_error():
    # Port already taken by someone else (without SO_REUSEPORT).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        rc, out, _ = run_config(config(taken.getsockname()[1], [free_port()]))
    check(rc == 1, f"exit {rc}")
    check("cannot start: listener tcp-main: cannot bind" in out, out)


@test
def a_second_instance_on_the_same_address_fails_to_start():
    # SO_REUSEPORT would let it bind and take half of the connections.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        text = config(port, [up.port])
        with Proxy(text):
            rc, out, _ = run_config(text)
            check(rc == 1, f"exit {rc}")
            check("cannot start: listener tcp-main: cannot bind" in out and "in use" in out, out)
            check_echo(port, b"first")


@test
def listeners_of_one_port_on_two_addresses_start_and_reload():
    # This process's own sockets on a port are no other owner: 127.0.0.1:P beside
    # 0.0.0.0:P (as 0.0.0.0:993 beside [::]:993), at start and added by a reload.
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        wildcard = tcp_listener("tcp-any", port).replace("127.0.0.1", "0.0.0.0")
        with Proxy(config(port, [up.port], extra_listeners=wildcard)) as proxy:
            check_echo(port, b"both")
            proxy.write_config(config(port, [up.port]))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 1 listeners")
            proxy.write_config(config(port, [up.port], extra_listeners=wildcard))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload done: 2 listeners")
            check_echo(port, b"again")


@test
def a_reload_does_not_join_another_process_on_a_new_address_of_its_port():
    # SO_REUSEPORT would let this process bind 127.0.0.2:P beside another process's
    # socket there (same user): the two would split its connections.
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        other.bind(("127.0.0.2", port))
        other.listen(16)
        with Proxy(config(port, [up.port])) as proxy:
            second = tcp_listener("tcp-second", port).replace("127.0.0.1", "127.0.0.2")
            proxy.write_config(config(port, [up.port], extra_listeners=second))
            proxy.signal(signal.SIGHUP)
            proxy.wait_log(r"reload failed, .*tcp-second: cannot bind 127\.0\.0\.2:\d+")
            check_echo(port, b"still")
    other.close()


@test
def version_reports_libraries_and_assembly():
    r = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, r.stderr)
    for needle in ("liburing", "abseil", "fmt", "toml++", "wolfSSL",
                   "assembly: AES-NI yes", "SP x86_64 asm yes", "io_uring:"):
        check(needle in r.stdout, f"--version lacks {needle!r}:\n{r.stdout}")



class TrickleServer:
    """An upstream that sends 1 KiB every 10 ms on every connection, from one thread,
    and never reads: with clients that never read, the proxy's sends stall."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        chunk = b"t" * 1024
        while not self._stop.is_set():
            while True:
                try:
                    c, _ = self.sock.accept()
                except (BlockingIOError, OSError):
                    break
                c.setblocking(False)
                self.conns.append(c)
            for c in self.conns:
                try:
                    c.send(chunk)
                except OSError:
                    pass
            time.sleep(0.01)

    def close(self):
        self._stop.set()
        self._thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_stalled_clients(port, n):
    """n clients with tiny receive buffers that never read."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def stalled_config(stalled_port, trickle_port, active_port, echo_port, *, drain_ms=30000):
    """One shard, default buffers, copy relays: a stalled listener and an active one."""
    return f"""
[runtime]
shards = 1
drain_timeout_ms = {drain_ms}

[log]
level = "info"
access = false

[[upstream]]
name = "trickle"
servers = ["127.0.0.1:{trickle_port}"]

[[upstream]]
name = "echo"
servers = ["127.0.0.1:{echo_port}"]

[[listener]]
name = "stalled"
protocol = "tcp"
listen = "127.0.0.1:{stalled_port}"
upstream = "trickle"
relay = "copy"
send_buffer = 16384  # the kernel's queue toward a stalled client fills within a second

[[listener]]
name = "active"
protocol = "tcp"
listen = "127.0.0.1:{active_port}"
upstream = "echo"
relay = "copy"
"""


@test
def stalled_readers_do_not_starve_a_shard():
    # 400 copy relays whose clients never read while their upstreams trickle must not
    # take the shard's receive buffers from 100 others that each relay 4 MiB.
    with TrickleServer() as trickle, ThreadedServer(echo_handler) as echo:
        stalled_port, active_port = free_port(), free_port()
        with Proxy(stalled_config(stalled_port, trickle.port, active_port, echo.port)):
            stalled = open_stalled_clients(stalled_port, 400)
            wait_until(lambda: len(trickle.conns) == 400, what="400 upstream connections")
            time.sleep(3)  # long enough for every stalled client's window to close
            total = 4 << 20
            results = [Result() for _ in range(100)]

            def active(i):
                try:
                    c = connect(active_port, timeout=60)
                    sent, (received, n) = send_and_hash(c, total, timeout=60)
                    c.close()
                    results[i].set(sent == received and n == total)
                except Exception as e:  # noqa: BLE001 - reported through the result
                    results[i].set(repr(e))
            threads = [threading.Thread(target=active, args=(i,)) for i in range(100)]
            start = time.monotonic()
            for t in threads:
                t.start()
            outcomes = [r.get(timeout=120) for r in results]
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
            bad = [o for o in outcomes if o is not True]
            check(not bad, f"{len(bad)} of 100 active relays failed: {bad[:3]}")
            print(f"      100 x 4 MiB echoed past 400 stalled relays in {elapsed:.1f}s")
            for s in stalled:
                s.close()


@test
def sigterm_with_stalled_relays_exits_within_the_drain_time():
    with TrickleServer() as trickle, ThreadedServer(echo_handler) as echo:
        stalled_port, active_port = free_port(), free_port()
        text = stalled_config(stalled_port, trickle.port, active_port, echo.port, drain_ms=3000)
        with Proxy(text) as proxy:
            stalled = open_stalled_clients(stalled_port, 400)
            wait_until(lambda: len(trickle.conns) == 400, what="400 upstream connections")
            time.sleep(3)
            # Clients that send and then fall silent: their relays wait for receive
            # buffers (or, once fixed, simply for their peers) when the drain ends.
            waiting = []
            for _ in range(20):
                c = connect(active_port)
                c.sendall(b"w" * 65536)
                waiting.append(c)
            time.sleep(0.5)
            start = time.monotonic()
            proxy.signal(signal.SIGTERM)
            try:
                rc = proxy.wait_exit(timeout=15)
            except subprocess.TimeoutExpired:
                rc = None
            elapsed = time.monotonic() - start
            for s in stalled + waiting:
                s.close()
            check(rc == 0, f"not exited 15 s after SIGTERM with a 3 s drain (rc {rc})")
            check(elapsed < 3 + 2, f"exit took {elapsed:.1f}s with a 3 s drain deadline")
            proxy.wait_log(r"drain deadline reached: closing 420 sessions")

if __name__ == "__main__":
    check(os.path.exists(BIN), f"no binary at {BIN} (set RINGPROXY_BIN)")
    sys.exit(run_all(sys.argv))

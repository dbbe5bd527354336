"""End-to-end test harness: runs the real ringproxy binary against real peers on
loopback, with every process started by PID and stopped by PID.

Tests are plain functions registered with @test; run_all() prints one line per test
and a closing "N passed, N failed" summary, and returns the exit code.
"""
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BIN = os.environ.get("RINGPROXY_BIN", "build/release/tools/ringproxy")
_TESTS = []
_LAST_PROXY = [None]  # for the log tail of a failed test
PROXY_DIRS = []  # every proxy's directory (config and log), for tests that read all logs
_FAILED = [1]  # until run_all ends: a run cut short keeps its files too

# Every temporary directory of this run (tempfile's) lies under one, removed at exit when
# every test passed and kept, with its name printed, for a failure to be read.
RUN_DIR = tempfile.mkdtemp(prefix="ringproxy-e2e-run-")
os.chmod(RUN_DIR, 0o711)  # Dovecot's unprivileged processes reach their files through it
tempfile.tempdir = RUN_DIR


@atexit.register
def _remove_run_dir():
    if _FAILED[0]:
        print(f"temporary files kept in {RUN_DIR}", flush=True)
    else:
        shutil.rmtree(RUN_DIR, ignore_errors=True)


def test(fn):
    _TESTS.append(fn)
    return fn


def run_all(argv):
    only = set(argv[1:])
    passed = failed = 0
    for fn in _TESTS:
        if only and fn.__name__ not in only:
            continue
        start = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok    {fn.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
        except Exception:  # noqa: BLE001 - a failed test is reported, not raised
            failed += 1
            print(f"FAIL  {fn.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
            traceback.print_exc()
            if _LAST_PROXY[0] is not None:
                print("--- ringproxy log (tail) ---")
                print(_LAST_PROXY[0].log_text()[-4000:])
            sys.stdout.flush()
        _LAST_PROXY[0] = None
    print(f"{passed} passed, {failed} failed", flush=True)
    _FAILED[0] = failed
    return 0 if failed == 0 else 1


def check(cond, message):
    if not cond:
        raise AssertionError(message)


_handed_out = set()


def free_port():
    """A port nothing listens on, never one this process handed out before:
    the kernel may give a just-closed port again, and two listeners of one
    config on one port is a config error."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def refused_port():
    """A port where nothing listens (bound then closed)."""
    return free_port()


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"port {port} did not open in {timeout}s")


def wait_until(cond, timeout=10.0, what="condition"):
    """Polls `cond` until it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout * float(os.environ.get("E2E_TIMEOUT_SCALE", "1"))
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.02)


class SynDropper:
    """A loopback listener whose accept queue is full, so the kernel drops SYNs to it:
    a connect there waits until its own timeout."""

    def __init__(self, fillers=4):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self._fillers = []
        for _ in range(fillers):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(f)
        time.sleep(0.1)  # the fillers' handshakes fill the queue

    def close(self):
        for s in self._fillers + [self.sock]:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def port_closed(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return True


def stop_process(proc, timeout=15):
    """SIGTERM by PID, then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Proxy:
    """The ringproxy daemon under test, started with a config text."""

    def __init__(self, config_text, extra_args=(), ready=None, env=None):
        """`ready` replaces waiting for the "ready" log line (for configs that log less);
        `env`: the process's environment (default: this one's)."""
        self.dir = tempfile.mkdtemp(prefix="ringproxy-e2e-")
        self.config_path = os.path.join(self.dir, "ringproxy.toml")
        self.log_path = os.path.join(self.dir, "ringproxy.log")
        PROXY_DIRS.append(self.dir)
        self.write_config(config_text)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "--config", self.config_path, *extra_args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        _LAST_PROXY[0] = self
        try:
            # "ready" is logged once every listener is bound; probing the port with a
            # connection would itself become a session and skew counters.
            if ready is None:
                self.wait_log(r"ready: \d+ listeners")
            else:
                ready()
        except Exception:
            self.stop()
            raise

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10.0, count=1):
        timeout *= float(os.environ.get("E2E_TIMEOUT_SCALE", "1"))
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if len(rx.findall(self.log_text())) >= count:
                return
            if self.proc.poll() is not None and len(rx.findall(self.log_text())) < count:
                raise AssertionError(f"ringproxy exited ({self.proc.returncode}) before log "
                                     f"matched {pattern!r}:\n{self.log_text()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"log did not match {pattern!r} in {timeout}s:\n"
                             f"{self.log_text()[-3000:]}")

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout=30.0):
        return self.proc.wait(timeout=timeout)

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self):
        stop_process(self.proc)
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        running = self.proc.poll() is None
        rc = self.stop()
        if exc_type is not None:
            return
        # A sanitizer build reports leaks and errors only as the process ends.
        report = SANITIZER_REPORT.search(self.log_text())
        check(report is None, f"sanitizer report from ringproxy:\n{self.log_text()[-4000:]}")
        if running:
            check(rc == 0, f"ringproxy exited with {rc} after SIGTERM:\n{self.log_text()[-3000:]}")


SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ")


def run_config(config_text, *args, env=None):
    """ringproxy on a config text to completion: (exit code, output, config path)."""
    d = tempfile.mkdtemp(prefix="ringproxy-config-")
    path = os.path.join(d, "c.toml")
    with open(path, "w") as f:
        f.write(config_text)
    r = subprocess.run([BIN, "--config", path, *args], capture_output=True, text=True,
                       timeout=30, env=env)
    return r.returncode, r.stdout + r.stderr, path


def hosts_env(hosts_lines):
    """An environment in which host names resolve by `hosts_lines` (an /etc/hosts text)
    alone, through nss_wrapper (Debian's libnss-wrapper): names with an IPv6 and an
    IPv4 address without touching the machine's own /etc/hosts."""
    d = tempfile.mkdtemp(prefix="ringproxy-hosts-")
    path = os.path.join(d, "hosts")
    with open(path, "w") as f:
        f.write(hosts_lines)
    env = dict(os.environ)
    env["LD_PRELOAD"] = "libnss_wrapper.so"
    env["NSS_WRAPPER_HOSTS"] = path
    env["NSS_WRAPPER_PASSWD"] = "/etc/passwd"
    env["NSS_WRAPPER_GROUP"] = "/etc/group"
    # A sanitizer build must otherwise be the first library loaded.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    return env


def run_check(config_text):
    """ringproxy --check on a config text: (exit code, output, config path)."""
    return run_config(config_text, "--check")


class ThreadedServer:
    """A loopback TCP server running handler(conn) in a thread per connection."""

    def __init__(self, handler, backlog=1024):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.errors = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.handler(conn)
        except Exception as e:  # noqa: BLE001 - recorded for the test to check
            self.errors.append(repr(e))
        finally:
            conn.close()

    def close(self):
        self._closing = True
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def reset_on_close(sock):
    """SO_LINGER 0: close() sends a reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def trickle(conn, first, piece, times, every):
    """Sends `first`, then `piece` every `every` s, `times` times: a peer that makes
    progress too slowly. Stops quietly once the other side has gone."""
    try:
        conn.sendall(first)
        for _ in range(times):
            time.sleep(every)
            conn.sendall(piece)
    except OSError:
        pass


def read_head(conn):
    """Bytes up to and including the first blank line (CRLF CRLF), or b"" at EOF first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


def echo_handler(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def sender_then_eof(payload):
    """A ThreadedServer handler: sends `payload`, ends its side, reads until EOF."""
    def handler(conn):
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass
    return handler


def read_slowly(sock, step, pause, timeout=30):
    """Reads `step` bytes every `pause` seconds until EOF or an error: a slow but steady
    client (plain or TLS socket)."""
    got = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(5)
    while time.monotonic() < deadline:
        try:
            d = sock.recv(step)
        except OSError:
            break
        if not d:
            break
        got += d
        time.sleep(pause)
    return got


def recv_all(sock, timeout=30.0):
    sock.settimeout(timeout)
    chunks = []
    while True:
        d = sock.recv(1 << 20)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


def send_random(sock, total, chunk=1 << 20):
    """Sends `total` random bytes; returns their sha256."""
    h = hashlib.sha256()
    sent = 0
    while sent < total:
        block = os.urandom(min(chunk, total - sent))
        h.update(block)
        sock.sendall(block)
        sent += len(block)
    return h.hexdigest()


def hash_until_eof(sock, timeout=60.0):
    """Reads to EOF; returns (sha256, byte count)."""
    sock.settimeout(timeout)
    h = hashlib.sha256()
    n = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        k = sock.recv_into(buf)
        if k == 0:
            return h.hexdigest(), n
        h.update(view[:k])
        n += k


def send_and_hash(sock, total, timeout=120.0):
    """Sends `total` random bytes (then shuts down writing) while reading to EOF, at
    the same time; returns (sha256 sent, (sha256 received, byte count))."""
    sent = Result()

    def sender():
        sent.set(send_random(sock, total))
        sock.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=sender)
    t.start()
    received = hash_until_eof(sock, timeout=timeout)
    t.join()
    return sent.get(), received


class Result:
    """A value set by another thread."""

    def __init__(self):
        self.value = None
        self.done = threading.Event()

    def set(self, v):
        self.value = v
        self.done.set()

    def get(self, timeout=120.0):
        check(self.done.wait(timeout), "timed out waiting for a peer thread")
        return self.value

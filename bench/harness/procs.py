"""Processes started pinned, recorded by PID and stopped by PID; port checks that open
no connection (a probe connection would itself be a session of the target)."""
import os
import signal
import subprocess
import sys
import time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def listening(port):
    """True if something listens on port (from /proc/net/tcp*, no connection)."""
    want = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except FileNotFoundError:
            pass
    return False


def wait_listening(port, proc=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
            return
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.p.returncode}) before listening on "
                               f"{port}; see {proc.log_path}")
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def render(template, out, values):
    with open(template) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    with open(out, "w") as f:
        f.write(text)


class Proc:
    """One process, pinned with taskset (which execs, so the PID is the program's)."""

    def __init__(self, name, cmd, cpus, run_dir, env=None):
        self.name = name
        self.log_path = os.path.join(run_dir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        full = ["taskset", "-c", cpus, *cmd] if cpus else list(cmd)
        self.p = subprocess.Popen(full, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()

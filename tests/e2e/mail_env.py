"""What the mail end-to-end tests share: a real Dovecot (project-local config,
passwd-file users, maildir with seeded messages, plain and TLS ports), a real memcached
and tools/lookupd, each started by PID and stopped by PID, and the proxy config."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import harness
import tls_env

LOOKUPD = os.environ.get("LOOKUPD_BIN", "build/release/tools/lookupd")
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"

# Users of the test Dovecot: canonical account -> password. Aliases live in lookupd.
USERS = {
    "john@example.com": "John-Pa55word!",
    "alice@example.com": "alice secret \"quoted\"",
    "bob@example.com": "b0b-pass",
    "host@example.com": "h0st-pass",
}
SEEDED = 5  # messages in john's INBOX


def message(i):
    """The bytes of seeded message i (CRLF line ends, as IMAP sends them)."""
    body = "".join(f"line {j} of message {i}: {'x' * (j % 60)}\r\n" for j in range(40 + i * 50))
    return (f"From: sender{i}@example.org\r\nTo: john@example.com\r\n"
            f"Subject: seeded message {i}\r\nMessage-ID: <seed{i}@example.org>\r\n"
            f"Date: Wed, 02 Dec 2026 10:00:0{i} +0000\r\n\r\n{body}").encode()


class Proc:
    def __init__(self, argv, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        harness.stop_process(self.proc, timeout=10)
        self._log.close()


class Env:
    """Dovecot + memcached + lookupd for one test run."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringproxy-mail-")
        os.chmod(self.dir, 0o755)
        self.imap_port = harness.free_port()
        self.pop3_port = harness.free_port()
        self.imaps_port = harness.free_port()
        self.pop3s_port = harness.free_port()
        self.procs = {}
        # A mailbox server that accepts connections (the kernel's backlog) and never
        # says a word: for the upstream deadlines.
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(64)
        self.silent_port = self.silent.getsockname()[1]
        # The same on ::1, for a route to an IPv6 mailbox server (None: no IPv6 here).
        self.silent6, self.silent6_port = None, harness.refused_port()
        try:
            s6 = socket.socket(socket.AF_INET6)
            s6.bind(("::1", 0))
            s6.listen(64)
            self.silent6, self.silent6_port = s6, s6.getsockname()[1]
        except OSError:
            pass
        self._start_dovecot()
        self.memcached_port = None
        self.start_memcached()
        self.lookupd_port = None
        self.start_lookupd()

    # --- Dovecot -------------------------------------------------------------------
    def _start_dovecot(self):
        d = self.dir
        for sub in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(d, "dovecot", sub), exist_ok=True)
        root = os.geteuid() == 0
        with open(os.path.join(d, "users"), "w") as f:
            for user, password in USERS.items():
                # nodelay: the tests' many wrong passwords are not slowed by Dovecot.
                f.write(f"{user}:{{PLAIN}}{password}::::::nodelay=yes\n")
        pki = tls_env.pki()
        owner = "nobody" if root else os.environ.get("USER", "root")
        group = "nogroup" if root else owner
        conf = f"""
instance_name = ringproxy-e2e-{os.getpid()}
base_dir = {d}/dovecot/run
state_dir = {d}/dovecot/state
log_path = {d}/dovecot/dovecot.log
info_log_path = {d}/dovecot/info.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{pki}/default.crt
ssl_key = <{pki}/default.key
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
verbose_proctitle = no
default_internal_user = {owner}
default_internal_group = {group}
default_login_user = {owner}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {owner}
mail_gid = {group}
mail_location = maildir:{d}/dovecot/mail/%u
default_process_limit = 2000
default_client_limit = 20000
imap_idle_notify_interval = 2 mins
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = static
  args = uid={owner} gid={group} home={d}/dovecot/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 1
  client_limit = 10000
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 1
  client_limit = 10000
}}
service imap {{
  process_limit = 2000
  client_limit = 50
  service_count = 0
}}
service pop3 {{
  process_limit = 2000
}}
service auth {{
  client_limit = 20000
}}
service anvil {{
  client_limit = 20000
}}
protocol imap {{
  mail_max_userip_connections = 100000
}}
protocol pop3 {{
  mail_max_userip_connections = 100000
}}
"""
        self.dovecot_conf = os.path.join(d, "dovecot.conf")
        with open(self.dovecot_conf, "w") as f:
            f.write(conf)
        self._seed("john@example.com")
        if root:
            for sub in ("mail", "home"):
                subprocess.run(["chown", "-R", f"{owner}:{group}",
                                os.path.join(d, "dovecot", sub)], check=True)
        self.procs["dovecot"] = Proc([DOVECOT, "-F", "-c", self.dovecot_conf],
                                     os.path.join(d, "dovecot.out"))
        for port in (self.imap_port, self.pop3_port, self.imaps_port, self.pop3s_port):
            harness.wait_port(port, timeout=20)

    def _seed(self, user):
        box = os.path.join(self.dir, "dovecot", "mail", user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(box, sub), exist_ok=True)
        for i in range(1, SEEDED + 1):
            # Maildir stores LF line ends; Dovecot sends CRLF.
            with open(os.path.join(box, "cur", f"{1700000000 + i}.seed{i}.host:2,S"), "wb") as f:
                f.write(message(i).replace(b"\r\n", b"\n"))

    # --- memcached and lookupd -------------------------------------------------------
    def start_memcached(self):
        if self.memcached_port is None:
            self.memcached_port = harness.free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.procs["memcached"] = Proc(
            [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.memcached_port), "-U", "0", "-m", "64",
             "-t", "1", *user], os.path.join(self.dir, "memcached.out"))
        harness.wait_port(self.memcached_port)

    def flush_memcached(self):
        self.stop_memcached()
        self.start_memcached()

    def stop_memcached(self):
        self.procs.pop("memcached").stop()

    def routes(self, server_address):
        return f"""
default_domain = "example.com"
auth_wait_s = 1

[[domain]]
name = "example.com"
virtual_ips = ["127.0.0.1"]

[[server]]
name = "mbox1"
address = "{server_address}"
imap = {self.imap_port}
imapssl = {self.imaps_port}
pop3 = {self.pop3_port}
pop3ssl = {self.pop3s_port}

[[server]]
name = "by-name"
address = "localhost"
imap = {self.imap_port}
pop3 = {self.pop3_port}

[[server]]
name = "silent"
address = "127.0.0.1"
imap = {self.silent_port}
pop3 = {self.silent_port}

[[server]]
name = "silent6"
address = "::1"
imap = {self.silent6_port}
pop3 = {self.silent6_port}

[[server]]
name = "nowhere"
address = "127.0.0.1"
imap = {harness.refused_port()}
pop3 = {harness.refused_port()}

[[account]]
name = "john@example.com"
server = "mbox1"
aliases = ["jd@example.com"]

[[account]]
name = "alice@example.com"
server = "mbox1"

[[account]]
name = "bob@example.com"
server = "mbox1"

[[account]]
name = "silent@example.com"
server = "silent"

[[account]]
name = "six@example.com"
server = "silent6"

[[account]]
name = "lost@example.com"
server = "nowhere"

[[account]]
name = "host@example.com"
server = "by-name"
"""

    def start_lookupd(self, server_address="127.0.0.1", extra=()):
        if self.lookupd_port is None:
            self.lookupd_port = harness.free_port()
        path = os.path.join(self.dir, "routes.toml")
        with open(path, "w") as f:
            f.write(self.routes(server_address))
        self.lookupd_log = os.path.join(self.dir, "lookupd.requests")
        self.procs["lookupd"] = Proc(
            [LOOKUPD, "--routes", path, "--listen", f"127.0.0.1:{self.lookupd_port}",
             "--request-log", self.lookupd_log, *extra], os.path.join(self.dir, "lookupd.out"))
        harness.wait_port(self.lookupd_port)

    def stop_lookupd(self):
        self.procs.pop("lookupd").stop()

    def lookups(self):
        try:
            with open(self.lookupd_log) as f:
                return sum(" method=" in line for line in f)
        except FileNotFoundError:
            return 0

    def dovecot_log(self):
        text = ""
        for name in ("dovecot.log", "info.log"):
            try:
                with open(os.path.join(self.dir, "dovecot", name), errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def close(self):
        self.silent.close()
        if self.silent6 is not None:
            self.silent6.close()
        for name in list(self.procs):
            self.procs.pop(name).stop()


def proxy_config(env, listeners, *, memcache=True, throttle="", audit=None, level="info",
                 lookup_extra="", shards=1, lookup_timeout_ms=3000):
    """A ringproxy config with the route stack on `env` and the given listener tables."""
    mc = f"""
[memcache]
servers = ["127.0.0.1:{env.memcached_port}"]
timeout_ms = 1000
""" if memcache else ""
    aud = f'\n[audit]\npath = "{audit}"\n' if audit else ""
    return f"""
[runtime]
shards = {shards}
drain_timeout_ms = 2000

[log]
level = "{level}"

[lookup]
servers = ["127.0.0.1:{env.lookupd_port}"]
timeout_ms = {lookup_timeout_ms}
connect_timeout_ms = 1000
retry_interval_ms = 0
{lookup_extra}
{mc}
{throttle}
{aud}
{listeners}
"""


def listener(name, protocol, port, *, tls=False, extra="", upstream_tls=False):
    p = tls_env.pki()
    text = f"""
[[listener]]
name = "{name}"
protocol = "{protocol}"
listen = "127.0.0.1:{port}"
{"" if "flavour" in extra else 'flavour = "dovecot"'}
{"" if "auth_wait_ms" in extra else "auth_wait_ms = 300"}
{extra}
"""
    if tls:
        text += f"""
[listener.tls]
certificate = "{p}/localhost.crt"
key = "{p}/localhost.key"
"""
    if upstream_tls:
        text += """
[listener.upstream_tls]
verify = false
"""
    return text

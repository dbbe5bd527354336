"""Upstreams (what every target proxies to) and targets (what is measured).

Kinds of traffic: tcp (echo upstream), tls (echo upstream, TLS terminated by the
proxy with a certificate chosen per scenario), http (origin nginx), imap and pop3
(Dovecot). Every target of one kind gets the same upstream, the same CPUs and, for tls,
the same certificate files. ringproxy serves HTTP and mail as a TCP (layer 4) relay
until its HTTP and mail proxies exist; the report says so next to its numbers.
"""
import os
import shutil
import subprocess
import time

from harness.procs import Proc, render, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS_DIR = os.path.join(ROOT, "bench", "targets")
BODY_SIZES = (0, 1024, 16384, 1048576)
# Self-signed pairs made with the openssl CLI, one per kind of key; both proxies read
# the same files. The name is what the load generator sends as SNI.
CERT_NAME = "bench.test"
CERT_KEYS = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
             "rsa": ["-newkey", "rsa:2048"]}


def certificate_pair(run_dir, cert):
    """(certificate, key) paths of the run's `cert` pair (ecdsa | rsa), made once."""
    crt, key = (os.path.join(run_dir, f"{cert}.{ext}") for ext in ("crt", "key"))
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", *CERT_KEYS[cert], "-nodes", "-keyout", key,
                        "-out", crt, "-days", "30", "-subj", f"/CN={CERT_NAME}",
                        "-addext", f"subjectAltName=DNS:{CERT_NAME}"],
                       check=True, capture_output=True, timeout=60)
    return crt, key


class Upstreams:
    """Starts the upstreams a run needs, once, on the load generator's CPUs."""

    def __init__(self, env):
        self.env = env
        self.procs = {}
        base = env.args.base_port
        self.ports = {"echo": base, "origin": base + 1, "imap": base + 2, "pop3": base + 3}

    def port_for(self, kind):
        return {"tcp": self.ports["echo"], "tls": self.ports["echo"],
                "http": self.ports["origin"],
                "imap": self.ports["imap"], "pop3": self.ports["pop3"]}[kind]

    def ensure(self, kind):
        need = {"tcp": ["echo"], "tls": ["echo"], "http": ["origin"], "imap": ["origin", "mail"],
                "pop3": ["origin", "mail"]}[kind]
        for name in need:
            if name not in self.procs:
                getattr(self, f"_start_{name}")()

    def _start_echo(self):
        e = self.env
        p = Proc("echo", [e.args.loadgen, "serve", "--listen", f"127.0.0.1:{self.ports['echo']}",
                          "--threads", "1"], e.load_cpus, e.run_dir)
        wait_listening(self.ports["echo"], p)
        self.procs["echo"] = p

    def _start_origin(self):
        e = self.env
        www = os.path.join(e.run_dir, "www", "r")
        os.makedirs(www, exist_ok=True)
        for size in BODY_SIZES:
            with open(os.path.join(www, str(size)), "wb") as f:
                f.write((b"ringproxy-" * (size // 10 + 1))[:size])
        conf = os.path.join(e.run_dir, "origin.conf")
        render(os.path.join(TARGETS_DIR, "origin-nginx.conf.in"), conf, {
            "RUN": e.run_dir, "ORIGIN_PORT": self.ports["origin"],
            "IMAP_BACKEND_PORT": self.ports["imap"], "POP3_BACKEND_PORT": self.ports["pop3"]})
        p = Proc("origin", [e.args.nginx, "-p", e.run_dir + "/", "-e",
                            os.path.join(e.run_dir, "origin.error.log"), "-c", conf],
                 e.load_cpus, e.run_dir)
        wait_listening(self.ports["origin"], p)
        self.procs["origin"] = p

    def _start_mail(self):
        e = self.env
        for d in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(e.run_dir, "dovecot", d), exist_ok=True)
        for d in ("mail", "home"):
            shutil.chown(os.path.join(e.run_dir, "dovecot", d), "nobody", "nogroup")
        conf = os.path.join(e.run_dir, "dovecot.conf")
        render(os.path.join(TARGETS_DIR, "dovecot.conf.in"), conf, {
            "RUN": e.run_dir, "IMAP_BACKEND_PORT": self.ports["imap"],
            "POP3_BACKEND_PORT": self.ports["pop3"]})
        p = Proc("dovecot", [e.args.dovecot, "-F", "-c", conf], e.load_cpus, e.run_dir)
        wait_listening(self.ports["imap"], p)
        wait_listening(self.ports["pop3"], p)
        self.procs["mail"] = p

    def stop(self):
        for p in self.procs.values():
            p.stop()
        self.procs.clear()


class Target:
    name = "?"
    kinds = ()
    layer4 = False  # a TCP relay standing in for a protocol-aware proxy

    def __init__(self, env, kind, cert=None):
        self.env = env
        self.kind = kind
        self.cert = cert  # tls: which pair it serves (ecdsa | rsa)
        # Names its ports, files and logs: one target per kind and certificate.
        self.variant = kind if cert is None else f"{kind}-{cert}"
        self.pid = None
        self.proc = None
        self.port = env.port_of(self.name, self.variant)

    def start(self):
        pass

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def cpus(self):
        return [int(c) for c in self.env.proxy_cpus.split(",")]


class Direct(Target):
    """No proxy: the load goes straight to the upstream (the ceiling)."""
    name = "direct"
    kinds = ("tcp", "http", "imap", "pop3")

    def __init__(self, env, kind, cert=None):
        super().__init__(env, kind, cert)
        self.port = env.upstreams.port_for(kind)


class Ringproxy(Target):
    name = "ringproxy"
    kinds = ("tcp", "tls", "http", "imap", "pop3")
    relay = "auto"

    @property
    def layer4(self):
        return self.kind not in ("tcp", "tls")

    def tls_tables(self):
        """The TOML that makes the listener terminate TLS (kind tls), else ''."""
        if self.kind != "tls":
            return ""
        crt, key = certificate_pair(self.env.run_dir, self.cert)
        # Tickets on (the default, said anyway); no ALPN, as nginx's stream server has
        # none configured; the handshake deadline is nginx's ssl_handshake_timeout.
        return (f'\n[listener.tls]\ncertificate = "{crt}"\nkey = "{key}"\n'
                'session_tickets = true\nalpn = []\nhandshake_timeout_ms = 10000\n'
                '\n[tls]\nticket_key_rotation_s = 3600\n')

    def start(self):
        e = self.env
        conf = os.path.join(e.run_dir, f"{self.name}-{self.variant}.toml")
        cpus = self.cpus()
        render(os.path.join(TARGETS_DIR, "ringproxy-tcp.toml.in"), conf, {
            "SHARDS": len(cpus), "CPUS": ", ".join(map(str, cpus)), "PORT": self.port,
            "UPSTREAM_PORT": e.upstreams.port_for(self.kind), "RUN": e.run_dir,
            "RELAY": self.relay, "TLS": self.tls_tables()})
        self.proc = Proc(f"{self.name}-{self.variant}", [e.args.ringproxy, "--config", conf],
                         e.proxy_cpus, e.run_dir)
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)


class RingproxyCopy(Ringproxy):
    name = "ringproxy-copy"
    kinds = ("tcp", "http", "imap", "pop3")  # relay modes of plaintext only
    relay = "copy"


class RingproxySplice(Ringproxy):
    name = "ringproxy-splice"
    kinds = ("tcp", "http", "imap", "pop3")
    relay = "splice"


class Nginx(Target):
    name = "nginx"
    kinds = ("tcp", "tls", "http", "imap", "pop3")

    def start(self):
        e = self.env
        cpus = self.cpus()
        affinity = " ".join(format(1 << c, "b") for c in cpus)
        template = {"tcp": "nginx-stream.conf.in", "tls": "nginx-stream-tls.conf.in",
                    "http": "nginx-http.conf.in", "imap": "nginx-mail.conf.in",
                    "pop3": "nginx-mail.conf.in"}[self.kind]
        v = self.variant
        conf = os.path.join(e.run_dir, f"nginx-{v}.conf")
        values = {"WORKERS": len(cpus), "AFFINITY": affinity, "PORT": self.port, "KIND": v,
                  "RUN": e.run_dir, "UPSTREAM_PORT": e.upstreams.port_for("tcp"),
                  "ORIGIN_PORT": e.upstreams.ports["origin"],
                  "IMAP_PORT": self.port, "POP3_PORT": self.port + 1}
        if self.kind == "pop3":
            values["IMAP_PORT"], values["POP3_PORT"] = self.port + 1, self.port
        if self.kind == "tls":
            values["CERTIFICATE"], values["KEY"] = certificate_pair(e.run_dir, self.cert)
        render(os.path.join(TARGETS_DIR, template), conf, values)
        # Each kind (and certificate) gets its own pid file inside the template's @RUN@ dir.
        self.proc = Proc(f"nginx-{v}", [e.args.nginx, "-p", e.run_dir + "/", "-e",
                                        os.path.join(e.run_dir, f"nginx-{v}.err"),
                                        "-c", conf], e.proxy_cpus, e.run_dir)
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)
        time.sleep(0.2)  # workers up


class Haproxy(Target):
    name = "haproxy"
    kinds = ("http",)

    def start(self):
        e = self.env
        cpus = self.cpus()
        conf = os.path.join(e.run_dir, "haproxy.cfg")
        render(os.path.join(TARGETS_DIR, "haproxy-http.cfg.in"), conf, {
            "THREADS": len(cpus), "CPUS": " ".join(map(str, cpus)), "PORT": self.port,
            "ORIGIN_PORT": e.upstreams.ports["origin"]})
        self.proc = Proc("haproxy", [e.args.haproxy, "-db", "-f", conf], e.proxy_cpus, e.run_dir)
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)


TARGETS = {t.name: t for t in (Direct, Ringproxy, RingproxyCopy, RingproxySplice, Nginx, Haproxy)}

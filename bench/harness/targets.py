"""Upstreams (what every target proxies to) and targets (what is measured).

Kinds of traffic: tcp (echo upstream), tls (echo upstream, TLS terminated by the
proxy with a certificate chosen per scenario), http (origin nginx), imap and pop3 (a
mail upstream, Dovecot or the scripted `loadgen imap-serve` / `pop3-serve`, whose
routes come from tools/lookupd). Every target of one kind gets the same upstream, the
same CPUs and, with TLS, the same certificate files. ringproxy serves HTTP as a TCP
(layer 4) relay until its HTTP proxy exists; the report says so next to its numbers.
Mail targets are both real mail proxies: ringproxy's IMAP/POP3 listeners and nginx's
mail module, both routing each login through the same lookupd.
"""
import os
import shutil
import subprocess
import time

from harness.procs import Proc, render, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS_DIR = os.path.join(ROOT, "bench", "targets")
BODY_SIZES = (0, 1024, 16384, 1048576)
# ringproxy's TLS choices in OpenSSL's names, for nginx and HAProxy: the same suites in
# the same order (server preference), the same groups, tickets and no session cache.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
TLS_CURVES = "X25519:prime256v1:X448:secp521r1:secp384r1"  # kGroupList, tls/context_setup.cc
# What each body repeats (the HTTP scenarios check every byte against it).
BODY_FILL = "ringproxy-"
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


def one_ticket_env(run_dir):
    """The environment for nginx and HAProxy: an OpenSSL config whose default for every
    SSL_CTX is one TLS 1.3 ticket per full handshake, as ringproxy (wolfSSL) sends,
    where OpenSSL sends two; neither proxy has a directive of its own for it in
    HAProxy's case, so both get it the same way."""
    path = os.path.join(run_dir, "openssl-one-ticket.cnf")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\n"
                    "system_default = defaults\n[defaults]\nNumTickets = 1\n")
    return {**os.environ, "OPENSSL_CONF": path}


# The mail benchmarks' accounts: user1..user<MAIL_USERS>@MAIL_DOMAIN in lookupd's
# routes; the load generator logs in as user<n> (unqualified: lookupd qualifies it with
# its default domain, for ringproxy and nginx alike) with password "secret", which
# Dovecot's static passdb and the scripted upstream accept.
MAIL_DOMAIN = "bench.test"
MAIL_USERS = 1000


class Upstreams:
    """Starts the upstreams a run needs, once, on the load generator's CPUs."""

    def __init__(self, env):
        self.env = env
        self.procs = {}
        base = env.args.base_port
        self.ports = {"echo": base, "origin": base + 1, "imap": base + 2, "pop3": base + 3,
                      "fast-imap": base + 4, "fast-pop3": base + 5,
                      "lookupd-dovecot": base + 6, "lookupd-fast": base + 7}

    def port_for(self, kind, upstream="dovecot"):
        if kind in ("imap", "pop3"):
            return self.mail_port(kind, upstream)
        return {"tcp": self.ports["echo"], "tls": self.ports["echo"],
                "http": self.ports["origin"]}[kind]

    def mail_port(self, protocol, upstream):
        """The plaintext port of `upstream` (fast | dovecot) for protocol imap | pop3."""
        return self.ports[protocol if upstream == "dovecot" else f"fast-{protocol}"]

    def lookup_port(self, upstream):
        """The lookupd whose routes send every account to `upstream`."""
        return self.ports[f"lookupd-{upstream}"]

    def ensure(self, kind, upstream=None):
        need = {"tcp": ["echo"], "tls": ["echo"], "http": ["origin"]}.get(kind)
        if need is None:  # imap, pop3: both protocols of the upstream, and its lookupd
            need = (["mail"] if upstream == "dovecot" else ["fast-imap", "fast-pop3"]) + \
                [f"lookupd-{upstream}"]
        for name in need:
            if name not in self.procs:
                start, _, arg = name.partition("-")
                getattr(self, f"_start_{start}")(*([arg] if arg else []))

    def workers(self):
        """Threads or workers of an upstream: one per two load CPUs, so that on a large
        machine (the scaling sweep) the upstream is not what limits the rate."""
        return max(1, len(self.env.load_cpus.split(",")) // 2)

    def _start_echo(self):
        e = self.env
        p = Proc("echo", [e.args.loadgen, "serve", "--listen", f"127.0.0.1:{self.ports['echo']}",
                          "--threads", str(self.workers())], e.load_cpus, e.run_dir)
        wait_listening(self.ports["echo"], p)
        self.procs["echo"] = p

    def _start_origin(self):
        e = self.env
        www = os.path.join(e.run_dir, "www", "r")
        os.makedirs(www, exist_ok=True)
        for size in BODY_SIZES:
            with open(os.path.join(www, str(size)), "wb") as f:
                f.write((BODY_FILL.encode() * (size // len(BODY_FILL) + 1))[:size])
        conf = os.path.join(e.run_dir, "origin.conf")
        render(os.path.join(TARGETS_DIR, "origin-nginx.conf.in"), conf, {
            "RUN": e.run_dir, "ORIGIN_PORT": self.ports["origin"], "WORKERS": self.workers()})
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

    def _start_fast(self, protocol):
        """The scripted IMAP or POP3 server (any login accepted), one thread."""
        e = self.env
        port = self.ports[f"fast-{protocol}"]
        p = Proc(f"fast-{protocol}", [e.args.loadgen, f"{protocol}-serve", "--listen",
                                      f"127.0.0.1:{port}", "--threads", "1"],
                 e.load_cpus, e.run_dir)
        wait_listening(port, p)
        self.procs[f"fast-{protocol}"] = p

    def _start_lookupd(self, upstream):
        """tools/lookupd with every account on `upstream` (what both proxies ask)."""
        e = self.env
        routes = os.path.join(e.run_dir, f"routes-{upstream}.toml")
        with open(routes, "w") as f:
            f.write(f'default_domain = "{MAIL_DOMAIN}"\nauth_wait_s = 0\n\n'
                    f'[[server]]\nname = "{upstream}"\naddress = "127.0.0.1"\n'
                    f'imap = {self.mail_port("imap", upstream)}\n'
                    f'pop3 = {self.mail_port("pop3", upstream)}\n\n'
                    f'[[account_range]]\nprefix = "user"\ndomain = "{MAIL_DOMAIN}"\n'
                    f'count = {MAIL_USERS}\nserver = "{upstream}"\n')
        port = self.lookup_port(upstream)
        p = Proc(f"lookupd-{upstream}", [e.args.lookupd, "--routes", routes, "--listen",
                                         f"127.0.0.1:{port}", "--threads", "1"],
                 e.load_cpus, e.run_dir)
        wait_listening(port, p)
        self.procs[f"lookupd-{upstream}"] = p

    def stop(self):
        for p in self.procs.values():
            p.stop()
        self.procs.clear()


class Target:
    name = "?"
    kinds = ()
    layer4 = False  # a TCP relay standing in for a protocol-aware proxy

    def __init__(self, env, kind, cert=None, mail=None):
        self.env = env
        self.kind = kind
        self.cert = cert  # tls, imap, pop3: which pair it serves (ecdsa | rsa); None: no TLS
        # imap, pop3: {"upstream": fast | dovecot, "route": cached | uncached,
        # "flavour": ringproxy's upstream login (dovecot | plain)}
        self.mail = mail
        # Names its ports, files and logs: one target per kind, certificate and mail setup.
        self.variant = "-".join([kind] + ([cert] if cert else []) +
                                ([mail["upstream"], mail["route"]] if mail else []) +
                                ([mail["flavour"]] if mail and mail["flavour"] != "dovecot"
                                 else []))
        self.pid = None
        self.proc = None
        self.port = env.port_of(self.name, self.variant)

    @property
    def mail_protocol(self):
        """imap | imaps | pop3 | pop3s."""
        return self.kind + ("s" if self.cert else "")

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

    def __init__(self, env, kind, cert=None, mail=None):
        super().__init__(env, kind, cert, mail)
        self.port = env.upstreams.port_for(kind, mail["upstream"] if mail else None)


class Ringproxy(Target):
    name = "ringproxy"
    kinds = ("tcp", "tls", "http", "imap", "pop3")
    relay = "auto"
    coalesce_us = 0

    def binary(self):
        return self.env.args.ringproxy

    def tls_tables(self):
        """The TOML that makes the listener terminate TLS (a certificate given), else ''."""
        if self.cert is None:
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
        values = {"SHARDS": len(cpus), "CPUS": ", ".join(map(str, cpus)), "PORT": self.port,
                  "RUN": e.run_dir, "RELAY": self.relay, "TLS": self.tls_tables(),
                  "COALESCE_US": self.coalesce_us}
        if self.mail:
            upstream = self.mail["upstream"]
            values.update({
                "PROTOCOL": self.mail_protocol, "FLAVOUR": self.mail["flavour"],
                "LOOKUP_PORT": e.upstreams.lookup_port(upstream),
                # No per-core route cache: every login asks lookupd (as nginx does).
                "LOOKUP_EXTRA": "local_cache_size = 0" if self.mail["route"] == "uncached"
                else "",
                # Plaintext listeners: no STARTTLS (nginx's default; no certificate here).
                "STARTTLS": "" if self.cert else 'starttls = "off"'})
            template = "ringproxy-mail.toml.in"
        else:
            values["UPSTREAM_PORT"] = e.upstreams.port_for(self.kind)
            values["HTTP_PROTOCOL"] = "https" if self.cert else "http"
            template = "ringproxy-http.toml.in" if self.kind == "http" else "ringproxy-tcp.toml.in"
        render(os.path.join(TARGETS_DIR, template), conf, values)
        self.proc = Proc(f"{self.name}-{self.variant}", [self.binary(), "--config", conf],
                         e.proxy_cpus, e.run_dir)
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)


class RingproxyCopy(Ringproxy):
    name = "ringproxy-copy"
    kinds = ("tcp", "imap", "pop3")  # relay modes of plaintext streams only
    relay = "copy"


class RingproxySplice(Ringproxy):
    name = "ringproxy-splice"
    kinds = ("tcp", "imap", "pop3")
    relay = "splice"


class RingproxyCoalesce(Ringproxy):
    """runtime.coalesce_us on (--coalesce-us, default 200 as deploy/ringproxy.toml ships):
    under load a shard sleeps for a batch of completions."""
    name = "ringproxy-coalesce"

    @property
    def coalesce_us(self):
        return self.env.args.coalesce_us


class Baseline(Ringproxy):
    """Another build of ringproxy (--baseline), to measure a change in the same run."""
    name = "baseline"

    def binary(self):
        return self.env.args.baseline


class BaselineCoalesce(Baseline, RingproxyCoalesce):
    """The baseline build with ringproxy-coalesce's window."""
    name = "baseline-coalesce"


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
                  "NGINX_MODULES": e.args.nginx_modules}
        if self.kind == "tls":
            values["CERTIFICATE"], values["KEY"] = certificate_pair(e.run_dir, self.cert)
        if self.kind == "http":
            values.update({"SSL": self.mail_ssl(), "LISTEN_SSL": "ssl" if self.cert else ""})
        if self.mail:
            values.update({"PROTOCOL": self.kind,
                           "LOOKUP_PORT": e.upstreams.lookup_port(self.mail["upstream"]),
                           "SSL": self.mail_ssl(), "LISTEN_SSL": "ssl" if self.cert else ""})
        render(os.path.join(TARGETS_DIR, template), conf, values)
        # Each kind (and certificate) gets its own pid file inside the template's @RUN@ dir.
        self.proc = Proc(f"nginx-{v}", [e.args.nginx, "-p", e.run_dir + "/", "-e",
                                        os.path.join(e.run_dir, f"nginx-{v}.err"),
                                        "-c", conf], e.proxy_cpus, e.run_dir,
                         env=one_ticket_env(e.run_dir))
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)
        time.sleep(0.2)  # workers up

    def mail_ssl(self):
        """imaps / pop3s / https: the certificate and nginx-stream-tls.conf.in's TLS settings
        (ringproxy's versions, suites and order, tickets only), else ''."""
        if self.cert is None:
            return ""
        crt, key = certificate_pair(self.env.run_dir, self.cert)
        return "\n".join(f"    {line}" for line in (
            f"ssl_certificate {crt};", f"ssl_certificate_key {key};",
            "ssl_protocols TLSv1.2 TLSv1.3;",
            f"ssl_ciphers {TLS12_CIPHERS};",
            f"ssl_conf_command Ciphersuites {TLS13_SUITES};",
            "ssl_prefer_server_ciphers on;", f"ssl_ecdh_curve {TLS_CURVES};",
            "ssl_session_cache off;", "ssl_session_tickets on;"))


class Haproxy(Target):
    name = "haproxy"
    kinds = ("http",)

    def start(self):
        e = self.env
        cpus = self.cpus()
        conf = os.path.join(e.run_dir, f"haproxy-{self.variant}.cfg")
        bind_ssl = ""
        if self.cert:
            # HAProxy takes the certificate and its key in one file.
            crt, key = certificate_pair(e.run_dir, self.cert)
            pem = os.path.join(e.run_dir, f"haproxy-{self.cert}.pem")
            with open(pem, "w") as out:
                for part in (crt, key):
                    with open(part) as f:
                        out.write(f.read())
            # HAProxy prefers the server's order unless told otherwise.
            bind_ssl = (f"ssl crt {pem} ssl-min-ver TLSv1.2 ciphers {TLS12_CIPHERS} "
                        f"ciphersuites {TLS13_SUITES} curves {TLS_CURVES}")
        render(os.path.join(TARGETS_DIR, "haproxy-http.cfg.in"), conf, {
            "THREADS": len(cpus), "CPUS": " ".join(map(str, cpus)), "PORT": self.port,
            "ORIGIN_PORT": e.upstreams.ports["origin"], "BIND_SSL": bind_ssl,
            # No session cache, as for the others (tickets stay on).
            "SSL_CACHE": "tune.ssl.cachesize 0" if self.cert else ""})
        self.proc = Proc("haproxy", [e.args.haproxy, "-db", "-f", conf], e.proxy_cpus, e.run_dir,
                         env=one_ticket_env(e.run_dir))
        self.pid = self.proc.pid
        wait_listening(self.port, self.proc)


TARGETS = {t.name: t for t in (Direct, Ringproxy, RingproxyCopy, RingproxySplice,
                                RingproxyCoalesce, Baseline, BaselineCoalesce, Nginx,
                                Haproxy)}

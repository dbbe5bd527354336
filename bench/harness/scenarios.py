"""The scenario matrix: what load each scenario offers, through which kind of
upstream, and which numbers matter. Sweeps vary one parameter of a scenario.

Optional keys: "cert" (kind tls: the pair the target serves, ecdsa or rsa; kinds imap
and pop3: implicit TLS, IMAPS / POP3S, with that pair), "mail" (kinds imap and pop3:
the upstream, fast or dovecot; the route, cached in the proxy's core or uncached, asked
of lookupd on every login; ringproxy's upstream login flavour), "warmup" (run the load
once, unmeasured, on each newly started target: every account's route cached, every
Dovecot mailbox created), "goals" (metric, "<=" or ">=", ratio of ringproxy to nginx
that an issue asks for: the report's goal table), "idle"/"fresh"/"exclude" (see
bench/run)."""
from harness.targets import BODY_FILL, CERT_NAME, MAIL_USERS

# Every TLS scenario: SNI as browsers send it; no certificate check on the client, so
# that the load generator's CPU goes to the handshake the proxy has to do as well.
TLS_ARGS = ["--sni", CERT_NAME]


def body_check(size):
    """The load generator's check of each origin body /r/<size>: its size and every byte."""
    return ["--expect-size", str(size), "--expect-fill", BODY_FILL]


def handshakes(cert, *extra, about, goal=None):
    """A tls-handshake scenario: 32 connections at a time, each operation a new one."""
    return {
        "kind": "tls",
        "cert": cert,
        "args": ["tls-handshake", "--connections", "32", *extra, *TLS_ARGS],
        "metrics": ["ops_per_s", "ops_per_core_s", "target_cpu_us_per_op", "latency_us.p50",
                    "latency_us.p99", "tls.resumed_fraction"],
        # The rate, and the rate one busy proxy core would reach (the load generator
        # shares the other CPUs with the upstream and may be the limit of the first).
        "goals": [("ops_per_s", ">=", goal), ("ops_per_core_s", ">=", goal)] if goal else [],
        "about": about,
    }


def logins(protocol, upstream, route, *, about, cert=None, flavour="dovecot", goal=None):
    """A mail login storm (kind imap or pop3) through a mail proxy: 32 connections at a
    time, each operation a new connection that logs in as the next of the MAIL_USERS
    accounts and out again. The goal, when given, is on proxy CPU per login."""
    return {
        "kind": protocol,
        "cert": cert,
        "mail": {"upstream": upstream, "route": route, "flavour": flavour},
        "args": [f"{protocol}-login", "--connections", "32", "--users-count", str(MAIL_USERS),
                 *(["--tls", *TLS_ARGS] if cert else [])],
        "warmup": True,
        "exclude": ["direct"] if cert else [],  # the upstreams speak plaintext only
        "metrics": ["ops_per_s", "ops_per_core_s", "target_cpu_us_per_op", "latency_us.p50",
                    "latency_us.p99"],
        "goals": [("target_cpu_us_per_op", "<=", goal)] if goal else [],
        "about": about,
    }


SCENARIOS = {
    "tcp-bulk": {
        "kind": "tcp",
        "args": ["bulk", "--connections", "8", "--size", "65536"],
        "metrics": ["mb_per_s", "target_cpu_s_per_gib"],
        "about": "8 connections streaming a verified pattern through the proxy to an echo "
                 "upstream and back",
    },
    "tcp-echo": {
        "kind": "tcp",
        "args": ["tcp-echo", "--connections", "64", "--size", "1024"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "about": "64 connections, 1 KiB request echoed back, closed loop",
    },
    "tcp-idle": {
        "kind": "tcp",
        "args": ["idle", "--send-first", "16", "--hold", "2", "--batch", "500"],
        "idle": True,
        "fresh": True,
        "exclude": ["direct"],
        "metrics": ["rss_per_conn", "opened"],
        "about": "N relayed connections held idle (16 bytes exchanged first)",
    },
    "http-1k": {
        "kind": "http",
        "args": ["http", "--path", "/r/1024", *body_check(1024), "--connections", "64"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "goals": [("target_cpu_us_per_op", "<=", 0.6)],
        "about": "keep-alive GET of a 1 KiB body, 64 connections",
    },
    "http-1k-close": {
        "kind": "http",
        "args": ["http", "--path", "/r/1024", *body_check(1024), "--keepalive", "0",
                 "--connections", "16"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "goals": [("target_cpu_us_per_op", "<=", 0.8)],
        "about": "one GET of 1 KiB per connection, 16 at a time",
    },
    "http-1m": {
        "kind": "http",
        "args": ["http", "--path", "/r/1048576", *body_check(1048576), "--connections", "8"],
        "metrics": ["mb_per_s", "target_cpu_s_per_gib"],
        "goals": [("target_cpu_s_per_gib", "<=", 0.6)],
        "about": "keep-alive GET of a 1 MiB body, 8 connections",
    },
    "imap-login": logins(
        "imap", "fast", "cached", goal=0.33,
        about="connect, greeting, LOGIN, LOGOUT, 32 at a time, against the scripted upstream; "
              "ringproxy's route from its per-core cache (nginx asks lookupd every time)"),
    "imap-login-uncached": logins(
        "imap", "fast", "uncached", goal=0.7,
        about="as imap-login, ringproxy asking lookupd on every login (no route cache)"),
    "imap-login-plain": logins(
        "imap", "fast", "cached", flavour="plain",
        about="as imap-login, ringproxy's upstream login without the ID command "
              "(flavour plain: no client address passed on, as nginx passes none)"),
    "imap-login-dovecot": logins(
        "imap", "dovecot", "cached", goal=0.33,
        about="as imap-login against Dovecot"),
    "imap-login-dovecot-uncached": logins(
        "imap", "dovecot", "uncached", goal=0.7,
        about="as imap-login-uncached against Dovecot"),
    "imaps-login": logins(
        "imap", "fast", "cached", cert="ecdsa",
        about="as imap-login over implicit TLS (IMAPS, ECDSA P-256 certificate, a full "
              "TLS 1.3 handshake per login; TLS to the proxy only)"),
    "pop3-login": logins(
        "pop3", "fast", "cached",
        about="connect, greeting, USER, PASS, QUIT, 32 at a time, against the scripted "
              "upstream; ringproxy's route from its per-core cache"),
    "pop3-login-uncached": logins(
        "pop3", "fast", "uncached",
        about="as pop3-login, ringproxy asking lookupd on every login"),
    "pop3-login-dovecot": logins(
        "pop3", "dovecot", "cached", about="as pop3-login against Dovecot"),
    "mail-idle": {
        "kind": "imap",
        "mail": {"upstream": "fast", "route": "cached", "flavour": "dovecot"},
        "args": ["idle", "--greeting", "--hold", "2", "--batch", "500"],
        "idle": True,
        "fresh": True,
        "exclude": ["direct"],
        "metrics": ["rss_per_conn", "opened"],
        "goals": [("rss_per_conn", "<=", 0.5)],
        "about": "N IMAP connections held idle before login, each after reading the "
                 "proxy's greeting (no upstream connection yet)",
    },
    "tls-handshake-ecdsa": handshakes(
        "ecdsa", goal=1.0,
        about="full TLS handshakes, ECDSA P-256 certificate: connect, handshake (TLS 1.3 as "
              "negotiated), 16 bytes echoed by the upstream, close; 32 at a time"),
    "tls-handshake-rsa": handshakes(
        "rsa", goal=1.0, about="as tls-handshake-ecdsa with an RSA-2048 certificate"),
    "tls-resume": handshakes(
        "ecdsa", "--resume", goal=1.2,
        about="as tls-handshake-ecdsa, each connection resuming the previous one's session "
              "with its ticket (TLS 1.3: PSK with ECDHE); resumed_fraction shows how many did"),
    "tls-resume-1.2": handshakes(
        "ecdsa", "--resume", "--tls-version", "1.2",
        about="as tls-resume with TLS 1.2 (an abbreviated handshake: no key exchange)"),
    "tls-bulk": {
        "kind": "tls",
        "cert": "ecdsa",
        "args": ["bulk", "--tls", "--connections", "8", "--size", "65536", *TLS_ARGS],
        "metrics": ["mb_per_s", "target_cpu_s_per_gib"],
        "goals": [("target_cpu_s_per_gib", "<=", 0.7)],
        "about": "8 TLS connections streaming a verified pattern through the proxy (TLS "
                 "terminated, plaintext to an echo upstream) and back",
    },
    "tls-idle": {
        "kind": "tls",
        "cert": "ecdsa",
        "args": ["idle", "--tls", "--send-first", "16", "--hold", "2", "--batch", "500",
                 *TLS_ARGS],
        "idle": True,
        "fresh": True,
        "metrics": ["rss_per_conn", "opened"],
        "goals": [("rss_per_conn", "<=", 0.5)],
        "about": "N TLS connections held idle after the handshake and 16 bytes exchanged",
    },
}



def over_https(plain, about, goal=None):
    """An HTTP scenario over HTTPS: the ECDSA pair, plaintext to the origin."""
    spec = SCENARIOS[plain]
    return {**spec, "cert": "ecdsa", "args": [spec["args"][0], "--tls", *spec["args"][1:],
                                              *TLS_ARGS],
            "exclude": ["direct"], "goals": [("target_cpu_us_per_op", "<=", goal)] if goal else [],
            "about": about}


SCENARIOS["https-1k"] = over_https(
    "http-1k", "as http-1k over HTTPS (ECDSA P-256, TLS 1.3; plaintext to the origin)", goal=0.7)
SCENARIOS["https-1k-close"] = over_https(
    "http-1k-close",
    "one GET of 1 KiB per HTTPS connection (a full handshake each), 16 at a time")

# Sweeps: scenario:param. "conc" varies --connections, "rate" runs open loop at
# fractions of the closed-loop peak measured for the reference target.
SWEEP_DEFAULTS = {
    "conc": [1, 4, 16, 64, 256],
    "rate": [0.2, 0.4, 0.6, 0.8, 0.95],
}


def with_option(args, flag, value):
    """args with `flag value` set (replaced if present)."""
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = str(value)
    else:
        out += [flag, str(value)]
    return out

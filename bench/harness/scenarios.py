"""The scenario matrix: what load each scenario offers, through which kind of
upstream, and which numbers matter. Sweeps vary one parameter of a scenario.

Optional keys: "cert" (kind tls: the pair the target serves, ecdsa or rsa), "goals"
(metric, "<=" or ">=", ratio of ringproxy to nginx that an issue asks for: the
report's goal table), "idle"/"fresh"/"exclude" (see bench/run)."""
from harness.targets import CERT_NAME

# Every TLS scenario: SNI as browsers send it; no certificate check on the client, so
# that the load generator's CPU goes to the handshake the proxy has to do as well.
TLS_ARGS = ["--sni", CERT_NAME]


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
        "args": ["http", "--path", "/r/1024", "--expect-size", "1024", "--connections", "64"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "about": "keep-alive GET of a 1 KiB body, 64 connections",
    },
    "http-1k-close": {
        "kind": "http",
        "args": ["http", "--path", "/r/1024", "--expect-size", "1024", "--keepalive", "0",
                 "--connections", "16"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "about": "one GET of 1 KiB per connection, 16 at a time",
    },
    "http-1m": {
        "kind": "http",
        "args": ["http", "--path", "/r/1048576", "--expect-size", "1048576", "--connections", "8"],
        "metrics": ["mb_per_s", "target_cpu_s_per_gib"],
        "about": "keep-alive GET of a 1 MiB body, 8 connections",
    },
    "imap-login": {
        "kind": "imap",
        "args": ["imap-login", "--connections", "32"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "about": "connect, greeting, LOGIN, LOGOUT against Dovecot, 32 at a time",
    },
    "pop3-login": {
        "kind": "pop3",
        "args": ["pop3-login", "--connections", "32"],
        "metrics": ["ops_per_s", "target_cpu_us_per_op", "latency_us.p50", "latency_us.p99"],
        "about": "connect, greeting, USER, PASS, QUIT against Dovecot, 32 at a time",
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

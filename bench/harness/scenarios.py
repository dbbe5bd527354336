"""The scenario matrix: what load each scenario offers, through which kind of
upstream, and which numbers matter. Sweeps vary one parameter of a scenario."""

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

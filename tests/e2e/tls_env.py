"""What the TLS end-to-end tests share: the test PKI (made once per run by
tests/tls/make_test_certs), the proxy config with a TLS listener, client contexts."""
import os
import socket
import ssl
import subprocess
import tempfile
import warnings

# TLS 1.0/1.1 clients are what the tests refuse; Python warns about making them.
warnings.filterwarnings("ignore", category=DeprecationWarning)

MAKE_CERTS = os.environ.get("MAKE_TEST_CERTS_BIN", "build/release/tests/make_test_certs")
NAMES = 1000
_PKI = []


def pki():
    """The test PKI, made once per run."""
    if not _PKI:
        d = tempfile.mkdtemp(prefix="ringproxy-pki-")
        subprocess.run([MAKE_CERTS, d, str(NAMES)], check=True, timeout=120)
        _PKI.append(d)
    return _PKI[0]


def localhost_server_context():
    """A TLS upstream's server side: the test PKI's pair for localhost."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    p = pki()
    ctx.load_cert_chain(f"{p}/localhost.crt", f"{p}/localhost.key")
    return ctx


def closes_after_client_hello(conn):
    """A ThreadedServer handler: an upstream that reads the ClientHello and closes."""
    conn.recv(4096)


def name(i):
    return f"name{i:04}.example.test"


def config(port, up_port, *, shards=1, tls="", upstream_tls="", level="info", access=True,
           extra=""):
    p = pki()
    tls = tls or f"""
certificate = "{p}/default.crt"
key = "{p}/default.key"
certificate_dir = "{p}/certs"
"""
    return f"""
[runtime]
shards = {shards}
drain_timeout_ms = 2000

[log]
level = "{level}"
access = {"true" if access else "false"}

[[upstream]]
name = "backend"
servers = ["127.0.0.1:{up_port}"]
connect_timeout_ms = 1000
{upstream_tls}

[[listener]]
name = "tls-tcp"
protocol = "tcp"
listen = "127.0.0.1:{port}"
upstream = "backend"

[listener.tls]
{tls}
{extra}
"""


def client_context(*, verify=True, check_hostname=True, minimum=None, maximum=None,
                   ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname and verify
    if verify:
        ctx.load_verify_locations(os.path.join(pki(), "ca.pem"))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def tls_connect(port, server_name, ctx=None, session=None, timeout=10.0):
    ctx = ctx or client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=server_name, session=session)


def common_name(sock):
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject.get("commonName")


def echo_once(sock, payload=b"ping"):
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        d = sock.recv(65536)
        if not d:
            break
        got += d
    return got


def s_client(port, *args, data=b"", timeout=20):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=data, capture_output=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")

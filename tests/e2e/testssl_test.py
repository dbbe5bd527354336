#!/usr/bin/env python3
"""testssl.sh (Debian's) against the TLS listener: no vulnerability, nothing below the
policy (TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy, server order). The
certificate findings are about the test's private PKI (untrusted CA, short life, no
revocation URL) and are not the proxy's; they are listed, not judged. About a minute."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Proxy, ThreadedServer, check, echo_handler, free_port, run_all, test  # noqa: E402
from tls_env import MAKE_CERTS, config, pki  # noqa: E402

TESTSSL = "/usr/bin/testssl"
# Findings about the certificate itself, i.e. the test PKI.
PKI_FINDINGS = ("cert_", "DNS_CAArecord", "intermediate_cert")
# testssl's ticket check runs `s_client -sess_out </dev/null`: the client quits as soon
# as its handshake is done, and a TLS 1.3 ticket (sent after the client's Finished) is
# saved only if it arrived first. On a loaded or sanitizer-slowed machine it often has
# not, and the second s_client then has no session file: "connect problem". Resumption
# itself is tested deterministically in tls_test.py (a ticket from one shard resumes on
# another, TLS 1.2 and 1.3).
TOOL_RACES = {("WARN", "sessionresumption_ticket", "check failed because of connect problem")}
# testssl's notes about its own client tools, not about the server: "No engine or GOST
# support via engine with your /usr/bin/openssl" depends on the machine's OpenSSL build.
TOOL_NOTES = ("engine_problem",)


@test
def testssl_reports_no_vulnerability_and_nothing_below_the_policy():
    p = pki()
    dual = (f'certificate = "{p}/default.crt"\nkey = "{p}/default.key"\n'
            f'certificate_rsa = "{p}/default.rsa.crt"\nkey_rsa = "{p}/default.rsa.key"\n'
            f'certificate_dir = "{p}/certs"\n')
    with ThreadedServer(echo_handler) as up:
        port = free_port()
        with Proxy(config(port, up.port, tls=dual, level="warn", access=False),
                   ready=lambda: None):
            out = os.path.join(tempfile.mkdtemp(prefix="testssl-"), "result.json")
            r = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings", "batch",
                                "--jsonfile", out, f"127.0.0.1:{port}"],
                               capture_output=True, text=True, timeout=600)
            check(os.path.exists(out), f"testssl wrote no result:\n{r.stdout[-2000:]}")
            findings = json.load(open(out))
    by_id = {f["id"]: f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        check("not offered" in by_id[proto]["finding"], f"{proto}: {by_id[proto]['finding']}")
    for proto in ("TLS1_2", "TLS1_3"):
        check(by_id[proto]["finding"].startswith("offered"), f"{proto}: {by_id[proto]}")
    for cat in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
        check("not offered" in by_id[cat]["finding"], f"{cat}: {by_id[cat]['finding']}")
    check(by_id["cipher_order"]["severity"] == "OK", f"server order: {by_id['cipher_order']}")
    bad, pki_only = [], []
    for f in findings:
        if f["severity"] in ("OK", "INFO", "DEBUG"):
            continue
        if (f["severity"], f["id"], f["finding"]) in TOOL_RACES:
            print(f"      testssl race (see TOOL_RACES): {f['id']}: {f['finding']}")
            continue
        if f["id"] in TOOL_NOTES:
            print(f"      testssl's own tools (see TOOL_NOTES): {f['id']}: {f['finding']}")
            continue
        (pki_only if f["id"].startswith(PKI_FINDINGS) else bad).append(
            f"{f['severity']} {f['id']}: {f['finding']}")
    print("      test-PKI findings (not the proxy's): " + "; ".join(pki_only))
    check(not bad, "testssl findings:\n" + "\n".join(bad))


if __name__ == "__main__":
    for tool in (BIN, MAKE_CERTS, TESTSSL):
        check(os.path.exists(tool), f"missing {tool}")
    sys.exit(run_all(sys.argv))

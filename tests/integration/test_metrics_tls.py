#!/usr/bin/env python3
"""The metrics endpoint for a remote Prometheus: HTTPS, client certificates.

In a namespace with 192.0.2.1 on its loopback interface (no traffic
leaves it), with certificates made by openssl (test_ipfix_tls.make_certs):

- ctd -t refuses metrics 192.0.2.1:9477 without the three TLS settings,
  naming the line; and with them but a key of mode 0644;
- ctd serves https://192.0.2.1:9477/metrics: a scraper with a client
  certificate of metrics-client-ca gets 200 and ctd's counters (the page
  ends with ctd_metrics_requests_total); one without a certificate, one
  with a certificate of another CA and a plain-HTTP request get nothing
  and count in ctd_ctl_refused_total; the default loopback endpoint is
  unchanged (other tests).

Usage: test_metrics_tls.py --ctd PATH
"""
import os
import subprocess

import ctdns
from ctdns import Ctd, check
import test_ipfix_tls as tls

ADDR = "192.0.2.1:9477"

SCRAPE = r"""
import socket, ssl, sys
d, mode = sys.argv[1], sys.argv[2]
s = socket.create_connection(("192.0.2.1", 9477), timeout=5)
if mode != "plain":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(d + "/ca.pem")
    if mode != "nocert":
        ctx.load_cert_chain(d + "/%s.pem" % mode, d + "/%s.key" % mode)
    s = ctx.wrap_socket(s, server_hostname="192.0.2.1")
got = b""
try:
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except (ssl.SSLError, OSError) as e:
    print("REFUSED:", e)
sys.stdout.write(got.decode(errors="replace"))
"""


def scrape(ns, tmp, mode):
    return ns.run(["python3", "-c", SCRAPE, tmp, mode], timeout=30)


def conf_check(binary, tmp, extra, want):
    conf = os.path.join(tmp, "m-%d.conf" % len(extra))
    with open(conf, "w") as f:
        f.write("metrics %s\n%s" % (ADDR, "".join(l + "\n" for l in extra)))
    r = subprocess.run([binary, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode != 0 and want in r.stderr,
          "ctd -t took %s (%d): %s%s" % (extra, r.returncode, r.stdout, r.stderr))
    print("ctd -t:", r.stderr.strip())


def main(args):
    for tool in ("openssl",):
        check(subprocess.run(["sh", "-c", "command -v " + tool],
                             capture_output=True).returncode == 0,
              "%s is missing (tests/run installs it)" % tool)
    with ctdns.sandbox("mtls") as (ns, tmp):
        os.chmod(tmp, 0o755)
        # An address that is not loopback, on the namespace's lo (no
        # module to load, nothing leaves the namespace).
        ns.run("ip addr add 192.0.2.1/32 dev lo")
        tls.make_certs(tmp)
        conf_check(args.ctd, tmp, [], "%s:1: metrics: an address that is not "
                   "loopback needs" % os.path.join(tmp, "m-0.conf"))
        loose = os.path.join(tmp, "loose.key")
        with open(os.path.join(tmp, "metrics.key"), "rb") as f, open(loose, "wb") as g:
            g.write(f.read())
        os.chmod(loose, 0o644)
        conf_check(args.ctd, tmp, [
            "metrics-tls-cert %s/metrics.pem" % tmp, "metrics-tls-key " + loose,
            "metrics-client-ca %s/ca.pem" % tmp], ":3: metrics-tls-key")
        ctd = Ctd(ns, args.ctd, tmp, [
            "--metrics", ADDR, "--metrics-tls-cert", tmp + "/metrics.pem",
            "--metrics-tls-key", tmp + "/metrics.key",
            "--metrics-client-ca", tmp + "/ca.pem"])
        ctd.wait_log("metrics on https://", 5)
        page = scrape(ns, tmp, "client")
        check(page.startswith("HTTP/1.0 200 OK") and
              "ctd_metrics_requests_total" in page and "REFUSED:" not in page,
              "the scraper with a client certificate got: %s" % page[:300])
        for mode in ("nocert", "stranger", "plain"):
            out = scrape(ns, tmp, mode)
            check("ctd_" not in out, "%s scraper got counters: %s" % (mode, out[:300]))
            print("%s scraper: %s" % (mode, out.strip()[:160] or "no answer"))
        st = ctd.stats()
        check(st["ctl_refused"] >= 2 and st["metrics_requests"] == 1,
              "refused %d (want >= 2: no certificate, another CA), requests "
              "%d (want 1)" % (st["ctl_refused"], st["metrics_requests"]))
        ctd.stop()
        print("metrics over TLS: the scraper with a client certificate got %d "
              "lines; no certificate, another CA's and plain HTTP got none; "
              "ctl_refused %d" % (page.count("\n"), st["ctl_refused"]))


if __name__ == "__main__":
    ctdns.main(main)

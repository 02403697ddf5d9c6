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
  unchanged (other tests);
- certificates rotated with SIGHUP: first a half-done rotation (a new
  certificate over the old one, its key not yet there) is refused like
  ctd -t would (a line naming the key, reload_failures 1) and the old
  certificate still serves;
  then a new server certificate, key and client CA renamed over the
  configured files: the next scrapers meet the new server certificate,
  one with a certificate of the new CA gets 200, one with the old CA's
  and one without a certificate are refused; a scraper that connected
  before the SIGHUP still gets its answer;
- with shards 2 the endpoint is the parent's, and SIGHUP reads its
  certificates again there too: a whole rotation serves the new server
  certificate to the new CA's scraper and refuses the old CA's.

Usage: test_metrics_tls.py --ctd PATH
"""
import os
import signal
import subprocess

import ctdns
from ctdns import Ctd, check
import test_ipfix_tls as tls

ADDR = "192.0.2.1:9477"

SCRAPE = r"""
import socket, ssl, sys
d, mode, ca = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.create_connection(("192.0.2.1", 9477), timeout=5)
got = b""
try:
    if mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(d + "/%s.pem" % ca)
        if mode not in ("nocert", "hold"):
            ctx.load_cert_chain(d + "/%s.pem" % mode, d + "/%s.key" % mode)
        if mode == "hold":
            ctx.load_cert_chain(d + "/client.pem", d + "/client.key")
        s = ctx.wrap_socket(s, server_hostname="192.0.2.1")
        peer = dict(x[0] for x in s.getpeercert()["subject"])
        print("PEER:", peer["commonName"], flush=True)
    if mode == "hold":    # connected: the request when told
        sys.stdin.readline()
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


def scrape(ns, tmp, mode, ca="ca"):
    """The scraper's output: PEER: the server certificate's name (when
    the handshake got that far), then the page or REFUSED: why."""
    return ns.run(["python3", "-c", SCRAPE, tmp, mode, ca], timeout=30)


def served(page, peer):
    return ("PEER: %s\nHTTP/1.0 200 OK" % peer) in page and \
        "ctd_metrics_requests_total" in page and "REFUSED:" not in page


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
        conf = os.path.join(tmp, "mtls")
        tls.install(tmp, conf, [("metrics.pem", "cert.pem"),
                                ("metrics.key", "cert.key"),
                                ("ca.pem", "client-ca.pem")])
        ctd = Ctd(ns, args.ctd, tmp, [
            "--metrics", ADDR, "--metrics-tls-cert", conf + "/cert.pem",
            "--metrics-tls-key", conf + "/cert.key",
            "--metrics-client-ca", conf + "/client-ca.pem"])
        ctd.wait_log("metrics on https://", 5)
        page = scrape(ns, tmp, "client")
        check(served(page, "ctd metrics"),
              "the scraper with a client certificate got: %s" % page[:300])
        for mode in ("nocert", "stranger", "plain"):
            out = scrape(ns, tmp, mode)
            check("ctd_" not in out, "%s scraper got counters: %s" % (mode, out[:300]))
            print("%s scraper: %s" % (mode, " ".join(out.split())[:160] or "no answer"))
        st = ctd.stats()
        check(st["ctl_refused"] >= 2 and st["metrics_requests"] == 1,
              "refused %d (want >= 2: no certificate, another CA), requests "
              "%d (want 1)" % (st["ctl_refused"], st["metrics_requests"]))
        print("metrics over TLS: the scraper with a client certificate got %d "
              "lines; no certificate, another CA's and plain HTTP got none; "
              "ctl_refused %d" % (page.count("\n"), st["ctl_refused"]))
        rotate(ns, tmp, conf, ctd)
        ctd.stop()
        sharded(ns, tmp, conf, args.ctd)


def rotate(ns, tmp, conf, ctd):
    """SIGHUP with a half-done rotation, then a whole one (module doc)."""
    tls.install(tmp, conf, [("metrics2.pem", "cert.pem")])
    ctd.proc.send_signal(signal.SIGHUP)
    tls.wait_count(ctd, "reload: keeping the running configuration", 1, 10)
    bad = [l for l in ctd.log_text().splitlines() if "reload: " in l]
    check(len(bad) == 2 and "--metrics-tls-key: " in bad[0] and
          "cert.key: " in bad[0] and "mismatch" in bad[0],
          "the half-done rotation: want the line naming the key, then the "
          "running configuration kept: %s" % bad)
    st = ctd.stats()
    check(st["reload_failures"] == 1 and st["reloads"] == 0,
          "reload_failures %d (want 1), reloads %d (want 0)"
          % (st["reload_failures"], st["reloads"]))
    page = scrape(ns, tmp, "client")
    check(served(page, "ctd metrics"), "after a failed reload the old "
          "certificate should still serve: %s" % page[:300])
    print("half-done rotation:", bad[0].split("reload: ", 1)[1])

    held = ns.start(["python3", "-c", SCRAPE, tmp, "hold", "ca"],
                    subprocess.PIPE, subprocess.PIPE, stdin=subprocess.PIPE,
                    text=True)
    check(held.stdout.readline().strip() == "PEER: ctd metrics",
          "the scraper held across the reload did not connect")
    tls.install(tmp, conf, [("metrics2.key", "cert.key"),
                            ("metrics2.pem", "cert.pem"),
                            ("ca2.pem", "client-ca.pem")])
    refused = ctd.stats()["ctl_refused"]
    ctd.proc.send_signal(signal.SIGHUP)
    tls.wait_count(ctd, "reload: metrics https://%s: certificates read again"
                   % ADDR, 1, 10)
    held.stdin.write("\n")
    held.stdin.close()
    out = held.stdout.read()
    held.wait(timeout=10)
    check(out.startswith("HTTP/1.0 200 OK") and "ctd_metrics_requests_total" in out,
          "the scraper connected before the SIGHUP got: %s" % out[:300])
    check(not tls.verifies(tmp, "ca2.pem", "client.pem") and
          tls.verifies(tmp, "ca2.pem", "client2.pem"),
          "the new client CA should take client2 and not client")
    page = scrape(ns, tmp, "client2", ca="ca2")
    check(served(page, "ctd metrics 2"), "the scraper with a certificate of "
          "the new CA got: %s" % page[:300])
    for mode, ca in (("client", "ca2"), ("nocert", "ca2"), ("client", "ca")):
        out = scrape(ns, tmp, mode, ca=ca)
        check("ctd_" not in out, "%s scraper (trusting %s) got counters after "
              "the rotation: %s" % (mode, ca, out[:300]))
        print("after the rotation, %s scraper trusting %s: %s"
              % (mode, ca, " ".join(out.split())[:160] or "no answer"))
    st = ctd.stats()
    check(st["reload_failures"] == 1 and st["reloads"] == 1 and
          st["ctl_refused"] >= refused + 2,
          "after the rotation: reload_failures %d (want 1), reloads %d "
          "(want 1), refused %d (want >= %d)" % (
              st["reload_failures"], st["reloads"], st["ctl_refused"],
              refused + 2))
    print("rotated: new server certificate served, the new CA's scraper "
          "answered, the old CA's and no certificate refused (ctl_refused "
          "+%d), a scrape connected across the SIGHUP answered"
          % (st["ctl_refused"] - refused))

def sharded(ns, tmp, conf, binary):
    """The parent of shards owns the endpoint: it re-reads on SIGHUP."""
    tls.install(tmp, conf, [("metrics.pem", "cert.pem"),
                            ("metrics.key", "cert.key"),
                            ("ca.pem", "client-ca.pem")])
    ctd = Ctd(ns, binary, tmp, [
        "--shards", "2", "--metrics", ADDR,
        "--metrics-tls-cert", conf + "/cert.pem",
        "--metrics-tls-key", conf + "/cert.key",
        "--metrics-client-ca", conf + "/client-ca.pem"])
    ctd.wait_log("metrics on https://", 10)
    page = scrape(ns, tmp, "client")
    check(served(page, "ctd metrics"), "shards 2: the scraper with a "
          "client certificate got: %s" % page[:300])
    tls.install(tmp, conf, [("metrics2.key", "cert.key"),
                            ("metrics2.pem", "cert.pem"),
                            ("ca2.pem", "client-ca.pem")])
    ctd.proc.send_signal(signal.SIGHUP)
    tls.wait_count(ctd, "reload: metrics https://%s: certificates read again"
                   % ADDR, 1, 10)
    page = scrape(ns, tmp, "client2", ca="ca2")
    check(served(page, "ctd metrics 2"), "shards 2, after the rotation: the "
          "new CA's scraper got: %s" % page[:300])
    out = scrape(ns, tmp, "client", ca="ca2")
    check("ctd_" not in out, "shards 2, after the rotation: the old CA's "
          "scraper got counters: %s" % out[:300])
    st = ctd.stats()
    check(st["shards"] == 2 and st["reload_failures"] == 0,
          "shards %d (want 2), reload_failures %d (want 0)"
          % (st["shards"], st["reload_failures"]))
    print("shards 2: the parent read its metrics certificates again on "
          "SIGHUP; the new CA's scraper answered, the old CA's refused")
    ctd.stop()


if __name__ == "__main__":
    ctdns.main(main)

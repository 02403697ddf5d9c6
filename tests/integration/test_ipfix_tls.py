#!/usr/bin/env python3
"""IPFIX over TLS: verified, mutual, acknowledged by ciphertext bytes.

A test CA, a server certificate for 127.0.0.1/localhost, a client
certificate, a second CA, a certificate for another name and an expired
one are made with openssl in a temporary directory. Collectors are
socat OPENSSL-LISTEN (verify=1: a client certificate is required), one
file per connection, decoded by libfixbuf's ipfixDump.

Refusals first, four ctds at once, each towards its own collector
while 40 flows are made: a CA that did not sign the server's
certificate, a name the certificate does not carry, an expired server
certificate, and no client certificate for a collector that wants one.
Each logs exactly one line saying why (the verify error, the
certificate's subject and expiry, the CA file) while retrying under the
backoff, counts every attempt in out_ipfix_tls_failures, and holds its
records: nothing counts as acknowledged (TLS 1.3 ends the client's
handshake before the server checked its certificate, so data the
server's TCP took before its "certificate required" alert must not be
final). A key readable by others is refused by ctd -t as file:line.

Then 5,000 flows over mutual TLS while the collector restarts the way an
upgrade does (network to it cut, drained, stopped; back 1 s later; ctd
reconnects with backoff, new handshake, templates again, what was not
acknowledged sent again). Afterwards one connection is dropped while
ctd is idle, by a collector that resumes sessions: the next handshake
resumes (tls_resumed). Every
flow reaches the collectors exactly once with the counters of ctd's JSON
record and of the traffic made; records = delivered + failed + held,
held 0. With --outage SECS (label soak) the collector stays away that
long.

Usage: test_ipfix_tls.py --ctd PATH [--outage SECS]
"""
import os
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, Traffic, check, flows
import ipfixtool

PORT = 4740
FLOWS, BATCH = 5000, 250
LINE = "TLS handshake refused"


def openssl(tmp, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=tmp, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "openssl %s failed: %s" % (args[0], r.stderr[-500:]))


def key_and_csr(tmp, name, cn, san):
    openssl(tmp, "req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn,
            *(["-addext", "subjectAltName=" + san] if san else []))
    os.chmod(os.path.join(tmp, name + ".key"), 0o600)


def make_ca(tmp, name):
    openssl(tmp, "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".pem", "-days", "2", "-subj", "/CN=ctd test " + name)


def sign(tmp, name, ca="ca", expired=False):
    if not expired:
        openssl(tmp, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
                "-copy_extensions", "copy", "-out", name + ".pem")
        return
    # x509 -req cannot date a certificate in the past; openssl ca can.
    with open(os.path.join(tmp, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
                "policy = p\ncopy_extensions = copy\n[p]\n"
                "commonName = supplied\n")
    open(os.path.join(tmp, "index.txt"), "w").close()
    with open(os.path.join(tmp, "serial"), "w") as f:
        f.write("1000\n")
    openssl(tmp, "ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem",
            "-keyfile", ca + ".key", "-in", name + ".csr", "-out", name + ".pem",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
            "-notext")


def make_certs(tmp):
    make_ca(tmp, "ca")
    make_ca(tmp, "otherca")
    make_ca(tmp, "ca2")      # the CA certificates are rotated to
    for name, cn, san, ca, expired in (
            ("server", "localhost", "IP:127.0.0.1,DNS:localhost", "ca", False),
            ("client", "ctd exporter", None, "ca", False),
            ("wrongname", "other.example", "DNS:other.example", "ca", False),
            ("expired", "localhost", "IP:127.0.0.1,DNS:localhost", "ca", True),
            ("metrics", "ctd metrics", "IP:192.0.2.1", "ca", False),
            # A scraper whose certificate another CA signed.
            ("stranger", "stranger", None, "otherca", False),
            # The next generation, for the rotations.
            ("server2", "localhost", "IP:127.0.0.1,DNS:localhost", "ca2", False),
            ("client2", "ctd exporter 2", None, "ca2", False),
            ("metrics2", "ctd metrics 2", "IP:192.0.2.1", "ca2", False)):
        key_and_csr(tmp, name, cn, san)
        sign(tmp, name, ca=ca, expired=expired)


def install(tmp, into, pairs):
    """Puts tmp's files (src, name) into directory into as an admin
    replaces certificates: written beside the target (a key mode 0600
    from the start) and renamed over it, so a reader sees the old file
    or the new one, never half of one."""
    os.makedirs(into, mode=0o755, exist_ok=True)
    for src, name in pairs:
        path = os.path.join(into, name)
        part = path + ".new"
        with open(os.path.join(tmp, src), "rb") as f:
            data = f.read()
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600 if name.endswith(".key") else 0o644)
        with os.fdopen(fd, "wb") as g:
            g.write(data)
        os.rename(part, path)


def verifies(tmp, ca, cert):
    """Whether ca signed cert (openssl verify): what a collector or a
    scraper that trusts only ca would accept."""
    return subprocess.run(["openssl", "verify", "-CAfile", ca, cert],
                          cwd=tmp, capture_output=True).returncode == 0


def wait_count(ctd, word, n, secs):
    """Waits until ctd's log has word n times (each reload's line)."""
    end = time.time() + secs
    while ctd.log_text().count(word) < n:
        check(time.time() < end, "ctd logged %r %d times, want %d:\n%s"
              % (word, ctd.log_text().count(word), n, ctd.log_text()[-2000:]))
        time.sleep(0.05)


class Collector:
    """socat OPENSSL-LISTEN on 127.0.0.1:port with a server certificate,
    requiring a client certificate from ca.pem; each connection's
    plaintext in tag-<pid>.bin."""

    def __init__(self, ns, tmp, port, tag, cert="server"):
        self.tmp, self.tag, self.port = tmp, tag, port
        c = os.path.join(tmp, cert)
        sink = "SYSTEM:exec cat > %s/%s-$$.bin" % (tmp, tag)
        self.err = os.path.join(tmp, "%s-%d.err" % (tag, port))
        self.proc = ns.start(
            ["socat", "-d", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,"
             "cert=%s.pem,key=%s.key,cafile=%s/ca.pem,verify=1"
             % (port, c, c, tmp), sink],
            subprocess.DEVNULL, open(self.err, "w"))
        ns.run("for i in $(seq 100); do ss -Hltn 'sport = :%d' | grep -q . "
               "&& exit 0; sleep 0.05; done; exit 1" % port)

    def children(self):
        r = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                           capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def stop(self):
        for pid in self.children():
            os.kill(pid, signal.SIGTERM)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def settled(ns, tmp, tag, secs=10):
    """Waits until the collector's files stop growing (all read)."""
    last, end = None, time.time() + secs
    while time.time() < end:
        now = sum(os.path.getsize(os.path.join(tmp, n))
                  for n in os.listdir(tmp) if n.startswith(tag + "-")
                  and n.endswith(".bin"))
        if now == last:
            return
        last = now
        time.sleep(0.5)


def tls_args(tmp, ca="ca", cert=True, name=None):
    a = ["--ipfix", "tls:127.0.0.1:%d" % PORT,
         "--ipfix-tls-ca", os.path.join(tmp, ca + ".pem")]
    if cert:
        a += ["--ipfix-tls-cert", os.path.join(tmp, "client.pem"),
              "--ipfix-tls-key", os.path.join(tmp, "client.key")]
    if name:
        a += ["--ipfix-tls-name", name]
    return a


# A collector that can resume sessions (Python's ssl sets the session id
# context OpenSSL servers need with client certificates; socat does not,
# and refuses a resumption with an internal error alert): it drops the
# first connection once the templates came, then says whether the next
# one resumed.
RESUMER = r"""
import socket, ssl, sys
d, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/server.pem", d + "/server.key")
ctx.load_verify_locations(d + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(4)
print("ready", flush=True)
for i in range(2):
    c, _ = ls.accept()
    s = ctx.wrap_socket(c, server_side=True)
    print("resumed" if s.session_reused else "new", flush=True)
    s.recv(65536)
    if i == 0:
        s.close()
print("done", flush=True)
sys.stdin.readline()
"""


def resumption(ns, tmp, binary):
    port = PORT + 9
    col = ns.start(["python3", "-c", RESUMER, tmp, str(port)],
                   subprocess.PIPE, subprocess.PIPE, stdin=subprocess.PIPE,
                   text=True)
    check(col.stdout.readline().strip() == "ready", "the resuming collector did not start")
    work = os.path.join(tmp, "resume")
    os.mkdir(work)
    ctd = Ctd(ns, binary, work, with_port(tls_args(tmp), port), tag="resume")
    said = [col.stdout.readline().strip() for _ in range(3)]
    check(said == ["new", "resumed", "done"], "the second connection did not "
          "resume the session: %s\n%s" % (said, ctd.log_text()[-1500:]))
    st = ctd.wait_stats("a resumed session", lambda s:
                        s["out_ipfix_tls_resumed"] == 1, 5)
    check(st["out_ipfix_tls_failures"] == 0, "tls_failures %d"
          % st["out_ipfix_tls_failures"])
    ctd.proc.send_signal(signal.SIGTERM)
    ctd.proc.wait(timeout=15)
    col.stdin.write("\n")
    col.stdin.close()
    col.wait(timeout=10)
    print("resumed: the collector's second connection reused the session "
          "(tls_resumed 1, tls_failures 0)")


def with_port(args, port):
    return [a.replace(":%d" % PORT, ":%d" % port) if a.startswith("tls:") else a
            for a in args]


def refusals(ns, tmp, binary):
    cases = [  # what, collector certificate, ctd's arguments, expected words
        ("wrong CA", "server", tls_args(tmp, ca="otherca"),
         # socat sends its CA along: the chain ends in an unknown root.
         "self-signed certificate in certificate chain"),
        ("wrong name", "wrongname", tls_args(tmp),
         "IP address mismatch"),
        ("expired", "expired", tls_args(tmp), "certificate has expired"),
        # The alert, or (when the collector's reset swallowed it) the
        # session closed before it was accepted: the same line then.
        ("no client certificate", "server", tls_args(tmp, cert=False),
         ("certificate required", "before it accepted the session")),
    ]
    runs = []
    for i, (what, cert, args, words) in enumerate(cases):
        port = PORT + 1 + i
        col = Collector(ns, tmp, port, "r%d" % i, cert)
        work = os.path.join(tmp, "r%d" % i)
        os.mkdir(work)
        # Held records go to the spool at once: no collector will take them.
        ctd = Ctd(ns, binary, work, with_port(args, port) +
                  ["--shutdown-timeout", "0"], tag="r%d" % i)
        runs.append((what, words, col, ctd))
    ns.traffic(flows("udp", 40, sport=30000, size=20, replies=1, reply_size=5))
    ns.run(["conntrack", "-D", "-p", "udp"])
    time.sleep(4)    # attempts at 0, 1 and 3 s (backoff)
    for what, words, col, ctd in runs:
        st = ctd.stats()
        lines = [l for l in ctd.log_text().splitlines() if "TLS" in l and
                 "refused" in l]
        # One line; a second only when the first was the guess of a
        # session closed unread and a later attempt read the alert.
        guess = "before it accepted the session"
        check(len(lines) == 1 or (len(lines) == 2 and guess in lines[0] and
                                  guess not in lines[1]),
              "%s: %d refusal lines, want 1: %s\n%s"
              % (what, len(lines), lines, ctd.log_text()[-2000:]))
        words = (words,) if isinstance(words, str) else words
        check(any(w in lines[-1] for w in words), "%s: the line does not say "
              "%r: %s" % (what, words, lines[-1]))
        check(st["out_ipfix_tls_failures"] >= 2,
              "%s: tls_failures %d after 4 s of retries"
              % (what, st["out_ipfix_tls_failures"]))
        check(st["out_ipfix_acked"] == 0 and st["out_ipfix_delivered"] == 0 and
              st["out_ipfix_held"] == st["out_ipfix_records"] >= 40,
              "%s: records counted delivered through a refused session: %s"
              % (what, {k: v for k, v in st.items() if k.startswith("out_ipfix")}))
        print("refused, %s: %s (tls_failures %d, held %d)"
              % (what, lines[0].split("refused: ", 1)[-1],
                 st["out_ipfix_tls_failures"], st["out_ipfix_held"]))
    for what, words, col, ctd in runs:
        ctd.proc.send_signal(signal.SIGTERM)
        check(ctd.proc.wait(timeout=15) == 0, "%s: ctd failed at exit" % what)
        col.stop()


def key_mode_refused(tmp, binary):
    conf = os.path.join(tmp, "bad.conf")
    key = os.path.join(tmp, "loose.key")
    with open(os.path.join(tmp, "client.key"), "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    os.chmod(key, 0o644)
    with open(conf, "w") as f:
        f.write("ipfix tls:127.0.0.1:%d\nipfix-tls-ca %s/ca.pem\n"
                "ipfix-tls-cert %s/client.pem\nipfix-tls-key %s\n"
                % (PORT, tmp, tmp, key))
    r = subprocess.run([binary, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    want = "%s:4: " % conf
    check(r.returncode != 0 and want in r.stderr and "0644" in r.stderr,
          "ctd -t took a key readable by others (%d): %s%s"
          % (r.returncode, r.stdout, r.stderr))
    print("ctd -t:", r.stderr.strip())


def read_streams(tmp, tags):
    recs, torn = [], {}
    for name in sorted(os.listdir(tmp)):
        if not name.endswith(".bin") or name.split("-")[0] not in tags:
            continue
        with open(os.path.join(tmp, name), "rb") as f:
            m, left = ipfixtool.split_messages(f.read())
        torn[name] = left
        if not m:
            continue
        path = os.path.join(tmp, name + ".whole")
        with open(path, "wb") as f:
            f.write(b"".join(m))
        recs += ipfixtool.ipfixdump(path)[0]
    return recs, torn


def wait_idle(ctd, secs=60):
    return ctd.wait_stats("everything acknowledged", lambda s:
                          s["out_ipfix_unacked"] == 0 and s["out_ipfix_dying"] == 0
                          and s["out_ipfix_held"] == 0, secs)


def rotate(ns, tmp, conf, ctd, gen):
    """Mid-storm, as an admin would: first a half-done rotation (the new
    client certificate renamed over the old one, its key not yet),
    which the reload refuses like ctd -t (one line naming the key,
    reload_failures) while the session goes on; then the key and a new
    CA bundle (ca2: the next collector's certificate chains to it, not
    to ca) and SIGHUP again: read for the next connection."""
    install(tmp, conf, [("client2.pem", "client.pem")])
    ctd.proc.send_signal(signal.SIGHUP)
    wait_count(ctd, "reload: keeping the running configuration", 1, 10)
    bad = [l for l in ctd.log_text().splitlines() if "reload: " in l]
    check(len(bad) == 2 and "--ipfix-tls-key: " in bad[0] and
          "client.key: " in bad[0] and "mismatch" in bad[0],
          "the half-done rotation: want the line naming the key, then the "
          "running configuration kept: %s" % bad)
    print("half-done rotation at flow %d: %s" % (gen.progress() or 0,
                                                bad[0].split("reload: ", 1)[1]))
    install(tmp, conf, [("client2.key", "client.key"), ("ca2.pem", "ca.pem")])
    ctd.proc.send_signal(signal.SIGHUP)
    wait_count(ctd, "certificates read again", 1, 10)
    st = ctd.stats()
    check(st["reloads"] == 1 and st["reload_failures"] == 1,
          "reloads %d (want 1), reload_failures %d (want 1)"
          % (st["reloads"], st["reload_failures"]))
    print("rotated at flow %d: new client certificate and CA bundle read, "
          "the session in use went on (reconnects %d)"
          % (gen.progress() or 0, st["out_ipfix_reconnects"]))


def export(ns, tmp, binary, outage):
    # ctd's own copies of the files, so that the rotation replaces them
    # and nothing else.
    conf = os.path.join(tmp, "ctdtls")
    install(tmp, conf, [("ca.pem", "ca.pem"), ("client.pem", "client.pem"),
                        ("client.key", "client.key")])
    # The next collector wants the new generation only: the old client
    # certificate does not verify against its CA, nor its certificate
    # against ctd's old bundle.
    check(not verifies(tmp, "ca2.pem", "client.pem") and
          not verifies(tmp, "ca.pem", "server2.pem") and
          verifies(tmp, "ca2.pem", "client2.pem") and
          verifies(tmp, "ca2.pem", "server2.pem"),
          "the certificate generations are not apart")
    col = Collector(ns, tmp, PORT, "a")
    work = os.path.join(tmp, "main")
    os.mkdir(work)
    ctd = Ctd(ns, binary, work, tls_args(conf))
    ctd.wait_log("session established", 10)
    gen = Traffic(ns, flows("udp", FLOWS, sport=20000, size=list(range(10, 60)),
                            replies=1, reply_size=list(range(1, 10)),
                            every=BATCH, run=["conntrack", "-D", "-p", "udp"]))
    while (gen.progress() or FLOWS) < FLOWS // 4:
        time.sleep(0.01)
    rotate(ns, tmp, conf, ctd, gen)
    ns.run(["nft", "add table inet cut; add chain inet cut in { type filter "
            "hook input priority -300; }; add rule inet cut in tcp dport %d "
            "drop" % PORT])
    settled(ns, tmp, "a")
    col.stop()
    ns.run(["nft", "delete table inet cut"])
    time.sleep(outage)
    # The collector comes back with the new certificates, as a Python
    # ssl server decoding with python3-ipfix.
    col = ipfixtool.TlsCollector(ns, tmp, PORT, "b", "server2", "ca2")
    gen.wait(timeout=120)
    made = {f.sport: f for f in gen.flows()}
    check(ctd.wait_records(FLOWS, 60) is not None, "JSON records missing")
    # The backoff doubles through an outage: the reconnect may come up to
    # about twice the outage after the cut.
    wait_idle(ctd, 60 + 2 * outage)
    counters = ctd.stop()
    settled(ns, tmp, "b")
    col.stop()
    check(not col.errors(), "the Python collector refused or failed to "
          "decode: %s" % col.errors()[-1000:])
    check(counters["out_ipfix_tls_failures"] == 0, "tls_failures %d: the "
          "new collector refused ctd\n%s" % (counters["out_ipfix_tls_failures"],
                                            ctd.log_text()[-2000:]))
    return ctd, made, counters, col.records()


def compare(ctd, made, recs):
    json_by = {r["orig"]["sport"]: r for r in ctd.records()
               if r["orig"]["dport"] != PORT and r["orig"]["sport"] in made}
    # Not the test's: ctd's own connections, the refusal phase's flows.
    seen = ipfixtool.once_each(recs, made,
                               lambda k: k[1] not in made or k[3] != 5555)
    bad = []
    for p, r in seen.items():
        j = json_by.get(p)
        got = (int(r["packetDeltaCount"]), int(r["octetDeltaCount"]),
               int(r["reversePacketDeltaCount"]), int(r["reverseOctetDeltaCount"]))
        js = j and (j["orig"]["packets"], j["orig"]["bytes"],
                    j["reply"]["packets"], j["reply"]["bytes"])
        if got != js or js != made[p].counts or \
                int(r["destinationTransportPort"]) != j["orig"]["dport"]:
            bad.append((p, got, js, made[p].counts))
    check(not bad, "IPFIX differs from the JSON record or the traffic: %s" % bad[:5])
    return seen


def phase(name, start):
    print("  (%s: %.1f s)" % (name, time.time() - start))
    return time.time()


def main(args):
    ipfixtool.need_tools()
    ipfixtool.need_python_ipfix()
    for tool in ("socat", "openssl", "pgrep", "ss"):
        check(subprocess.run(["sh", "-c", "command -v " + tool],
                             capture_output=True).returncode == 0,
              "%s is missing (tests/run installs it)" % tool)
    with ctdns.sandbox("tls") as (ns, tmp):
        os.chmod(tmp, 0o755)
        ns.sysctl("nf_conntrack_acct", 1)
        t = time.time()
        make_certs(tmp)
        key_mode_refused(tmp, args.ctd)
        t = phase("certificates", t)
        refusals(ns, tmp, args.ctd)
        t = phase("refusals", t)
        resumption(ns, tmp, args.ctd)
        t = phase("resumption", t)
        start = time.time()
        ctd, made, counters, py = export(ns, tmp, args.ctd, args.outage)
        phase("export", start)
        for name in ("json", "ipfix"):
            ctdns.identity(counters, name, None, 0)
        before, torn_a = read_streams(tmp, ("a",))
        after, torn_b = read_streams(tmp, ("b",))
        check(len(torn_a) >= 1 and len(torn_b) >= 1,
              "ctd never reconnected: streams %s" % (list(torn_a) + list(torn_b)))
        check(all(v == 0 for v in torn_b.values()),
              "the new collector got a torn message: %s" % torn_b)
        # Two decoders of the same streams: libfixbuf's ipfixDump for
        # both collectors, python3-ipfix (live, in the Python collector)
        # for the one after the rotation.
        seen = compare(ctd, made, before + after)
        seen_py = compare(ctd, made, before + py)
        data = lambda rs: len([r for r in rs if r.get("tid") in (256, 257, 258, 259)])
        check(data(py) == data(after), "python3-ipfix decoded %d data records, "
              "ipfixDump %d" % (data(py), data(after)))
        print("ipfix tls: %d flows, the collectors show %d once each with the "
              "JSON records' counters across a certificate rotation, a restart "
              "(%d s away) into the new certificates (streams %d, torn bytes "
              "%s; after the rotation python3-ipfix and ipfixDump both decoded "
              "%d data records, %d of the test's flows); reconnects %d, "
              "resent %d, acknowledged %d, tls_failures %d, reloads %d, "
              "reload_failures %d; records %d = delivered %d + failed %d + "
              "held 0 (%d of them ctd's own connections and earlier phases' "
              "flows); %.1f s"
              % (FLOWS, len(seen), args.outage, len(torn_a) + len(torn_b),
                 dict(torn_a, **torn_b), data(py), len(seen_py) - len(
                     [r for r in before if r.get("tid") in (256, 257, 258, 259)
                      and ipfixtool.flow_key(r)[1] in made]),
                 counters["out_ipfix_reconnects"], counters["out_ipfix_resent"],
                 counters["out_ipfix_acked"], counters["out_ipfix_tls_failures"],
                 counters["reloads"], counters["reload_failures"],
                 counters["out_ipfix_records"], counters["out_ipfix_delivered"],
                 counters["out_ipfix_failed"],
                 counters["out_ipfix_records"] - FLOWS, time.time() - start))


def arguments(ap):
    ap.add_argument("--outage", type=float, default=1.0,
                    help="seconds the collector stays away (default 1)")


if __name__ == "__main__":
    ctdns.main(main, arguments)

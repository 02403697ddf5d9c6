#!/usr/bin/env python3
"""One ctd with --netns all watches every namespace; records name theirs.

The test re-runs itself in a private mount namespace with a tmpfs on
/run/netns, so `all` means the test's namespaces only (never another
test's, whose sysctls ctd would otherwise set). A parent namespace runs
ctd with --netns all and a 2 KiB receive buffer that cannot grow; it
watches 10 children, 8 made before ctd starts and 2 after. Ground truth
per namespace: FLOWS UDP flows 127.0.0.1:(BASE+i) -> 127.0.0.1:5555 with
i+1 packets each, ended by `conntrack -F` in 4 namespaces at once (a
flush storm into the small buffer), then one by one in the rest. Every
flow of every child has exactly one record with its namespace's name
and its packet count; the parent's own flows have records without
"netns". Then one child with live flows is deleted: each of its flows
ends as netns_gone with the kernel's counters.

Last, a namespace that had flows before ctd could see it: a process
makes it (unshare -n), makes EARLY flows in it, and only then names it
in /run/netns (ip netns attach). Made before ctd set its sysctls, those
flows carry no event cache (nf_conntrack_events=2, no listener there),
so no DESTROY will ever come for them: the table dump ctd makes for a
namespace set up mid-run learns them (netns_early_flows, one log line
with its name), and deleting the namespace ends each as netns_gone.

ctd runs with --filter-netns listing ctd's own namespace ("self") and
every child but one, nc1: nc1's flows get no record and are counted in
records_filtered. ctd also exports IPFIX over UDP to a collector in the
parent: every namespace's records come in their own observation domain
(ipfix-domain + nsid + 1; the parent's: ipfix-domain), each domain's
templates before its first data, a message never mixing domains; the
source ports in each child's domain are that child's flows. `ctd -s`
has a line per namespace with its records, and a metrics scrape passes
`promtool check metrics` with ctd_netns_records_total{netns=...}.

Usage: test_netns.py --ctd PATH
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ctdns import NFT_TRACK_LO, Ctd, Fail, Netns, check
from ipfixtool import split_messages

FLOWS, BASE, CHILDREN, LATE = 300, 20000, 10, 2
FILTERED = "ctdnc1-%d" % os.getpid()     # Netns("nc1").name
DOMAIN, IPFIX_PORT, METRICS = 40, 4739, "127.0.0.1:9477"

COLLECTOR = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s.bind(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "wb", buffering=0) as f:
    while True:
        f.write(s.recv(65535))
"""

SCRAPE = r"""
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)), timeout=10)
c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
data = b""
while True:
    b = c.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
"""

GEN = r"""
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", base + i))
    for _ in range(i % 3 + 1):
        c.sendto(b"x" * 20, ("127.0.0.1", 5555))
    c.close()
"""

EARLY_GEN = r"""
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", base + i))
    c.sendto(b"x" * 20, ("127.0.0.1", 5555))
    socks.append(c)
print("sent", flush=True)
sys.stdin.read()
"""
EARLY, EARLY_BASE = 100, 30000


def private_run_netns():
    """Re-exec in a mount namespace of our own with an empty /run/netns."""
    if os.environ.get("CTD_NETNS_PRIVATE"):
        return None
    env = dict(os.environ, CTD_NETNS_PRIVATE="1")
    script = ('mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && '
              'exec "$0" "$@"')
    return subprocess.call(["unshare", "-m", "--propagation", "private",
                            "sh", "-c", script, sys.executable] + sys.argv,
                           env=env)


def child(i):
    ns = Netns("nc%d" % i).__enter__()
    return ns


def flows(ns):
    ns.run(["python3", "-c", GEN, str(BASE), str(FLOWS)])


def check_records(recs, name, reason):
    got = {}
    for r in recs:
        o = r["orig"]
        if r.get("netns") == name and o["dport"] == 5555 and \
                BASE <= o["sport"] < BASE + FLOWS:
            got.setdefault(o["sport"], []).append(r)
    missing = [p for p in range(BASE, BASE + FLOWS) if p not in got]
    doubled = [p for p, v in got.items() if len(v) > 1]
    check(not missing and not doubled, "%s: %d missing %s, %d doubled %s"
          % (name, len(missing), missing[:5], len(doubled), doubled[:5]))
    for p, (r,) in got.items():
        check(r["end_reason"] == reason, "%s: %s ended %s, not %s"
              % (name, p, r["end_reason"], reason))
        check(r["orig"].get("packets") == (p - BASE) % 3 + 1 and
              "counters_from" not in r,
              "%s: flow %d has %s packets (want %d)" % (
                  name, p, r["orig"].get("packets"), (p - BASE) % 3 + 1))


def ipfix_domains(path):
    """{domain: [source ports of its data records]}, checking that each
    domain's templates come before its data."""
    msgs, rest = split_messages(open(path, "rb").read())
    check(not rest, "a cut-short IPFIX datagram")
    sizes, ports = {}, {}
    for m in msgs:
        dom, off = int.from_bytes(m[12:16], "big"), 16
        while off + 4 <= len(m):
            sid = int.from_bytes(m[off:off + 2], "big")
            slen = int.from_bytes(m[off + 2:off + 4], "big")
            body = m[off + 4:off + slen]
            off += slen
            if sid == 2:
                parse_templates(body, dom, sizes)
            elif sid >= 256 and sid != 260:
                check((dom, sid) in sizes, "domain %d: data of template %d "
                      "before its template" % (dom, sid))
                size, sport_at = sizes[(dom, sid)]
                for r in range(0, len(body) - size + 1, size):
                    ports.setdefault(dom, []).append(int.from_bytes(
                        body[r + sport_at:r + sport_at + 2], "big"))
    return ports


def parse_templates(body, dom, sizes):
    """Record size and offset of sourceTransportPort (7) per template."""
    off = 0
    while off + 4 <= len(body):
        tid = int.from_bytes(body[off:off + 2], "big")
        n = int.from_bytes(body[off + 2:off + 4], "big")
        off += 4
        size, sport_at = 0, None
        for _ in range(n):
            ie = int.from_bytes(body[off:off + 2], "big")
            ln = int.from_bytes(body[off + 2:off + 4], "big")
            off += 8 if ie & 0x8000 else 4
            if ie == 7:
                sport_at = size
            size += ln
        sizes[(dom, tid)] = (size, sport_at)


def check_ipfix(path, nsids, kids_names):
    ports = ipfix_domains(path)
    flows = set(range(BASE, BASE + FLOWS))
    for name, nsid in nsids.items():
        dom = DOMAIN + nsid + 1
        got = [p for p in ports.get(dom, []) if p in flows]
        want = 0 if name == FILTERED else FLOWS
        check(len(got) == want and len(set(got)) == want,
              "IPFIX domain %d (%s): %d records of its flows, want %d"
              % (dom, name, len(got), want))
    own = [p for p in ports.get(DOMAIN, []) if p in flows]
    check(len(own) == FLOWS, "IPFIX domain %d (ctd's own): %d records"
          % (DOMAIN, len(own)))
    return len(ports)


def stats_lines(ctd, kids):
    """ctd -s, and each kid's line in its namespaces section."""
    text = ctd.query("-s")
    check("\nnamespaces:\n" in text, "ctd -s has no namespaces section")
    return text, {k.name: [l for l in text.splitlines()
                           if l.split()[:1] == [k.name]] for k in kids}


def check_stats(ctd, kids):
    """Every kid's line says records FLOWS, the filtered one's too; that
    one writes no record to wait for, and the 2 KiB buffer leaves its
    DESTROYs to the kernel's re-sends: polled, 60 s at most."""
    end = time.time() + 60
    while True:
        text, lines = stats_lines(ctd, kids)
        short = {n: l for n, l in lines.items()
                 if not (l and " records %d " % FLOWS in l[0] + " ")}
        if not short or time.time() > end:
            break
        time.sleep(0.25)
    check(not short, "ctd -s lines %s (want records %d)" % (short, FLOWS))
    nsids = {}
    for l in text.splitlines():
        f = l.split()
        if len(f) > 2 and f[1] == "nsid" and f[0].startswith("ctdnc"):
            nsids[f[0]] = int(f[2])
    return nsids


def check_metrics(ns, kids):
    page = ns.run(["python3", "-c", SCRAPE, METRICS])
    head, _, body = page.replace("\r\n", "\n").partition("\n\n")
    check(head.startswith("HTTP/1.0 200") and "ctd_build_info" in body,
          "metrics scrape: %r" % page[:200])
    if not shutil.which("promtool"):
        raise Fail("promtool not found: install the Debian package prometheus")
    r = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          "promtool check metrics: %s" % (r.stdout + r.stderr))
    for k in kids:
        want = FLOWS
        check('ctd_netns_records_total{netns="%s"} %d\n' % (k.name, want)
              in body, "no ctd_netns_records_total %d for %s" % (want, k.name))


def early_namespace(ctd):
    """A namespace with EARLY live flows before /run/netns names it;
    returns its name once ctd learned them, after it is deleted."""
    name = "ctdne-%d" % os.getpid()
    sh = ("ip link set lo up && nft '%s' && exec python3 -c '%s' %d %d"
          % (NFT_TRACK_LO, EARLY_GEN, EARLY_BASE, EARLY))
    p = subprocess.Popen(["unshare", "-n", "sh", "-c", sh], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        check(p.stdout.readline().strip() == "sent",
              "the early namespace made no flows")
        subprocess.run(["ip", "netns", "attach", name, str(p.pid)],
                       check=True)
        ctd.wait_log("network namespace %s: %d flows alive when ctd set it "
                     "up" % (name, EARLY), 10)
    finally:
        p.stdin.close()
        p.wait(timeout=10)
    subprocess.run(["ip", "netns", "del", name], check=True)
    return name


def check_early(recs, name):
    got = {}
    for r in recs:
        if r.get("netns") == name and r["orig"]["dport"] == 5555:
            got.setdefault(r["orig"]["sport"], []).append(r["end_reason"])
    want = {p: ["netns_gone"] for p in range(EARLY_BASE, EARLY_BASE + EARLY)}
    check(got == want, "early namespace: %d flows with records, %d once "
          "as netns_gone, want all %d; e.g. %s"
          % (len(got), sum(v == ["netns_gone"] for v in got.values()), EARLY,
             [r for r in recs if r["orig"].get("sport") == EARLY_BASE]))


def run(ctd_bin):
    kids = []
    try:
        with Netns("np") as parent, tempfile.TemporaryDirectory() as tmp:
            kids = [child(i) for i in range(CHILDREN - LATE)]
            dump = os.path.join(tmp, "ipfix.bin")
            coll = subprocess.Popen(parent.argv(
                ["python3", "-c", COLLECTOR, str(IPFIX_PORT), dump]))
            keep = ",".join(["self", "ctdne-%d" % os.getpid()] + [
                n for n in ("ctdnc%d-%d" % (i, os.getpid())
                            for i in range(CHILDREN)) if n != FILTERED])
            ctd = Ctd(parent, ctd_bin, tmp, [
                "--netns", "all", "--rcvbuf", "2048", "--rcvbuf-max", "2048",
                "--filter-netns", keep, "--metrics", METRICS,
                "--ipfix", "udp:127.0.0.1:%d" % IPFIX_PORT,
                "--ipfix-domain", str(DOMAIN)])
            kids += [child(i) for i in range(CHILDREN - LATE, CHILDREN)]
            end = time.time() + 10
            while time.time() < end and any(
                    "watching network namespace %s " % k.name
                    not in ctd.log_text() for k in kids):
                time.sleep(0.1)
            for k in kids:
                ctd.wait_log("watching network namespace %s " % k.name, 1)
                check(k.sysctl("nf_conntrack_events") == "1",
                      "%s: ctd left nf_conntrack_events alone" % k.name)
            for ns in kids + [parent]:
                flows(ns)
            storm = [subprocess.Popen(k.argv(["conntrack", "-F"]),
                                      stderr=subprocess.DEVNULL)
                     for k in kids[:4]]
            for p in storm:
                p.wait(timeout=60)
            for ns in kids[4:-1] + [parent]:
                ns.run("conntrack -F 2>/dev/null")
            want = FLOWS * (CHILDREN + 1 - 1)    # nc1 filtered
            ctd.wait_records(want - FLOWS, 120)
            time.sleep(1)
            nsids = check_stats(ctd, kids[:-1])
            check_metrics(parent, kids[:-1])
            gone = kids.pop()
            nsids[gone.name] = [int(l.split("nsid ")[1].split(")")[0])
                                for l in ctd.log_text().splitlines()
                                if "watching network namespace %s " % gone.name
                                in l][0]
            for p in gone.procs:
                p.wait()
            subprocess.run(["ip", "netns", "del", gone.name], check=True)
            waited = ctd.wait_records(want, 120)
            early = early_namespace(ctd)
            check(ctd.wait_records(want + EARLY, 60) is not None,
                  "no records for the early namespace's flows")
            time.sleep(1)
            counters = ctd.stop()
            coll.kill()
            coll.wait()
            print("".join(l + "\n" for l in ctd.log_text().splitlines()
                          if "gone" in l or "netns" in l))
            recs = ctd.records()
            for k in kids:
                if k.name != FILTERED:
                    check_records(recs, k.name, "destroy")
            check(not [r for r in recs if r.get("netns") == FILTERED],
                  "records of %s, which filter-netns leaves out" % FILTERED)
            check(counters.get("records_filtered", 0) >= FLOWS,
                  "records_filtered %s, want at least %d"
                  % (counters.get("records_filtered"), FLOWS))
            domains = check_ipfix(dump, nsids, [k.name for k in kids])
            check_records(recs, gone.name, "netns_gone")
            check_records(recs, None, "destroy")
            check_early(recs, early)
            check(counters.get("ends_netns_gone") == FLOWS + EARLY and
                  counters.get("netns_early_flows") == EARLY and
                  counters.get("netns_gone") == 2 and
                  counters.get("netns_flushed") == 2,
                  "netns counters: %s" % {k: v for k, v in counters.items()
                                          if "netns" in k})
            check(counters.get("nl_drops", 0) > 0 or
                  counters.get("nl_grows", 0) == 0,
                  "the 2 KiB buffer grew")
            print("netns: %d namespaces (%d made after start), %d records, "
                  "every flow once with its namespace; %d netns_gone; "
                  "%d socket drops re-sent by the kernel (%.1f s); %s left "
                  "out by filter-netns (%d records_filtered); IPFIX in %d "
                  "observation domains"
                  % (CHILDREN, LATE, len(recs), FLOWS,
                     counters.get("nl_drops", 0), waited or -1, FILTERED,
                     counters.get("records_filtered", 0), domains))
    finally:
        for k in kids:
            k.__exit__(None, None, None)


def main():
    rc = private_run_netns()
    if rc is not None:
        return rc
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctd", required=True)
    args = ap.parse_args()
    try:
        run(args.ctd)
    except Fail as e:
        print("FAIL:", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""IPFIX over TCP survives a collector restart in the middle of a storm.

A collector (a plain TCP server that stores what each connection
brought) runs on 127.0.0.1:4739; ctd exports to it over TCP while 6,000
UDP flows are made and deleted in batches. A third of the way through,
the collector restarts the way an upgrade does: the network to it is cut
(nft drops what arrives for port 4739), it reads what it has, closes and
exits; the network comes back and 3 s later a new collector listens.
Meanwhile ctd's records wait (buffer, dying list), ctd reconnects with
backoff and sends again whatever the old connection's TCP had not
acknowledged.

Every stream must be whole IPFIX messages (the old one may end in a torn
message: the cut), and libfixbuf's ipfixDump must decode the lot, with
every flow exactly once, packets and bytes both ways right. At the end
ctd says nothing is left unacknowledged.

Usage: test_ipfix_tcp.py --ctd PATH
"""
import json
import os
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, Traffic, check, flows
import ipfixtool

PORT = 4739
FLOWS, BATCH = 6000, 250

COLLECTOR = r"""
import os, select, signal, socket, sys
outdir, tag = sys.argv[1], sys.argv[2]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 4739))
ls.listen(4)
conns, n, stop = {}, 0, []
signal.signal(signal.SIGUSR1, lambda *a: stop.append(1))
print("ready", flush=True)
while not stop:
    try:
        r, _, _ = select.select([ls] + list(conns), [], [], 0.2)
    except InterruptedError:
        continue
    for s in r:
        if s is ls:
            c, _ = ls.accept()
            conns[c] = open(os.path.join(outdir, "%s-%d.bin" % (tag, n)), "wb")
            n += 1
            continue
        d = s.recv(1 << 20)
        if not d:
            conns.pop(s).close(); s.close()
        else:
            conns[s].write(d)
# Drain what arrived, then close (FIN, not RST: nothing unread).
for s, f in conns.items():
    s.setblocking(False)
    while True:
        try:
            d = s.recv(1 << 20)
        except BlockingIOError:
            break
        if not d:
            break
        f.write(d)
    f.close()
    s.close()
ls.close()
"""

# Answered UDP flows from 127.0.0.1:20000+i, deleted every BATCH flows.
TRAFFIC = flows("udp", FLOWS, sport=20000, size=list(range(10, 60)),
                replies=1, reply_size=list(range(1, 10)), every=BATCH,
                run=["conntrack", "-D", "-p", "udp"])

CUT = ("add table inet cut; "
       "add chain inet cut in { type filter hook input priority -300; }; "
       "add rule inet cut in tcp dport %d drop" % PORT)


def start_collector(ns, tmp, tag):
    p = ns.start(["python3", "-c", COLLECTOR, tmp, tag], subprocess.PIPE,
                 open(os.path.join(tmp, tag + ".err"), "w"), text=True)
    check(p.stdout.readline().strip() == "ready", "collector %s did not start" % tag)
    return p


def restart_collector(ns, tmp, old):
    ns.run(["nft", CUT])
    old.send_signal(signal.SIGUSR1)
    old.wait(timeout=20)
    ns.run(["nft", "delete table inet cut"])
    time.sleep(3)
    return start_collector(ns, tmp, "b")


def read_streams(tmp):
    """Each connection's whole messages decoded by ipfixDump on their own
    (a connection is a transport session: its own templates and sequence
    numbers). Returns the data records, totals and torn tail bytes."""
    recs, totals, torn = [], [0, 0, 0], {}
    for name in sorted(os.listdir(tmp)):
        if not name.endswith(".bin"):
            continue
        with open(os.path.join(tmp, name), "rb") as f:
            m, left = ipfixtool.split_messages(f.read())
        torn[name] = left
        path = os.path.join(tmp, name + ".whole")
        with open(path, "wb") as f:
            f.write(b"".join(m))
        r, t, _ = ipfixtool.ipfixdump(path)
        recs += r
        totals = [a + b for a, b in zip(totals, t)]
    return recs, totals, torn


def unacked(ctd):
    st = json.loads(ctd.query("-s", "--json"))
    return st["counters"] if "counters" in st else st


def main(args):
    ipfixtool.need_tools()
    with ctdns.sandbox("ipt") as (ns, tmp):
        ns.sysctl("nf_conntrack_acct", 1)
        col = start_collector(ns, tmp, "a")
        ctd = Ctd(ns, args.ctd, tmp, ["--ipfix", "tcp:127.0.0.1:%d" % PORT])
        ctd.wait_log("connected", 10)
        gen = Traffic(ns, TRAFFIC)
        while (gen.progress() or FLOWS) < FLOWS // 3:
            pass
        col = restart_collector(ns, tmp, col)
        gen.wait(timeout=300)
        made = {f.sport: f for f in gen.flows()}
        check(ctd.wait_records(FLOWS, 60) is not None, "JSON records missing")
        deadline = time.time() + 60
        while time.time() < deadline:
            out = ctd.query("-s")
            vals = dict(l.split()[:2] for l in out.splitlines() if len(l.split()) == 2)
            if vals.get("out_ipfix_unacked") == "0" and \
                    int(vals.get("out_ipfix_dying", "1")) == 0:
                break
            time.sleep(0.5)
        check(vals.get("out_ipfix_unacked") == "0",
              "ctd still has unacknowledged records: %s" % vals.get("out_ipfix_unacked"))
        counters = ctd.stop()
        # ctd's own connections to the collectors are flows too: those
        # that ended (the cut one) have records as well.
        own = sum(1 for r in ctd.records() if r["orig"]["dport"] == PORT)
        for name in ("json", "ipfix"):
            ctdns.identity(counters, name, FLOWS + own)
        col.send_signal(signal.SIGUSR1)
        col.wait(timeout=20)
        recs, (nmsg, ndata, ntmpl), torn = read_streams(tmp)
        check(len(torn) >= 2, "ctd never reconnected: streams %s" % list(torn))
        check(all(v == 0 for k, v in torn.items() if k.startswith("b")),
              "the new collector got a torn message: %s" % torn)
        seen = ipfixtool.once_each(recs, made,
                                   lambda k: PORT in (k[1], k[3]))
        bad = []
        for p, r in seen.items():
            want = made[p].counts if p in made else "no such flow made"
            got = (int(r["packetDeltaCount"]), int(r["octetDeltaCount"]),
                   int(r["reversePacketDeltaCount"]), int(r["reverseOctetDeltaCount"]))
            if got != want:
                bad.append((p, got, want))
        check(not bad, "wrong counters: %s" % bad[:5])
        print("ipfix tcp: %d flows sent, the collector shows %d once each across "
              "a restart (streams %s, torn bytes %s); %d messages, %d data records "
              "decoded by ipfixDump; reconnects %d, records sent again %d, "
              "acknowledged %d; records %d = delivered %d, held 0"
              % (FLOWS, len(seen), len(torn), torn, nmsg, ndata,
                 counters.get("out_ipfix_reconnects", -1),
                 counters.get("out_ipfix_resent", -1),
                 counters.get("out_ipfix_acked", -1),
                 counters["out_ipfix_records"], counters["out_ipfix_delivered"]))


if __name__ == "__main__":
    ctdns.main(main)

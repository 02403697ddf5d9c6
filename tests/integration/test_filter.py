#!/usr/bin/env python3
"""Filters decide which flows get records, and a reload changes them.

ctd runs with `filter-proto udp`, `ignore-dst 127.0.0.2` and
`filter-src 127.0.0.0/8,::1` from its config file. Made: UDP flows to
127.0.0.1 (kept), UDP flows to 127.0.0.2 (ignored by destination), UDP
flows over ::1 (kept), TCP connections (not UDP: left out). Then the file
says `filter-proto tcp` and ctd gets SIGHUP: new TCP connections are
recorded and new UDP flows are not. Every kept flow exactly once, no
record for a left-out one, and records_filtered counts the rest.

Usage: test_filter.py --ctd PATH
"""
import os
import signal
import time

import ctdns
from ctdns import Ctd, check, flows

N = 200


def make(ns, kind, base, dst):
    """N flows to dst: one-byte UDP datagrams to port 5555 (no server) or
    TCP connections to 6666, from 127.0.0.1 (::1 for an IPv6 dst) and
    ports base+i; the source ports made."""
    src = "::1" if ":" in dst else "127.0.0.1"
    s = flows("udp", N, sport=base, src=src, dst=dst, size=1, listen=False) \
        if kind == "udp" else flows("tcp", N, sport=base, dst=dst, dport=6666)
    return {f.sport for f in ns.traffic(s)}


def main(args):
    with ctdns.sandbox("fi") as (ns, tmp):
        conf = os.path.join(tmp, "ctd.conf")
        with open(conf, "w") as f:
            f.write("filter-proto udp\nignore-dst 127.0.0.2\n"
                    "filter-src 127.0.0.0/8,::1\n")
        ns.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"])
        ctd = Ctd(ns, args.ctd, tmp, ["-c", conf])
        kept = make(ns, "udp", 20000, "127.0.0.1")
        dropped = make(ns, "udp", 21000, "127.0.0.2")
        kept |= make(ns, "udp", 22000, "::1")
        dropped |= make(ns, "tcp", 23000, "127.0.0.1")
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(len(kept), 30) is not None,
              "records for the kept flows never arrived")
        with open(conf, "w") as f:
            f.write("filter-proto tcp\n")
        os.kill(ctd.proc.pid, signal.SIGHUP)
        ctd.wait_log("new filter in effect", 10)
        kept |= make(ns, "tcp", 24000, "127.0.0.1")
        dropped |= make(ns, "udp", 25000, "127.0.0.1")
        ns.run(["conntrack", "-F"])
        ctd.wait_records(len(kept), 30)
        time.sleep(1)
        counters = ctd.stop()
        counts = {}
        for r in ctd.records():
            port = r["orig"].get("sport")
            counts[port] = counts.get(port, 0) + 1
        missing = sorted(kept - set(counts))
        doubled = sorted(p for p in kept if counts.get(p, 0) > 1)
        leaked = sorted(p for p in dropped if p in counts)
        check(not missing and not doubled and not leaked,
              "%d kept: %d missing %s, %d doubled; %d left-out flows "
              "recorded %s" % (len(kept), len(missing), missing[:5],
                               len(doubled), len(leaked), leaked[:5]))
        check(counters.get("records_filtered", 0) >= len(dropped),
              "records_filtered %s, left out %d"
              % (counters.get("records_filtered"), len(dropped)))
        print("filter: %d flows kept, each recorded once; %d left out "
              "(protocol, ignored destination, then after a reload the "
              "other protocol), records_filtered %d"
              % (len(kept), len(dropped), counters["records_filtered"]))


if __name__ == "__main__":
    ctdns.main(main)

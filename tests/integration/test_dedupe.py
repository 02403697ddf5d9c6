#!/usr/bin/env python3
"""Another reliable listener that falls behind makes the kernel send
DESTROY events again, to every listener; ctd must still write one record
per flow.

A second ctnetlink socket subscribes to DESTROY with
NETLINK_BROADCAST_ERROR and a tiny buffer and does not read: each
DESTROY that does not fit in it stays on the kernel's dying list and is
broadcast again, so ctd receives it more than once. After a while that
socket is closed and the kernel delivers the rest. Every flow must have
exactly one record, and ctd must have dropped repeats (destroy_duplicates
> 0), or the test proves nothing.

Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555.

Usage: test_dedupe.py --ctd PATH
"""
import time

import ctdns
from ctdns import Ctd, check, flows

FLOWS, BASE = 2000, 30000


def main(args):
    with ctdns.sandbox("dd") as (ns, tmp):
        ctd = Ctd(ns, args.ctd, tmp, [])
        slow = ctdns.SlowListener(ns)
        want = {f.sport for f in ns.traffic(flows("udp", FLOWS, sport=BASE))}
        ns.run(["conntrack", "-F"])
        time.sleep(3)
        # Health names the listener that holds them, the log says why.
        health = ctd.query("-s")
        check("netlink port %d " % slow.portid in health,
              "health does not name the stuck listener (port %d):\n%s"
              % (slow.portid, health))
        check("another reliable listener does not read" in ctd.log_text(),
              "no log line about the DESTROYs sent again")
        slow.close()
        waited = ctd.wait_records(FLOWS, 60)
        time.sleep(1)
        counters = ctd.stop()
        counts = {}
        for r in ctd.records():
            o = r["orig"]
            if o["dport"] == 5555 and o["sport"] in want:
                counts[o["sport"]] = counts.get(o["sport"], 0) + 1
        missing = sorted(want - set(counts))
        doubled = sorted(k for k, v in counts.items() if v > 1)
        check(not missing and not doubled,
              "%d flows: %d missing %s, %d doubled %s (repeats dropped %d)"
              % (FLOWS, len(missing), missing[:5], len(doubled), doubled[:5],
                 counters.get("destroy_duplicates", 0)))
        dups = counters.get("destroy_duplicates", 0)
        check(dups > 0, "the kernel sent no DESTROY twice: the test "
              "proves nothing (events_destroy %s)"
              % counters.get("events_destroy"))
        print("dedupe: %d flows, %d DESTROY events received, %d repeats "
              "dropped, every flow recorded exactly once (%.1f s)"
              % (FLOWS, counters.get("events_destroy", 0), dups,
                 waited or -1))


if __name__ == "__main__":
    ctdns.main(main)

#!/usr/bin/env python3
"""Flows that began before ctd, under nf_conntrack_events=2, still get
their final records.

With events=2 ("auto") and no listener, the kernel gives new conntracks no
event extension: they will never send any event, not even DESTROY. ctd
loads them with its startup dump and, when they outlive their timeout,
checks them against the kernel's table; gone means a final record with
end_reason "expired", start_seen false, and the counters the dump read.

Ground truth: N UDP flows 127.0.0.1:(21000+i) -> 127.0.0.1:5555 with
10 + i bytes of payload, half of them answered with 5 bytes, made before
ctd starts, with a 3 s UDP timeout; plus M flows made after ctd starts,
which must end normally (end_reason "destroy").

The kernel's "is anyone listening" check for events=2 is not per
namespace on every kernel: with another ctnetlink listener anywhere on the
host (a conntrackd, a ctd in another test), the early flows get the event
extension after all and end with a DESTROY of their own. That record is
as good (the kernel's own end time); the test accepts it, says so, and
still requires exactly one record per flow with the right counters.

Usage: test_startup.py --ctd PATH
"""

import ctdns
from ctdns import Ctd, check, flows

BEFORE, AFTER = 50, 20


def make(ns, base, n, dport):
    """n flows 127.0.0.1:(base+i) -> 127.0.0.1:dport with 10 + i bytes,
    every other one answered with 5 bytes."""
    return ns.traffic(flows("udp", n, sport=base, dport=dport,
                            size=list(range(10, 10 + n)), replies=[1, 0],
                            reply_size=5))


def main(args):
    with ctdns.sandbox("su") as (ns, tmp):
        check(ns.sysctl("nf_conntrack_events", 2) == "2", "cannot set events=2")
        ns.sysctl("nf_conntrack_acct", 1)
        ns.sysctl("nf_conntrack_timestamp", 1)
        ns.sysctl("nf_conntrack_udp_timeout", 3)
        ns.sysctl("nf_conntrack_udp_timeout_stream", 3)
        made = make(ns, 21000, BEFORE, 5555)
        check(ns.conntrack_count() == BEFORE, "flows before ctd not tracked")
        ctd = Ctd(ns, args.ctd, tmp, ["--expiry-slack", "1",
                                     "--check-interval", "1"])
        ctd.wait_log("loaded", 10)
        made += make(ns, 23000, AFTER, 5556)
        waited = ctd.wait_records(BEFORE + AFTER, 60)
        counters = ctd.stop()
        recs = ctd.records()
    judge(made, recs, counters, waited)


def judge(made, recs, counters, waited):
    by_port = {}
    for r in recs:
        by_port.setdefault(r["orig"].get("sport"), []).append(r)
    bad = []
    for i, f in enumerate(made):
        port = f.sport
        got = by_port.get(port, [])
        if len(got) != 1:
            bad.append("port %d: %d records" % (port, len(got)))
            continue
        r = got[0]
        reason = ("expired", "destroy") if i < BEFORE else ("destroy",)
        have = (r["orig"].get("packets"), r["orig"].get("bytes"),
                r["reply"].get("packets"), r["reply"].get("bytes"))
        want = f.counts
        if r["end_reason"] not in reason or have != want or \
                r["start_seen"] != (i >= BEFORE):
            bad.append("port %d: %s %s start_seen=%s, want %s %s"
                       % (port, r["end_reason"], have, r["start_seen"],
                          "/".join(reason), want))
    extra = len(recs) - (BEFORE + AFTER - sum(1 for b in bad if ": 0 records" in b))
    print("startup: %d flows before ctd, %d after; %d records in %s; "
          "expired %d, destroy %d, dumps %d, bad %d"
          % (BEFORE, AFTER, len(recs),
             "%.1fs" % waited if waited is not None else "timeout",
             counters.get("ends_expired", 0), counters.get("ends_destroy", 0),
             counters.get("dumps", 0), len(bad)))
    early = [r["end_reason"] for r in recs
             if 21000 <= r["orig"].get("sport", 0) < 21000 + BEFORE]
    if "destroy" in early:
        print("note: %d of the early flows ended with the kernel's DESTROY "
              "(another ctnetlink listener on this host gave them the event "
              "extension); %d expired here" % (early.count("destroy"),
                                               early.count("expired")))
    check(not bad and not extra, "%s %s" % ("; ".join(bad[:10]),
                                          "extra records: %d" % extra if extra else ""))


if __name__ == "__main__":
    ctdns.main(main)

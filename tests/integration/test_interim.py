#!/usr/bin/env python3
"""A long flow gets interim records whose deltas add up to the kernel's
final counters.

One UDP flow 127.0.0.1:24000 -> 127.0.0.1:5557 exchanges K request/reply
pairs (100 and 50 bytes of payload) spread over a few seconds while ctd
runs with --active-timeout 1 (table dumps every 0.5 s). Then the flow is
flushed. Ground truth: K packets and K * 128 bytes one way, K packets and
K * 78 bytes back. The interim records ("active") and the final record
("destroy") must carry deltas whose sums equal the final totals, which
must equal the ground truth.

Usage: test_interim.py --ctd PATH
"""

import ctdns
from ctdns import Ctd, check, flows

K = 40


def sums(recs, direction, key):
    return sum(r[direction]["delta_" + key] for r in recs)


def main(args):
    with ctdns.sandbox("ia") as (ns, tmp):
        ctd = Ctd(ns, args.ctd, tmp, ["--active-timeout", "1",
                                     "--pending-interval", "0"])
        made, = ns.traffic(flows("udp", 1, sport=24000, dport=5557, size=100,
                                 packets=K, replies=K, reply_size=50, gap=0.1))
        ns.run(["conntrack", "-F"])
        ctd.wait_records(1, 10)
        counters = ctd.stop()
        recs = [r for r in ctd.records() if r["orig"].get("sport") == 24000]
    interim = [r for r in recs if r["end_reason"] == "active"]
    final = [r for r in recs if r["end_reason"] == "destroy"]
    check(len(final) == 1, "%d final records, want 1" % len(final))
    check(len(interim) >= 2, "%d interim records, want at least 2 "
          "(the flow lived %.1f s)" % (len(interim), K * 0.1))
    f = final[0]
    want = {"orig": (made.packets, made.bytes),
            "reply": (made.reply_packets, made.reply_bytes)}
    for d in ("orig", "reply"):
        got = (f[d]["packets"], f[d]["bytes"])
        check(got == want[d], "final %s counters %s, want %s" % (d, got, want[d]))
        for key in ("packets", "bytes"):
            total = sums(interim + final, d, key)
            check(total == f[d][key], "%s %s deltas add up to %d, total is %d"
                  % (d, key, total, f[d][key]))
    last = 0
    for r in interim:
        check(r["orig"]["packets"] >= last, "interim totals went backwards")
        last = r["orig"]["packets"]
    print("interim: 1 flow, %d interim records + 1 final; deltas sum to "
          "%d/%d packets, %d/%d bytes; dumps %d"
          % (len(interim), sums(recs, "orig", "packets"),
             sums(recs, "reply", "packets"), sums(recs, "orig", "bytes"),
             sums(recs, "reply", "bytes"), counters.get("dumps", 0)))


if __name__ == "__main__":
    ctdns.main(main)

#!/usr/bin/env python3
"""The vertical slice against the real kernel: ctd -f in a namespace,
known flows in, one JSON record per flow out.

traffic.py (inside the namespace) captures loopback and makes 1,100
UDP flows and 250 complete TCP connections over IPv4 and IPv6, each with
its own 5-tuple and known payloads; closed TCP connections end through a
1 s TIME_WAIT timeout and the rest by `conntrack -F`. Then every record is
checked against the capture: exactly one record per flow, right tuple,
right packet and byte counts in both directions (UDP also against the
payload sizes, which checks the capture itself), kernel times, TCP state;
and the `-f` stream shows every DESTROY.

Usage: test_slice.py --ctd PATH
"""
import time

import ctdns
from ctdns import Ctd, Traffic, check, flows


def key(proto, src, sport, dst, dport):
    return (proto, src, sport, dst, dport)


def udp(src, sport, count):
    """Payloads of 1-500 bytes, each answered with half as many except
    every tenth flow, which gets no answer."""
    return flows("udp", count, src=src, sport=sport, dport=sport - 1,
                 size=list(range(1, 501)), replies=[1] * 9 + [0],
                 reply_size=[n // 2 for n in range(1, 501)])


def tcp(src, sport, count):
    """Complete connections: 100 + i bytes one way, 10 + i back."""
    return flows("tcp", count, src=src, sport=sport, dport=sport - 1,
                 size=list(range(100, 100 + count)),
                 reply_size=list(range(10, 10 + count)))


# Each flow with its own fixed 5-tuple (explicit source ports, so none is
# reused), over 127.0.0.1 and ::1.
TRAFFIC = [udp("127.0.0.1", 20001, 1000), udp("::1", 22001, 100),
           tcp("127.0.0.1", 30001, 200), tcp("::1", 32001, 50)]


def judge_record(f, r):
    """Returns a list of problems with record r for ground-truth flow f."""
    bad = []
    have = [r["orig"].get("packets"), r["orig"].get("bytes"),
            r["reply"].get("packets"), r["reply"].get("bytes")]
    if have != f.captured:
        bad.append("counters %s, capture says %s" % (have, f.captured))
    if f.proto == "udp" and f.captured != list(f.counts):
        bad.append("capture %s disagrees with payloads %s" % (f.captured, f.counts))
    if r["time_source"] != "kernel" or not r["start_ms"] <= r["end_ms"] or \
            r["duration_ms"] != r["end_ms"] - r["start_ms"]:
        bad.append("times %s..%s (%s)" % (r["start_ms"], r["end_ms"], r["time_source"]))
    if f.proto == "tcp" and "tcp_state" not in r:
        bad.append("no tcp_state")
    if r["reply"]["src"] != f.dst or r["reply"]["dport"] != f.sport:
        bad.append("reply tuple %s" % r["reply"])
    if not isinstance(r["id"], int) or r["end_reason"] != "destroy":
        bad.append("id %r end_reason %r" % (r["id"], r["end_reason"]))
    return bad


def compare(truth, recs):
    by = {}
    for r in recs:
        o = r["orig"]
        by.setdefault(key(r["proto"], o["src"], o.get("sport"), o["dst"],
                          o.get("dport")), []).append(r)
    missing, doubled, wrong = [], [], []
    for f in truth:
        k = f.key
        got = by.pop(k, [])
        if not got:
            missing.append(k)
        elif len(got) > 1:
            doubled.append(k)
        elif judge_record(f, got[0]):
            wrong.append((k, judge_record(f, got[0])))
    return missing, doubled, wrong, by


def main(args):
    with ctdns.sandbox("sl") as (ns, tmp):
        ns.sysctl("nf_conntrack_tcp_timeout_time_wait", 1)
        ctd = Ctd(ns, args.ctd, tmp, ["-f"])
        for name in ("events", "acct", "timestamp"):
            check(ns.sysctl("nf_conntrack_" + name) == "1",
                  "ctd did not set nf_conntrack_%s=1" % name)
        t0 = time.time()
        gen = Traffic(ns, *TRAFFIC, capture=True)
        drops = gen.wait(timeout=120)["capture_drops"]
        made = list(gen.flows())
        time.sleep(3)
        ns.run(["conntrack", "-F"])
        check(drops == 0, "the capture dropped %d packets: "
              "no ground truth" % drops)
        check(all(f.captured for f in made),
              "the capture missed whole flows")
        n = len(made)
        check(ctd.wait_records(n, 30) is not None, "only %d of %d records "
              "after 30 s" % (ctd.count_records(), n))
        elapsed = time.time() - t0
        time.sleep(0.5)
        counters = ctd.stop()
        recs = ctd.records()
        destroy_lines = sum(1 for line in open(ctd.out) if " DESTROY " in line)
    missing, doubled, wrong, extra = compare(made, recs)
    events = counters["events_new"] + counters["events_update"] + counters["events_destroy"]
    print("slice: %d flows created, %d records; %d missing, %d doubled, %d wrong, "
          "%d extra; %d events (%d NEW, %d UPDATE, %d DESTROY) in %.1f s of "
          "traffic+teardown, %d -f DESTROY lines"
          % (n, len(recs), len(missing), len(doubled), len(wrong), len(extra),
             events, counters["events_new"], counters["events_update"],
             counters["events_destroy"], elapsed, destroy_lines))
    problems = []
    if missing:
        problems.append("missing %s" % missing[:5])
    if doubled:
        problems.append("doubled %s" % doubled[:5])
    if wrong:
        problems.append("wrong %s" % wrong[:3])
    if extra:
        problems.append("extra %s" % list(extra)[:5])
    if destroy_lines < n:
        problems.append("-f printed %d DESTROY lines for %d flows" % (destroy_lines, n))
    if counters.get("parse_errors") or counters.get("out_json_failed") != 0:
        problems.append("parse errors %s, records lost %s" % (
            counters.get("parse_errors"), counters.get("out_json_failed")))
    check(not problems, "; ".join(problems))


if __name__ == "__main__":
    ctdns.main(main)

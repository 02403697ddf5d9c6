#!/usr/bin/env python3
"""Anything ctd cannot deliver is counted, never silent (issue 17).

  udp_closed  IPFIX over UDP to 127.0.0.1:PORT where nothing listens for
              CLOSED_S seconds while UDP_FLOWS flows end (`conntrack -F`):
              the kernel answers port unreachable, ctd holds the records
              (write errors, held > 0, none delivered) and probes with
              backoff. Then a collector (a plain UDP socket) starts: every
              flow must reach it exactly once, decoded by ipfixDump,
              and at the end records = delivered, held 0. (On loopback the
              refusal comes back within the send, so nothing was sent in
              vain: resent, the collector's possible duplicates, stays 0.)
  disks_full  The JSON file on a 64 KiB tmpfs and the spool directory on
              another: DISK_FLOWS flows end, writes fail, then SIGTERM.
              Every record must be delivered, counted failed by reason or
              held (spool, write-ahead log): records = delivered + failed
              + held exactly, and the log says how many were lost. Then
              both disks grow and ctd starts again: what was held comes
              back (carried), and the flows in the file plus those counted
              failed are every flow made, none twice.
  remember    A second reliable ctnetlink listener that never reads (as in
              test_dedupe.py) makes the kernel send DESTROYs again, to a
              ctd that remembers only 500 ends (--remember-ends) while
              REMEMBER_FLOWS flows end: a repeat of an end ctd forgot
              gives a second record marked "dup_check":"none" and counted
              in possible_duplicates. Every flow has a record; every
              record beyond a flow's first has the mark (no unmarked
              double), and records = flows + possible_duplicates.
  held_stop   ctd with a 64 KiB buffer that may not grow is SIGSTOPped
              while HELD_FLOWS flows end (`conntrack -F`): the kernel holds
              most of their DESTROYs on its dying list. Then SIGCONT and at
              once SIGTERM: ctd reads until the kernel has re-sent them all
              (it does so every 10 ms while any is held) before it closes
              the socket, which would free them unread. Every flow exactly
              once, the table empty, and the identity with held 0.
  ro_spool    The spool directory on a read-only tmpfs at start: ctd
              starts degraded instead of not at all (a restart loop under
              systemd, every record lost): one log line, health says
              spool_degraded, RO_FLOWS flows each recorded once, the
              identity with held 0.
  evictions   --max-flows 1000 and EVICT_FLOWS live UDP flows (one
              datagram each): ctd evicts flows alive to make room. Then
              each flow gets a reply (an UPDATE event: SEEN_REPLY) and
              `conntrack -F` ends them all. Each flow has at most one
              "evicted" record (its end is ctd's time) and exactly one
              "destroy" record, whose times are the kernel's (time_source
              "kernel"); an evicted flow is not tracked again: no UPDATE
              record for it, no record with times ctd made up after its
              eviction; events_after_evict > 0.

Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555.

Usage: test_losses.py --ctd PATH [--closed SECS]
"""
import collections
import json
import os
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows, identity
import ipfixtool

PORT = 4739
CLOSED_S, UDP_FLOWS = 10, 2000
DISK_FLOWS = 3000
REMEMBER, REMEMBER_FLOWS = 500, 5000
MAX_FLOWS, EVICT_FLOWS = 1000, 5000


def sports(records, base, n):
    """Source port -> its records, for the test's flows."""
    seen = collections.defaultdict(list)
    for r in records:
        o = r["orig"]
        if r.get("type", "flow") == "flow" and o.get("dport") == 5555 and \
                base <= o.get("sport", 0) < base + n:
            seen[o["sport"]].append(r)
    return seen


def scenario_udp_closed(ns, binary, tmp, closed_s):
    base = 20000
    ctd = Ctd(ns, binary, tmp, ["--ipfix", "udp:127.0.0.1:%d" % PORT],
              tag="udp", json=os.path.join(tmp, "udp.json"))
    t0 = time.time()
    want = {f.sport for f in ns.traffic(flows("udp", UDP_FLOWS, sport=base))}
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(UDP_FLOWS, 30) is not None, "JSON records missing")
    time.sleep(max(0, closed_s - (time.time() - t0)))
    # ctd's own flow to the collector's port ends in the flush too.
    made = len(ctd.records())
    down = ctd.stats()
    check(down["out_ipfix_delivered"] == 0 and
          down["out_ipfix_held"] == made and
          down["out_ipfix_write_errors"] > 0,
          "with the port closed: delivered %d, held %d of %d, write errors %d"
          % (down["out_ipfix_delivered"], down["out_ipfix_held"], made,
             down["out_ipfix_write_errors"]))
    sink = os.path.join(tmp, "udp.ipfix")
    col = ipfixtool.UdpSink(ns, PORT, sink)
    t1 = time.time()
    ctd.wait_stats("every record delivered",
             lambda s: s["out_ipfix_held"] == 0 and
             s["out_ipfix_delivered"] >= made, 90)
    caught_up = time.time() - t1
    time.sleep(0.5)
    counters = ctd.stop()
    col.stop()
    recs, (nmsg, ndata, _), _ = ipfixtool.ipfixdump(sink)
    got = collections.Counter()
    for r in recs:
        if r.get("tid") in (256, 257, 258, 259):
            src, sport, dst, dport, _ = ipfixtool.flow_key(r)
            if dport == 5555:
                got[sport] += 1
    missing = sorted(want - set(got))
    doubled = sorted(p for p, n in got.items() if n > 1)
    check(not missing and not doubled,
          "collector: %d flows, %d missing %s, %d doubled %s"
          % (len(want), len(missing), missing[:5], len(doubled), doubled[:5]))
    made = len(ctd.records())
    c = identity(counters, "ipfix", made)
    identity(counters, "json", made)
    print("udp_closed: %d flows, port closed %d s: held %d, delivered 0, "
          "%d write errors; collector up: all %d arrived exactly once "
          "within %.1f s (%d messages, %d data records by ipfixDump); "
          "resent %d; records %d = delivered %d + failed %d, held 0"
          % (UDP_FLOWS, closed_s, down["out_ipfix_held"],
             down["out_ipfix_write_errors"], len(got), caught_up, nmsg,
             ndata, c["resent"], c["records"], c["delivered"], c["failed"]))


def mount(args):
    r = subprocess.run(["mount"] + args, capture_output=True, text=True)
    check(r.returncode == 0, "mount %s failed: %s" % (args, r.stderr.strip()))


def json_lines(path):
    """Whole JSON records of a file, and the lines that are not."""
    out, broken = [], 0
    with open(path, "rb") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                broken += 1
    return out, broken


def scenario_disks_full(ns, binary, tmp):
    base = 30000
    disk, spool = os.path.join(tmp, "disk"), os.path.join(tmp, "spooldisk")
    for d in (disk, spool):
        os.mkdir(d)
        mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", d])
    try:
        disks_full(ns, binary, tmp, disk, spool, base)
    finally:
        for d in (disk, spool):
            subprocess.run(["umount", "-l", d])


def disks_full(ns, binary, tmp, disk, spool, base):
    path = os.path.join(disk, "flows.json")
    args = ["--spool-dir", spool, "--grace", "1", "--shutdown-timeout", "1"]
    ctd = Ctd(ns, binary, tmp, args, json=path, tag="df1")
    want = {f.sport for f in ns.traffic(flows("udp", DISK_FLOWS, sport=base))}
    ns.run(["conntrack", "-F"])
    ctd.wait_stats("every DESTROY taken",
             lambda s: s["out_json_records"] >= DISK_FLOWS, 30)
    time.sleep(1)
    c1 = ctd.stop()
    j1 = identity(c1, "json", DISK_FLOWS, held=c1["out_json_held"])
    check(j1["write_errors"] > 0 and j1["failed"] > 0,
          "the disks never filled up: the test proves nothing: %s" % j1)
    log = ctd.log_text()
    lost_lines = [l for l in log.splitlines() if "lost" in l]
    check(any(str(j1["failed"]) in l for l in lost_lines),
          "the log does not say %d records were lost:\n%s"
          % (j1["failed"], log[-2000:]))
    mount(["-o", "remount,size=16m", disk])
    mount(["-o", "remount,size=16m", spool])
    ctd = Ctd(ns, binary, tmp, args, json=path, tag="df2")
    ctd.wait_stats("the held records back",
             lambda s: s["out_json_held"] == 0 and s["out_json_spool_size"] == 0,
             30)
    c2 = ctd.stop()
    j2 = identity(c2, "json", 0)
    check(j2["carried"] == j1["held"], "held %d at the first exit, %d came "
          "back" % (j1["held"], j2["carried"]))
    records, broken = json_lines(path)
    seen = sports(records, base, DISK_FLOWS)
    doubled = sorted(p for p, rs in seen.items() if len(rs) > 1)
    check(not doubled, "%d flows doubled %s" % (len(doubled), doubled[:5]))
    check(set(seen) <= want, "records of flows never made")
    failed = j1["failed"] + j2["failed"]
    check(len(seen) + failed == DISK_FLOWS,
          "%d flows: %d in the file + %d counted failed" %
          (DISK_FLOWS, len(seen), failed))
    check(broken <= j1["torn_lines"] + j2["torn_lines"],
          "%d lines are not JSON, %d counted torn" %
          (broken, j1["torn_lines"] + j2["torn_lines"]))
    print("disks_full: %d flows, file and spool on 64 KiB each; at SIGTERM "
          "records %d = delivered %d + failed %d (spool %d, shutdown %d) + "
          "held %d, the log says so (%r); after growing the disks the next "
          "ctd carried %d and delivered them: %d flows in the file once each "
          "+ %d counted failed = %d; %d write errors, %d torn lines ended"
          % (DISK_FLOWS, j1["records"], j1["delivered"], j1["failed"],
             j1["failed_spool"], j1["failed_shutdown"], j1["held"],
             lost_lines[-1].strip()[:120], j2["carried"], len(seen),
             failed, len(seen) + failed, j1["write_errors"],
             j1["torn_lines"] + j2["torn_lines"]))


def scenario_remember(ns, binary, tmp):
    base = 40000
    ctd = Ctd(ns, binary, tmp, ["--remember-ends", str(REMEMBER)],
              tag="rem", json=os.path.join(tmp, "rem.json"))
    slow = ctdns.SlowListener(ns)
    want = {f.sport for f in ns.traffic(flows("udp", REMEMBER_FLOWS,
                                              sport=base))}
    ns.run(["conntrack", "-F"])
    time.sleep(5)
    slow.close()
    check(ctd.wait_records(REMEMBER_FLOWS, 60) is not None, "records missing")
    time.sleep(1)
    counters = ctd.stop()
    seen = sports(ctd.records(), base, REMEMBER_FLOWS)
    missing = sorted(want - set(seen))
    check(not missing, "%d flows without a record %s"
          % (len(missing), missing[:5]))
    unmarked, marked = [], 0
    for p, rs in seen.items():
        marks = sum(r.get("dup_check") == "none" for r in rs)
        marked += marks
        if len(rs) - marks > 1:
            unmarked.append(p)
    check(not unmarked, "%d flows recorded twice without a mark, e.g. %s"
          % (len(unmarked), [seen[p] for p in unmarked[:2]]))
    dups = counters["possible_duplicates"]
    check(dups > 0, "no repeat went beyond what ctd remembers: the test "
          "proves nothing (destroy_duplicates %d)"
          % counters.get("destroy_duplicates", 0))
    check(marked == dups, "%d records marked, possible_duplicates %d"
          % (marked, dups))
    c = identity(counters, "json", REMEMBER_FLOWS + dups)
    doubled = sum(1 for rs in seen.values() if len(rs) > 1)
    print("remember: %d flows, remember-ends %d: %d repeats dropped as "
          "remembered, %d beyond memory recorded again with dup_check none "
          "(possible_duplicates %d, %d flows doubled, none unmarked); "
          "records %d = delivered %d, held 0"
          % (REMEMBER_FLOWS, REMEMBER, counters.get("destroy_duplicates", 0),
             marked, dups, doubled, c["records"], c["delivered"]))


HELD_FLOWS = 5000


def scenario_held_stop(ns, binary, tmp):
    base = 20000
    ctd = Ctd(ns, binary, tmp, ["--rcvbuf", "64k", "--rcvbuf-max", "64k"],
              tag="held", json=os.path.join(tmp, "held.json"))
    ctd.proc.send_signal(signal.SIGSTOP)
    try:
        want = {f.sport for f in ns.traffic(flows("udp", HELD_FLOWS,
                                                  sport=base))}
        ns.run(["conntrack", "-F"])
        time.sleep(1.5)
        held = ns.conntrack_count()
    finally:
        ctd.proc.send_signal(signal.SIGCONT)
    check(held > HELD_FLOWS // 2, "only %d conntracks held after the flush: "
          "the test proves nothing" % held)
    counters = ctd.stop()
    seen = sports(ctd.records(), base, HELD_FLOWS)
    missing = sorted(want - set(seen))
    doubled = sorted(p for p, rs in seen.items() if len(rs) > 1)
    check(not missing and not doubled, "%d flows without a record %s, %d "
          "doubled" % (len(missing), missing[:5], len(doubled)))
    check(ns.conntrack_count() == 0, "the kernel still holds %d conntracks"
          % ns.conntrack_count())
    c = identity(counters, "json", HELD_FLOWS)
    print("held_stop: %d flows, %d held by the kernel at SIGTERM: every flow "
          "recorded once before exit; records %d = delivered %d"
          % (HELD_FLOWS, held, c["records"], c["delivered"]))


RO_FLOWS = 1000


def scenario_ro_spool(ns, binary, tmp):
    base = 25000
    spool = os.path.join(tmp, "spool")
    os.makedirs(spool, exist_ok=True)
    mount(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", spool])
    try:
        ctd = Ctd(ns, binary, tmp, [], tag="ro", json=os.path.join(tmp, "ro.json"))
        check("running without a spool" in ctd.log_text(),
              "no line about the spool:\n" + ctd.log_text())
        health = ctd.query("-s")
        check("no spool: the spool directory" in health,
              "health does not say spool_degraded:\n" + health)
        want = {f.sport for f in ns.traffic(flows("udp", RO_FLOWS, sport=base))}
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(RO_FLOWS, 30) is not None, "records missing")
        counters = ctd.stop()
    finally:
        subprocess.run(["umount", spool])
    seen = sports(ctd.records(), base, RO_FLOWS)
    check(set(seen) == want and all(len(r) == 1 for r in seen.values()),
          "%d of %d flows recorded once" % (len(seen), RO_FLOWS))
    check(counters.get("spool_degraded") == 1, "spool_degraded %s"
          % counters.get("spool_degraded"))
    c = identity(counters, "json", RO_FLOWS)
    print("ro_spool: read-only spool directory at start: ran degraded, %d "
          "flows recorded once; records %d = delivered %d, held 0"
          % (RO_FLOWS, c["records"], c["delivered"]))


# Runs in the namespace: one datagram from each of n client ports, then
# (on a line on stdin) one reply to each, from the server's socket.
LIVE = r"""
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 5555))
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("127.0.0.1", base + i))
    c.sendto(b"x", ("127.0.0.1", 5555))
    c.close()
print("sent", flush=True)
sys.stdin.readline()
for i in range(n):
    srv.sendto(b"y", ("127.0.0.1", base + i))
print("replied", flush=True)
sys.stdin.readline()
"""


def scenario_evictions(ns, binary, tmp):
    base = 50000 - EVICT_FLOWS
    ctd = Ctd(ns, binary, tmp, ["--max-flows", str(MAX_FLOWS),
                                "--json-events", "new,update,destroy"],
              tag="ev", json=os.path.join(tmp, "ev.json"))
    gen = subprocess.Popen(ns.argv(["python3", "-c", LIVE, str(base),
                                    str(EVICT_FLOWS)]),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    ns.procs.append(gen)
    check(gen.stdout.readline().strip() == "sent", "the generator failed")
    ctd.wait_stats("every NEW", lambda s: s["events_new"] >= EVICT_FLOWS, 30)
    gen.stdin.write("reply\n")
    gen.stdin.flush()
    check(gen.stdout.readline().strip() == "replied", "the generator failed")
    ctd.wait_stats("every UPDATE",
             lambda s: s["events_update"] >= EVICT_FLOWS, 30)
    ns.run(["conntrack", "-F"])
    gen.stdin.write("done\n")
    gen.stdin.close()
    gen.wait(timeout=10)
    ctd.wait_stats("every DESTROY",
             lambda s: s["events_destroy"] >= EVICT_FLOWS, 30)
    time.sleep(1)
    counters = ctd.stop()
    records = ctd.records()
    seen = sports(records, base, EVICT_FLOWS)
    evicted = {p for p, rs in seen.items()
               if any(r["end_reason"] == "evicted" for r in rs)}
    # Event records are not flow records: sports() leaves them out.
    revived = [r for r in records if r.get("type") == "event" and
               "update" in r["events"] and r["orig"]["sport"] in evicted]
    check(not revived, "%d UPDATE records of flows evicted before, e.g. %s"
          % (len(revived), revived[:1]))
    reasons = collections.Counter()
    bad = []
    for p in range(base, base + EVICT_FLOWS):
        ends = collections.Counter(r["end_reason"] for r in seen.get(p, [])
                                   if "end_reason" in r)
        reasons.update(ends)
        made_up = [r for r in seen.get(p, []) if r["end_reason"] == "destroy"
                   and r["time_source"] != "kernel"]
        if ends["destroy"] != 1 or ends["evicted"] > 1 or \
                set(ends) - {"destroy", "evicted"} or made_up:
            bad.append((p, dict(ends), len(made_up)))
    check(not bad, "%d flows with wrong records, e.g. %s" % (len(bad), bad[:5]))
    check(reasons["evicted"] > 0 and counters["events_after_evict"] > 0,
          "no eviction, or no event after one: the test proves nothing "
          "(evicted %d, events_after_evict %d)"
          % (reasons["evicted"], counters["events_after_evict"]))
    ends = sum(reasons.values())
    c = identity(counters, "json", ends)
    print("evictions: %d live flows, max-flows %d: %d evicted records (at "
          "most one per flow), %d destroy records (one per flow, kernel "
          "times); events_after_evict %d, events new %d update %d destroy "
          "%d; records %d = delivered %d, held 0"
          % (EVICT_FLOWS, MAX_FLOWS, reasons["evicted"], reasons["destroy"],
             counters["events_after_evict"], counters["events_new"],
             counters["events_update"], counters["events_destroy"],
             c["records"], c["delivered"]))


SCENARIOS = {"udp_closed": scenario_udp_closed,
             "held_stop": scenario_held_stop,
             "ro_spool": scenario_ro_spool,
             "disks_full": scenario_disks_full,
             "remember": scenario_remember,
             "evictions": scenario_evictions}


def main(args):
    ipfixtool.need_tools()
    for name in args.only or list(SCENARIOS):
        with ctdns.sandbox("ls") as (ns, tmp):
            ns.sysctl("nf_conntrack_acct", 1)
            if name == "udp_closed":
                scenario_udp_closed(ns, args.ctd, tmp, args.closed)
            else:
                SCENARIOS[name](ns, args.ctd, tmp)


def arguments(ap):
    ap.add_argument("--closed", type=int, default=CLOSED_S,
                    help="seconds the IPFIX port stays closed (issue: 30)")
    ap.add_argument("--only", action="append", choices=list(SCENARIOS))


if __name__ == "__main__":
    ctdns.main(main, arguments)

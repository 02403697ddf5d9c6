#!/usr/bin/env python3
"""Restarting ctd loses no record and doubles none.

Three ways a ctd stops while flows keep ending:
  fdstore  Under a service manager: as soon as it opens its ctnetlink
           socket ctd puts it in the fd store (sd_notify FDSTORE=1 with
           SCM_RIGHTS), once (not again when it came back from the store).
           This script plays systemd: it owns NOTIFY_SOCKET, takes the
           socket, and while no ctd runs at all, destroys the first set of
           flows and makes and destroys a second set. Then it starts a new
           ctd with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID,
           LISTEN_FDNAMES=ctnetlink); it must read every DESTROY that was
           queued or held by the kernel meanwhile.
  reexec   SIGUSR2: ctd re-executes itself with the socket; the flows are
           destroyed while it does.
  spool    SIGTERM while records wait for a reader of the stream socket
           that never came: they go to the spool, and the next ctd
           replays them to the reader that connects then.
Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555, one packet
each. Every one must have exactly one record, ended by "destroy".

Usage: test_restart.py --ctd PATH
"""
import json
import os
import signal
import socket
import time

import ctdns
from ctdns import Ctd, Fail, check, flows


def make_flows(ns, base, n):
    """n one-packet UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555; the
    source ports made."""
    return {f.sport for f in ns.traffic(flows("udp", n, sport=base))}


def check_exactly_once(records, want, what):
    seen = {}
    for r in records:
        o = r["orig"]
        if r.get("type") != "flow" or o["dport"] != 5555 or o["sport"] not in want:
            continue
        key = (r["id"], o["sport"], r["start_ms"])
        seen.setdefault(o["sport"], []).append((key, r["end_reason"]))
    missing = sorted(want - set(seen))
    doubled = sorted(p for p, v in seen.items() if len(v) > 1)
    not_destroy = sorted(p for p, v in seen.items() if v[0][1] != "destroy")
    check(not missing and not doubled and not not_destroy,
          "%s: %d flows, %d missing %s, %d doubled %s, %d not destroy %s"
          % (what, len(want), len(missing), missing[:5], len(doubled),
             doubled[:5], len(not_destroy), not_destroy[:5]))
    return len(seen)


def scenario_fdstore(ns, ctd_bin, tmp):
    mgr = ctdns.Manager(os.path.join(tmp, "notify.sock"))
    env = mgr.env(WATCHDOG_USEC="2000000")
    first = Ctd(ns, ctd_bin, tmp, [], env=env, tag="fd1")
    mgr.wait("FDSTORE=1", 5)
    check(mgr.stored is not None, "ctd put no socket in the fd store")
    ready = mgr.wait("READY=1", 10)
    check("STATUS=" in ready, "READY came without a STATUS line: %r" % ready)
    mgr.wait("WATCHDOG=1\nSTATUS=", 5)
    set1 = make_flows(ns, 30000, 1500)
    time.sleep(0.5)
    ctdns.identity(first.stop(), "json", 0)
    # No ctd runs now: these DESTROYs wait in the stored socket or in the
    # kernel, or nowhere.
    ns.run(["conntrack", "-F"])
    set2 = make_flows(ns, 32000, 1000)
    ns.run(["conntrack", "-F"])
    mgr.clear()
    second = Ctd(ns, ctd_bin, tmp, [], env=env, tag="fd2",
                 listen_fd=mgr.stored)
    want = set1 | set2
    waited = second.wait_records(len(want), 60)
    mgr.wait("READY=1", 10)
    counters = second.stop()
    ctdns.identity(counters, "json", len(want))
    check(mgr.fdstores == 1, "the socket went to the fd store %d times"
          % mgr.fdstores)
    mgr.close()
    check("took over the ctnetlink socket" in second.log_text(),
          "the second ctd did not take the handed-over socket:\n"
          + second.log_text())
    n = check_exactly_once(second.records(), want, "fdstore")
    print("fdstore: %d flows, %d records exactly once (%d ended while no "
          "ctd ran), all in %.1f s; second ctd read %d DESTROY events; the "
          "socket was stored once, at the first start"
          % (len(want), n, len(want), waited or -1,
             counters.get("events_destroy", 0)))


def scenario_reexec(ns, ctd_bin, tmp):
    ctd = Ctd(ns, ctd_bin, tmp, [], tag="reexec")
    pid = ctd.proc.pid
    set1 = make_flows(ns, 34000, 1500)
    time.sleep(0.5)
    os.kill(pid, signal.SIGUSR2)
    ns.run(["conntrack", "-F"])
    set2 = make_flows(ns, 36000, 1000)
    ns.run(["conntrack", "-F"])
    want = set1 | set2
    waited = ctd.wait_records(len(want), 60)
    check(ctd.proc.poll() is None, "ctd is gone after SIGUSR2")
    c = ctdns.identity(ctd.stop(), "json")
    log = ctd.log_text()
    check(log.count("listening for conntrack events") == 2 and
          "took over the ctnetlink socket" in log,
          "ctd did not restart in place:\n" + log)
    n = check_exactly_once(ctd.records(), want, "reexec")
    print("reexec: %d flows, %d records exactly once, all in %.1f s; after "
          "the re-exec records %d = delivered %d, held 0"
          % (len(want), n, waited or -1, c["records"], c["delivered"]))


def read_stream(path, n, secs):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    buf, end = b"", time.time() + secs
    while buf.count(b"\n") < n and time.time() < end:
        s.settimeout(max(0.1, end - time.time()))
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    return [json.loads(line) for line in buf.splitlines()]


def scenario_spool(ns, ctd_bin, tmp):
    sock = os.path.join(tmp, "stream.sock")
    args = ["--stream", sock, "--shutdown-timeout", "1"]
    first = Ctd(ns, ctd_bin, tmp, args, tag="sp1")
    want = make_flows(ns, 38000, 1000)
    ns.run(["conntrack", "-F"])
    time.sleep(2)
    c1 = first.stop()
    spool = os.path.join(first.spool, "stream.spool")
    size = os.path.getsize(spool) if os.path.exists(spool) else 0
    check(c1.get("out_stream_delivered") == 0 and
          c1.get("out_stream_spooled") == len(want) and size > 0,
          "records not spooled at SIGTERM: delivered %s spooled %s, "
          "spool %d bytes" % (c1.get("out_stream_delivered"),
                              c1.get("out_stream_spooled"), size))
    ctdns.identity(c1, "json", len(want))
    ctdns.identity(c1, "stream", len(want), held=len(want))
    second = Ctd(ns, ctd_bin, tmp, args, tag="sp2")
    records = read_stream(sock, len(want), 30)
    c2 = second.stop()
    n = check_exactly_once(records, want, "spool")
    check(c2.get("out_stream_replayed") == len(want),
          "replayed %s of %d" % (c2.get("out_stream_replayed"), len(want)))
    check(os.path.getsize(spool) == 0, "spool not emptied after replay")
    s2 = ctdns.identity(c2, "stream", 0)
    check(s2["carried"] == len(want), "the second ctd carried %d of %d"
          % (s2["carried"], len(want)))
    print("spool: %d records held at SIGTERM, spooled (%d bytes, %d per "
          "record), replayed to the next reader exactly once: %d; first ctd "
          "records %d = delivered %d + held %d, second carried %d = "
          "delivered %d, held 0"
          % (len(want), size, size // len(want), n, c1["out_stream_records"],
             c1["out_stream_delivered"], c1["out_stream_held"],
             s2["carried"], s2["delivered"]))


def main(args):
    for fn in (scenario_fdstore, scenario_reexec, scenario_spool):
        with ctdns.sandbox("rs") as (ns, tmp):
            fn(ns, args.ctd, tmp)


if __name__ == "__main__":
    ctdns.main(main)

#!/usr/bin/env python3
"""Restarting ctd loses no record and doubles none.

Three ways a ctd stops while flows keep ending:
  fdstore  Under a service manager: on SIGTERM ctd hands its ctnetlink
           socket to the fd store (sd_notify FDSTORE=1 with SCM_RIGHTS).
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
import array
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


def recv_fd(sock, secs):
    """Notify messages until FDSTORE=1; returns (messages, fd)."""
    msgs, end = [], time.time() + secs
    while time.time() < end:
        sock.settimeout(max(0.1, end - time.time()))
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            break
        msgs.append(data.decode())
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % 4])
                if b"FDSTORE=1" in data:
                    return msgs, fds[0]
                for fd in fds:
                    os.close(fd)
    return msgs, None


def wait_ready(sock, secs):
    end = time.time() + secs
    while time.time() < end:
        sock.settimeout(max(0.1, end - time.time()))
        try:
            if b"READY=1" in sock.recv(4096):
                return
        except socket.timeout:
            break
    raise Fail("ctd never sent READY=1 to NOTIFY_SOCKET")


def wait_watchdog(sock, secs):
    """With WatchdogSec=2 s, pings (with a STATUS line) every second."""
    end = time.time() + secs
    while time.time() < end:
        sock.settimeout(max(0.1, end - time.time()))
        try:
            msg = sock.recv(4096)
        except socket.timeout:
            break
        if b"WATCHDOG=1" in msg and b"STATUS=" in msg:
            return
    raise Fail("ctd sent no WATCHDOG=1 with a STATUS line within %d s" % secs)


def scenario_fdstore(ns, ctd_bin, tmp):
    path = os.path.join(tmp, "notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
    first = Ctd(ns, ctd_bin, tmp, [], env=env, tag="fd1")
    wait_ready(nsock, 10)
    wait_watchdog(nsock, 5)
    set1 = make_flows(ns, 30000, 1500)
    time.sleep(0.5)
    first.stop()
    msgs, fd = recv_fd(nsock, 5)
    check(fd is not None, "ctd handed no socket to the fd store: %s" % msgs)
    # No ctd runs now: these DESTROYs wait in the stored socket or in the
    # kernel, or nowhere.
    ns.run(["conntrack", "-F"])
    set2 = make_flows(ns, 32000, 1000)
    ns.run(["conntrack", "-F"])
    second = Ctd(ns, ctd_bin, tmp, [], env=env, tag="fd2", listen_fd=fd)
    os.close(fd)
    want = set1 | set2
    waited = second.wait_records(len(want), 60)
    counters = second.stop()
    check("took over the ctnetlink socket" in second.log_text(),
          "the second ctd did not take the handed-over socket:\n"
          + second.log_text())
    n = check_exactly_once(second.records(), want, "fdstore")
    print("fdstore: %d flows, %d records exactly once (%d ended while no "
          "ctd ran), all in %.1f s; second ctd read %d DESTROY events"
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
    ctd.stop()
    log = ctd.log_text()
    check(log.count("listening for conntrack events") == 2 and
          "took over the ctnetlink socket" in log,
          "ctd did not restart in place:\n" + log)
    n = check_exactly_once(ctd.records(), want, "reexec")
    print("reexec: %d flows, %d records exactly once, all in %.1f s"
          % (len(want), n, waited or -1))


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
    second = Ctd(ns, ctd_bin, tmp, args, tag="sp2")
    records = read_stream(sock, len(want), 30)
    c2 = second.stop()
    n = check_exactly_once(records, want, "spool")
    check(c2.get("out_stream_replayed") == len(want),
          "replayed %s of %d" % (c2.get("out_stream_replayed"), len(want)))
    check(os.path.getsize(spool) == 0, "spool not emptied after replay")
    print("spool: %d records held at SIGTERM, spooled (%d bytes, %d per "
          "record), replayed to the next reader exactly once: %d"
          % (len(want), size, size // len(want), n))


def main(args):
    for fn in (scenario_fdstore, scenario_reexec, scenario_spool):
        with ctdns.sandbox("rs") as (ns, tmp):
            fn(ns, args.ctd, tmp)


if __name__ == "__main__":
    ctdns.main(main)

#!/usr/bin/env python3
"""A service's bad day: kills, signals at the wrong moment, a service
manager that stops listening. The suite plays the service manager
(ctdns.Manager: NOTIFY_SOCKET, the fd store); nothing else is fake.

  kills    20,000 UDP flows ended by `conntrack -F` against a 32 KiB
           receive buffer that may not grow, while ctd is killed with
           SIGKILL at 5 random moments in a row, each time restarted with
           the socket from the fd store (ctd put it there at its first
           start). A stream socket with no reader and an IPFIX/TCP
           collector that is down take the same records meanwhile; after
           the kills a reader connects and the collector comes up. Every
           flow must have one record in each output (at most 64 lost per
           kill: the batch being handled when it came), none doubled, no
           line glued to another (a line cut short by a kill is ended on
           its own and counted in torn_lines); the last ctd's counters
           must obey records = delivered + failed + held with held 0.
           The same again with --netns all (3 kills), whose batches take
           the namespace path: the same bound.
  replay   10,000 records spooled for a stream output nobody read; the
           next ctd replays them to a slow reader and is killed with
           SIGKILL half-way; the one after replays the rest to a fast
           reader. Both readers together: every flow exactly once (a
           line the kill cut short is sent again whole), and the last
           ctd's counters obey the identity.
  signals  Ten times: SIGUSR2 (re-exec), then within 2 ms SIGHUP, SIGUSR1
           or SIGUSR2, with flows ending meanwhile: ctd survives each (same
           pid, answers ctd -s), sends RELOADING=1 and READY=1, never
           STOPPING=1, and every flow has exactly one record.
  notify   A service manager that stops reading NOTIFY_SOCKET: ctd keeps
           recording, counts the messages it could not send
           (notify_dropped) and stops at once on SIGTERM.

Usage: test_chaos.py --ctd PATH [--rounds N]
"""
import collections
import json
import os
import random
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows
from test_ipfix_tcp import COLLECTOR, read_streams

FLOWS = 20000
KILLS = 5
PER_KILL = 64
READER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
with open(sys.argv[2], "wb") as f:
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        f.write(d)
        f.flush()
"""


SLOW_READER = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
with open(sys.argv[2], "wb") as f:
    while True:
        d = s.recv(16384)
        if not d:
            break
        f.write(d)
        f.flush()
        time.sleep(0.01)
"""
REPLAYED = 10000


def sports_of_json(path):
    """Source port -> records of the test's flows (to port 5555; ctd's own
    connections to the collector are flows too), and lines that are not
    JSON."""
    seen, broken = collections.Counter(), 0
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                broken += 1
                continue
            if rec["orig"].get("dport") == 5555:
                seen[rec["orig"]["sport"]] += 1
    return seen, broken


def judge(what, seen, want, kills):
    missing = [p for p in want if not seen.get(p)]
    doubled = [p for p, n in seen.items() if n > 1]
    extra = [p for p in seen if p not in want]
    check(len(missing) <= PER_KILL * kills and not doubled and not extra,
          "%s: %d flows, %d missing %s, %d doubled %s, %d unknown %s"
          % (what, len(want), len(missing), missing[:5], len(doubled),
             doubled[:5], len(extra), extra[:5]))
    return len(missing)


def start(ns, binary, tmp, mgr, tag, extra, fd=None):
    args = ["-b", "32K", "--rcvbuf-max", "32K"] + extra
    return Ctd(ns, binary, tmp, args, env=mgr.env(), tag=tag, listen_fd=fd,
               json=os.path.join(tmp, "flows.json"))


def wait_stable(read, secs):
    """Polls read() until its value stops changing for a second."""
    last, since, end = None, time.time(), time.time() + secs
    while time.time() < end:
        now = read()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since > 1.0:
            return now
        time.sleep(0.2)
    return last


def scenario_kills(ns, binary, tmp, rounds, netns=False):
    mgr = ctdns.Manager(os.path.join(tmp, "notify.sock"))
    stream = os.path.join(tmp, "s.sock")
    extra = ["--stream", stream, "--ipfix", "tcp:127.0.0.1:4739"]
    # With --netns all every batch takes the namespace path, which once
    # committed once per wakeup instead of once per receive batch (with
    # that reverted, 3 kills lost 102 records here, within the bound;
    # with it, 0). Other tests' namespaces on the host are left out.
    extra += ["--netns", "all", "--filter-netns", "self"] if netns else []
    ctd = start(ns, binary, tmp, mgr, "k0", extra)
    mgr.wait("READY=1", 20)
    check(mgr.stored is not None, "no socket in the fd store")
    made = ns.traffic(flows("udp", FLOWS, sport=20000, size=1, listen=False))
    want = {f.sport for f in made}
    flush = ns.start(["conntrack", "-F"], subprocess.DEVNULL,
                     subprocess.DEVNULL)
    rnd = random.Random(os.getpid())
    torn = 0
    for k in range(rounds):
        time.sleep(rnd.uniform(0.02, 0.4))
        ctd.proc.send_signal(signal.SIGKILL)
        ctd.proc.wait(timeout=10)
        ctd = start(ns, binary, tmp, mgr, "k%d" % (k + 1), extra,
                    fd=mgr.stored)
        torn += ctd.log_text().count("was cut short")
    flush.wait(timeout=60)
    check(mgr.fdstores == 1, "the socket went to the fd store %d times"
          % mgr.fdstores)
    col = ns.start(["python3", "-c", COLLECTOR, tmp, "col"], subprocess.PIPE,
                   open(os.path.join(tmp, "col.err"), "w"), text=True)
    check(col.stdout.readline().strip() == "ready", "collector did not start")
    out = os.path.join(tmp, "stream.out")
    reader = ns.start(["python3", "-c", READER, stream, out],
                      subprocess.DEVNULL, subprocess.DEVNULL)
    wait_stable(lambda: sports_of_json(ctd.json)[0].total(), 120)
    wait_stable(lambda: os.path.getsize(out) if os.path.exists(out) else 0, 60)
    time.sleep(2)          # the collector's TCP acks reach ctd
    counters = ctd.stop()
    reader.wait(timeout=20)
    col.send_signal(signal.SIGUSR1)
    col.wait(timeout=20)
    mgr.close()
    seen, broken = sports_of_json(ctd.json)
    check(broken <= torn, "%d lines are not JSON, %d counted as cut short"
          % (broken, torn))
    lost = judge("json", seen, want, rounds)
    sseen, sbroken = sports_of_json(out)
    check(sbroken == 0, "%d stream lines are not JSON" % sbroken)
    slost = judge("stream", sseen, want, rounds)
    recs, _, tails = read_streams(tmp)
    check(not any(tails.values()), "the collector got a torn message")
    iseen = collections.Counter(int(r["sourceTransportPort"]) for r in recs
                                if r.get("destinationTransportPort") == "5555")
    ilost = judge("ipfix", iseen, want, rounds)
    for name in ("json", "stream", "ipfix"):
        ctdns.identity(counters, name)
    print("kills%s: %d flows, %d SIGKILLs with the socket from the fd store; "
          "lost json %d, stream %d, ipfix %d (bound %d), none doubled; %d "
          "lines cut short and ended; %d records came back from write-ahead "
          "logs and spools; unclean_restarts counted"
          % (" (netns all)" if netns else "", FLOWS, rounds, lost, slost,
             ilost, PER_KILL * rounds, torn,
             counters["out_stream_carried"] + counters["out_ipfix_carried"]))


def read_with(ns, reader, stream, out):
    return ns.start(["python3", "-c", reader, stream, out],
                    subprocess.DEVNULL, subprocess.DEVNULL)


def scenario_replay(ns, binary, tmp):
    stream = os.path.join(tmp, "r.sock")
    args = ["--stream", stream, "--shutdown-timeout", "0"]
    ctd = Ctd(ns, binary, tmp, args, tag="r0", json=os.path.join(tmp, "r.json"))
    made = ns.traffic(flows("udp", REPLAYED, sport=51000, size=1,
                            listen=False))
    want = {f.sport for f in made}
    ns.run(["conntrack", "-F"])
    ctd.wait_stats("every record held for the stream",
                   lambda c: c["out_stream_held"] >= len(want), 60)
    ctd.stop()
    ctd = Ctd(ns, binary, tmp, args, tag="r1", json=os.path.join(tmp, "r.json"))
    outs = [os.path.join(tmp, "r1.stream"), os.path.join(tmp, "r2.stream")]
    reader = read_with(ns, SLOW_READER, stream, outs[0])
    time.sleep(random.Random(os.getpid()).uniform(0.3, 0.8))
    ctd.proc.send_signal(signal.SIGKILL)
    ctd.proc.wait(timeout=10)
    reader.wait(timeout=10)
    first, torn = sports_of_json(outs[0])
    check(0 < sum(first.values()) < len(want) and torn <= 1,
          "the kill did not come during the replay: %d of %d records read, "
          "%d lines broken" % (sum(first.values()), len(want), torn))
    ctd = Ctd(ns, binary, tmp, args, tag="r2", json=os.path.join(tmp, "r.json"))
    reader = read_with(ns, READER, stream, outs[1])
    wait_stable(lambda: os.path.getsize(outs[1]) if os.path.exists(outs[1])
                else 0, 60)
    counters = ctd.stop()
    reader.wait(timeout=20)
    second, broken = sports_of_json(outs[1])
    check(broken == 0, "%d lines of the second reader are not JSON" % broken)
    judge("replay", first + second, want, 0)
    c = ctdns.identity(counters, "stream")
    print("replay: %d records spooled; killed after %d reached a slow reader "
          "(%d line cut short); the next ctd carried %d and sent the rest: "
          "every flow exactly once" % (len(want), sum(first.values()), torn,
                                       c["carried"]))


def scenario_signals(ns, binary, tmp):
    mgr = ctdns.Manager(os.path.join(tmp, "notify2.sock"))
    ctd = Ctd(ns, binary, tmp, [], env=mgr.env(), tag="sig",
              json=os.path.join(tmp, "sig.json"))
    mgr.wait("READY=1", 20)
    pid, want, merged = ctd.proc.pid, set(), 0
    rnd = random.Random(pid)
    for i in range(10):
        made = ns.traffic(flows("udp", 100, sport=40000 + 100 * i, size=1,
                                listen=False))
        want |= {f.sport for f in made}
        mgr.clear()
        ns.run(["conntrack", "-F"])
        second = rnd.choice([signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
        os.kill(pid, signal.SIGUSR2)
        time.sleep(rnd.uniform(0.001, 0.002))
        os.kill(pid, second)
        try:
            mgr.wait_reloaded(1, 20)
            if second == signal.SIGUSR2:
                # Two USR2 before ctd's loop took the first are one
                # request (the signal is pending once): one re-exec or two.
                time.sleep(1)
                merged += mgr.count("RELOADING=1") == 1
                mgr.wait_reloaded(mgr.count("RELOADING=1"), 20)
        except ctdns.Fail as e:
            raise ctdns.Fail("round %d (USR2, then %s): %s; ctd's log ends:\n%s"
                             % (i, second.name, e, ctd.log_text()[-1500:]))
        check(ctd.proc.poll() is None, "ctd died in round %d:\n%s"
              % (i, ctd.log_text()[-2000:]))
        check(not any("STOPPING=1" in m for m in mgr.msgs),
              "a re-exec said STOPPING=1")
        ctd.query("-s")
    waited = ctd.wait_records(len(want), 30)
    ctd.stop()
    mgr.close()
    seen, broken = sports_of_json(ctd.json)
    check(broken == 0, "%d lines are not JSON" % broken)
    judge("signals", seen, want, 0)
    print("signals: 10 re-execs each followed within 2 ms by HUP/USR1/USR2; "
          "same pid throughout, RELOADING=1 then READY=1 each time (%d "
          "USR2 pairs were one re-exec); %d flows, %d records exactly once "
          "(%.1f s)" % (merged, len(want), sum(seen.values()), waited or -1))


def scenario_notify(ns, binary, tmp):
    mgr = ctdns.Manager(os.path.join(tmp, "notify3.sock"))
    mgr.pause(True)
    ctd = Ctd(ns, binary, tmp, [], tag="nfy",
              env=mgr.env(WATCHDOG_USEC="100000"),
              json=os.path.join(tmp, "nfy.json"))
    time.sleep(2)     # pings every 50 ms: the manager's queue is full
    made = ns.traffic(flows("udp", 500, sport=50000, size=1, listen=False))
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(made), 20) is not None,
          "ctd stopped recording while the manager did not read")
    t = time.time()
    counters = ctd.stop()
    secs = time.time() - t
    mgr.close()
    check(counters["notify_dropped"] > 0, "no notify message counted dropped")
    print("notify: manager not reading; %d flows recorded, %d messages "
          "dropped and counted, SIGTERM obeyed in %.2f s"
          % (len(made), counters["notify_dropped"], secs))


def main(args):
    with ctdns.sandbox("ch") as (ns, tmp):
        scenario_kills(ns, args.ctd, tmp, args.rounds)
        scenario_replay(ns, args.ctd, tmp)
        scenario_signals(ns, args.ctd, tmp)
        scenario_notify(ns, args.ctd, tmp)
    if not args.netns_kills:
        return
    with ctdns.sandbox("cn") as (ns, tmp):
        scenario_kills(ns, args.ctd, tmp, args.netns_kills, netns=True)


def arguments(ap):
    ap.add_argument("--rounds", type=int, default=KILLS)
    ap.add_argument("--netns-kills", type=int, default=3,
                    help="kills in the --netns all run (0: no such run)")


if __name__ == "__main__":
    ctdns.main(main, arguments)

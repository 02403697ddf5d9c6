#!/usr/bin/env python3
"""`shards 4` under load (issue 31): four processes, each its part of the
conntracks, one JSON file, one control socket.

  storm  the stress test's storm (N one-packet UDP flows, then
         `conntrack -F`) against 2 KiB receive buffers that may not grow,
         read by 4 shards: every flow has exactly one record, with the
         kernel's counters, in the file the shards append to; the sockets
         overran (reliable mode was exercised); ctd -s shows 4 shards, and
         its totals are each shard's counters (printed at its exit) added
         up; every shard had a part of the flows.
  kills  20,000 flows ended by `conntrack -F` against 32 KiB buffers while
         a random shard is killed with SIGKILL 5 times: the parent starts
         each again (shard_restarts 5, logged) with the dead shard's
         socket, which it kept; every flow has one record, at most 64
         lost per kill, none doubled, no more lines that are not JSON than
         were counted as cut short; the summed counters obey records =
         delivered + failed + held, with held 0.
  usr2   SIGUSR2 to the parent, `conntrack -F` of 5,000 flows 2 ms later:
         every shard re-executes in place (same pid) keeping its socket,
         and every flow has exactly one record.

  restart  a service restart as systemd does it: each shard's socket is in
         the fd store as ctnetlink-K; 5,000 flows end while no ctd runs;
         the next ctd hands each shard its socket back and every flow has
         exactly one record.
  store  four shards writing one SQLite flow store (shared file lock, SQLite
         serialising the commits): every flow one row; commits that met
         another writer are counted and written again.
  ipfix  four shards exporting over IPFIX/UDP: one session each, told
         apart by observation domain ipfix-domain + K; every flow reaches
         the collector once (libfixbuf's ipfixDump decodes).

Usage: test_shards_run.py --ctd PATH [--flows N]
                          [--scenarios storm,kills,usr2,restart,store,ipfix]
"""
import collections
import os
import random
import re
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows
from test_chaos import judge, sports_of_json, wait_stable
from test_stress import compare, index_records, storm

SHARDS = 4
KILLS = 5
# Counters every shard keeps for itself: the parent's sum must be theirs.
SUMMED = ("events_destroy", "nl_messages", "records", "ends_destroy",
          "out_json_records", "out_json_delivered", "out_json_bytes")


def shard_pids(ctd):
    """Shard number -> its newest pid, from the shards' log lines."""
    pids = {}
    for k, pid in re.findall(r"shard (\d+) of \d+ \(pid (\d+)\)", ctd.log_text()):
        pids[int(k)] = int(pid)
    return pids


def wait_shards(ctd, n, secs):
    end = time.time() + secs
    while time.time() < end:
        if "all %d shards are ready" % n in ctd.log_text():
            return
        time.sleep(0.05)
    raise ctdns.Fail("the shards never all got ready:\n" + ctd.log_text())


def stop(ctd):
    """SIGTERM to the parent, exit 0; each shard's counters (-v prints
    them at its exit) as name -> list of values."""
    ctd.proc.send_signal(signal.SIGTERM)
    try:
        rc = ctd.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise ctdns.Fail("ctd did not exit within 30 s of SIGTERM")
    check(rc == 0, "ctd exited with %d:\n%s" % (rc, ctd.log_text()))
    for word in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(word not in ctd.log_text(), "a shard or the parent said %s:\n%s"
              % (word, ctd.log_text()))
    per = collections.defaultdict(list)
    for line in ctd.log_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            per[parts[0]].append(int(parts[1]))
    return per


def scenario_storm(ns, binary, tmp, n):
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS), "--rcvbuf", "2k",
                                "--rcvbuf-max", "2k", "--pending-interval", "1"])
    wait_shards(ctd, SHARDS, 20)
    made, secs, flush = storm(ns, n)
    waited = ctd.wait_records(n, 300)
    check(waited is not None, "only %d of %d records within 300 s"
          % (ctd.count_records(), n))
    time.sleep(1)
    total = ctd.stats()
    per = stop(ctd)
    by_dst, extra = index_records(ctd.records())
    missing, doubled, wrong = compare(made, by_dst)
    check(not extra, "records for flows we did not make: %s" % extra[:3])
    check(not missing and not doubled and not wrong,
          "%d missing %s, %d doubled %s, %d with wrong counters %s"
          % (len(missing), missing[:5], len(doubled), doubled[:5],
             len(wrong), wrong[:3]))
    check(total["shards"] == SHARDS and total["shard_restarts"] == 0,
          "ctd -s: %d shards, %d restarts" % (total["shards"],
                                              total["shard_restarts"]))
    check(total["nl_drops"] > 0, "no socket drops: the 2 KiB buffers never "
          "overflowed, so reliability was not exercised")
    check(total["records"] == n and total["out_json_delivered"] == n,
          "ctd -s: %d records, %d delivered, %d flows"
          % (total["records"], total["out_json_delivered"], n))
    for name in SUMMED:
        check(len(per[name]) == SHARDS, "%s printed by %d shards at exit"
              % (name, len(per[name])))
        check(sum(per[name]) == total[name], "%s: ctd -s says %d, the "
              "shards %s" % (name, total[name], per[name]))
    check(all(v > 0 for v in per["records"]), "a shard had no flows: %s"
          % per["records"])
    print("storm: %d flows made in %.2fs, flushed in %.2fs, recorded %.1fs "
          "later by %d shards (records %s), each once with its counters; "
          "drops %d; ctd -s totals = the shards' sums for %s"
          % (n, secs, flush, waited, SHARDS, per["records"],
             total["nl_drops"], ", ".join(SUMMED)))


def kill_one(ctd, rnd, k_before):
    pids = shard_pids(ctd)
    k = rnd.randrange(SHARDS)
    os.kill(pids[k], signal.SIGKILL)
    end = time.time() + 20
    while time.time() < end:
        if shard_pids(ctd).get(k) != pids[k] and \
                ctd.log_text().count("starting it again") > k_before:
            return k
        check(ctd.proc.poll() is None, "the parent died:\n" + ctd.log_text())
        time.sleep(0.05)
    raise ctdns.Fail("shard %d was not started again:\n%s" % (k, ctd.log_text()))


def scenario_kills(ns, binary, tmp, n):
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS), "-b", "32K",
                                "--rcvbuf-max", "32K"])
    wait_shards(ctd, SHARDS, 20)
    made = ns.traffic(flows("udp", n, sport=20000, size=1, listen=False))
    want = {f.sport for f in made}
    flush = ns.start(["conntrack", "-F"], subprocess.DEVNULL, subprocess.DEVNULL)
    rnd = random.Random(os.getpid())
    killed = []
    for i in range(KILLS):
        time.sleep(rnd.uniform(0.02, 0.4))
        killed.append(kill_one(ctd, rnd, i))
    flush.wait(timeout=60)
    wait_stable(lambda: sports_of_json(ctd.json)[0].total(), 120)
    time.sleep(1)
    total = ctd.stats()
    log = ctd.log_text()
    torn = log.count("was cut short")
    took = log.count("took over the ctnetlink socket")
    stop(ctd)
    seen, broken = sports_of_json(ctd.json)
    check(broken <= torn, "%d lines are not JSON, %d counted as cut short"
          % (broken, torn))
    lost = judge("json", seen, want, KILLS)
    check(total["shard_restarts"] == KILLS, "shard_restarts %d after %d kills"
          % (total["shard_restarts"], KILLS))
    check(took == KILLS, "%d restarted shards took over their socket, of %d"
          % (took, KILLS))
    ctdns.identity(total, "json")
    check(total["out_json_held"] == 0, "%d records still held"
          % total["out_json_held"])
    print("kills: %d flows, shards %s killed with SIGKILL, each started again "
          "with its socket; lost %d (bound %d), none doubled; %d lines cut "
          "short and ended; summed counters obey the identity"
          % (n, killed, lost, 64 * KILLS, torn))


def scenario_usr2(ns, binary, tmp, n):
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS)])
    wait_shards(ctd, SHARDS, 20)
    before = shard_pids(ctd)
    made = ns.traffic(flows("udp", n, sport=20000, size=1, listen=False))
    want = {f.sport for f in made}
    ctd.proc.send_signal(signal.SIGUSR2)
    time.sleep(0.002)
    ns.run(["conntrack", "-F"])
    wait_stable(lambda: sports_of_json(ctd.json)[0].total(), 60)
    after = shard_pids(ctd)
    took = ctd.log_text().count("took over the ctnetlink socket")
    total = ctd.stats()
    stop(ctd)
    seen, broken = sports_of_json(ctd.json)
    check(broken == 0, "%d lines are not JSON" % broken)
    judge("json", seen, want, 0)
    check(after == before, "shard pids changed across the re-exec: %s, %s"
          % (before, after))
    check(took == SHARDS, "%d shards took their socket over, of %d"
          % (took, SHARDS))
    check(total["shards"] == SHARDS and total["shard_restarts"] == 0,
          "after USR2: %d shards, %d restarts" % (total["shards"],
                                                  total["shard_restarts"]))
    print("usr2: %d shards re-executed in place (same pids), each keeping its "
          "socket; %d flows ended meanwhile, every one once" % (SHARDS, n))


class Store(ctdns.Manager):
    """The service manager's fd store by FDNAME, as systemd keeps it."""

    def __init__(self, path):
        self.named = {}
        super().__init__(path)

    def _take(self, msg, anc):
        name = dict(f.split("=", 1) for f in msg.split("\n") if "=" in f
                    ).get("FDNAME")
        if "FDSTORE=1" in msg and name and name not in self.named:
            for level, kind, payload in anc:
                if kind == self._socket.SCM_RIGHTS:
                    self.named[name] = int.from_bytes(payload[:4], "little")
                    self.msgs.append(msg)
                    return
        super()._take(msg, anc)


def scenario_restart(ns, binary, tmp, n):
    mgr = Store(os.path.join(tmp, "notify.sock"))
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS)], env=mgr.env(),
              tag="r0")
    mgr.wait("READY=1", 20)
    end = time.time() + 10
    while len(mgr.named) < SHARDS and time.time() < end:
        time.sleep(0.05)
    check(sorted(mgr.named) == ["ctnetlink-%d" % k for k in range(SHARDS)],
          "the fd store holds %s" % sorted(mgr.named))
    made = ns.traffic(flows("udp", n, sport=20000, size=1, listen=False))
    want = {f.sport for f in made}
    stop(ctd)
    # No ctd runs: the flows end into the sockets the store keeps.
    ns.run(["conntrack", "-F"])
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS)], env=mgr.env(),
              tag="r1", listen_fds=dict(sorted(mgr.named.items())))
    wait_stable(lambda: sports_of_json(ctd.json)[0].total(), 60)
    log = ctd.log_text()
    stop(ctd)
    mgr.close()
    for fd in mgr.named.values():
        os.close(fd)
    check("took over %d shard sockets" % SHARDS in log and
          log.count("took over the ctnetlink socket") == SHARDS,
          "the shards did not take their sockets back:\n" + log)
    seen, broken = sports_of_json(ctd.json)
    check(broken == 0, "%d lines are not JSON" % broken)
    judge("json", seen, want, 0)
    print("restart: the %d shard sockets in the fd store (ctnetlink-0..%d); "
          "%d flows ended while no ctd ran, every one recorded once by the "
          "next" % (SHARDS, SHARDS - 1, n))


def scenario_store(ns, binary, tmp, n):
    import sqlite3
    db = os.path.join(tmp, "flows.db")
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS), "--store", db])
    wait_shards(ctd, SHARDS, 20)
    ns.traffic(flows("udp", n, sport=20000, size=1, listen=False))
    ns.run(["conntrack", "-F"])
    total = ctd.wait_stats("every record in the store", lambda st:
                           st.get("out_store_delivered", 0) >= n, 60)
    stop(ctd)
    con = sqlite3.connect(db)
    rows, sports = con.execute("SELECT count(*), count(DISTINCT sport) FROM "
                               "flows WHERE dport = 5555").fetchone()
    con.close()
    check(rows == n and sports == n, "the store has %d rows, %d distinct "
          "flows, for %d" % (rows, sports, n))
    ctdns.identity(total, "store")
    print("store: %d shards writing one SQLite store: %d rows, each flow once; "
          "%d commits met another writer and were written again "
          "(store_err_busy)" % (SHARDS, rows, total["out_store_store_err_busy"]))


def scenario_ipfix(ns, binary, tmp, n):
    import ipfixtool
    sink = os.path.join(tmp, "recv.ipfix")
    recv = ipfixtool.UdpSink(ns, 4739, sink)
    ctd = Ctd(ns, binary, tmp, ["--shards", str(SHARDS), "--ipfix",
                                "udp:127.0.0.1:4739", "--ipfix-domain", "7"])
    wait_shards(ctd, SHARDS, 20)
    made = ns.traffic(flows("udp", n, sport=20000, size=1, listen=False))
    ns.run(["conntrack", "-F"])
    total = ctd.wait_stats("every record sent", lambda st:
                           st.get("out_ipfix_delivered", 0) >= n, 60)
    stop(ctd)
    recv.stop()
    with open(sink, "rb") as f:
        msgs, left = ipfixtool.split_messages(f.read())
    check(left == 0, "%d bytes of a cut message" % left)
    domains = collections.Counter(int.from_bytes(m[12:16], "big") for m in msgs)
    check(sorted(domains) == list(range(7, 7 + SHARDS)),
          "observation domains %s, expected 7..%d" % (dict(domains), 6 + SHARDS))
    recs, _, _ = ipfixtool.ipfixdump(sink)
    ipfixtool.once_each(recs, [f.sport for f in made],
                        lambda k: k[3] != 5555)
    ctdns.identity(total, "ipfix")
    print("ipfix: %d shards, one session each with observation domains %s "
          "(messages per domain); %d flows, every one once" % (
              SHARDS, dict(sorted(domains.items())), n))


def arguments(ap):
    ap.add_argument("--flows", type=int, default=10000)
    ap.add_argument("--scenarios",
                    default="storm,kills,usr2,restart,store,ipfix")


def main(args):
    for name in args.scenarios.split(","):
        with ctdns.sandbox("sh") as (ns, tmp):
            if name == "storm":
                scenario_storm(ns, args.ctd, tmp, args.flows)
            elif name == "kills":
                scenario_kills(ns, args.ctd, tmp, 2 * args.flows)
            elif name == "restart":
                scenario_restart(ns, args.ctd, tmp, args.flows // 2)
            elif name == "store":
                scenario_store(ns, args.ctd, tmp, args.flows // 2)
            elif name == "ipfix":
                scenario_ipfix(ns, args.ctd, tmp, args.flows // 5)
            elif name == "usr2":
                scenario_usr2(ns, args.ctd, tmp, args.flows // 2)
            else:
                raise ctdns.Fail("unknown scenario %s" % name)
    print("shards_run: all scenarios passed")


if __name__ == "__main__":
    ctdns.main(main, arguments)

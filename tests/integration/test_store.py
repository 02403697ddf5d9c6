#!/usr/bin/env python3
"""The flow store keeps every flow exactly once, through a crash.

ctd runs in a namespace with `--store` in the test's directory. First
800 known UDP flows from three sources (127.0.0.2 sends the most bytes),
100 from ::1, 20 SNATed (127.0.0.8 leaves as 127.0.0.7:30000-39999) and
20 DNATed (127.0.0.10:7000 is 127.0.0.1:5555 inside) end with
`conntrack -F`: each flow must be exactly one row, with the packets and
bytes both ways that the JSON record and the ground truth have, and
`ctd report top` must name 127.0.0.2 first, with the flows and bytes the
rows add up to. `ctd report top --by src` gives every source host the
flows, packets and bytes of the ground truth, and the same bytes as the
JSON file's records; `ctd report totals` adds up to all of them; `ctd
report nat 127.0.0.7:PORT` names the inside host and port of each
SNATed flow, and `ctd report nat 127.0.0.10:7000` the DNAT's inside
host for each DNATed one.

Then 5,000 more flows end while the test holds the database's write lock
(another writer): ctd's commits fail and the records stay held. The
lock is released, and as soon as ctd's next commit shows in its
counters ctd is killed with SIGKILL. Last, 20,000 flows end in one
`conntrack -F` and ctd is killed with SIGKILL as soon as the first of
their rows is committed, mid-storm. The test plays systemd's fd store,
so the ctnetlink socket outlives each ctd and the kernel keeps the
DESTROYs for the next one. Each new ctd, on the same store and spool,
replays what was not final; repeats of rows already committed are
ignored (and counted), so every flow is still exactly one row with the
kernel's counters, and the rollups add up to the rows. The one exception
is ctd's documented bound for SIGKILL: the receive batch it was handling
(at most 64 DESTROYs, read from the socket and not yet in the output's
write-ahead log) may be lost. Delivery flushes each output and then
writes that output's log, output by output, so a SIGKILL between the
JSON file's write and the store's commit leaves that batch in the JSON
file and not in the store (seen in about half the runs): the test allows
up to 64 flows missing from each, and none doubled.

Last, old rows (copies of the stored ones, two days older, as a store
left by a stopped ctd would have) and a ctd started with
`--store-retention 1d --store-max-size 1M`: its first prune removes
exactly the old rows (store_pruned), then the newest rows are kept
while the oldest go until the pages in use are under 1 MiB
(store_pruned_size), and the rollups still hold every flow.

Usage: test_store.py --ctd PATH
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows

SETS = [  # (source, flows, payload): 127.0.0.2 sends the most bytes
    ("127.0.0.2", 300, 700), ("127.0.0.3", 300, 200), ("127.0.0.4", 200, 50),
]
MORE, STORM = 5000, 20000
NAT = ctdns.NAT4
NNAT = 20
# What a SIGKILL may lose: the receive batch in hand (test_systemd.py).
PER_KILL = 64


def first_sets():
    return [flows("udp", n, src=src, dst="127.0.0.1", sport=20000 + 10000 * i,
                  size=size, replies=1, reply_size=30)
            for i, (src, n, size) in enumerate(SETS)] + [
        flows("udp", 100, src="::1", sport=50000, size=[10, 90], replies=1,
              reply_size=7),
        flows("udp", NNAT, tag="snat", src="127.0.0.8", dst="127.0.0.1",
              dport=5556, sport=51000, size=33, replies=1, reply_size=11),
        flows("udp", NNAT, tag="dnat", src="127.0.0.9", dst="127.0.0.10",
              dport=7000, listen=("127.0.0.1", 5555), sport=52000, size=44,
              replies=1, reply_size=12)]


def addr(blob):
    return socket.inet_ntop(socket.AF_INET6 if len(blob) == 16 else
                            socket.AF_INET, blob)


def rows(db):
    """Every row as {(src, sport): row}; fails on a flow stored twice."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                          isolation_level=None)
    con.execute("BEGIN")    # one snapshot: ctd may commit meanwhile
    out, n = {}, 0
    for r in con.execute("SELECT src, sport, orig_packets, orig_bytes, "
                         "reply_packets, reply_bytes, end_reason FROM flows"):
        key = (addr(r[0]), r[1])
        check(key not in out, "flow %s:%d stored twice" % key)
        out[key] = r[2:]
        n += 1
    sums = [con.execute(q).fetchone() for q in (
        "SELECT COUNT(*), SUM(orig_bytes + reply_bytes) FROM flows",
        "SELECT SUM(flows), SUM(bytes) FROM rollup WHERE span = 60 AND "
        "kind = 0",
        # Destinations: hour cells up to the fold mark, minute cells of
        # the hours after it (not folded yet), as ctd report reads them.
        "SELECT SUM(flows), SUM(bytes) FROM rollup, rollup_state WHERE "
        "kind = 1 AND ((span = 3600 AND bucket < folded) OR "
        "(span = 60 AND bucket >= folded))",
        "SELECT SUM(flows), SUM(bytes) FROM rollup WHERE span = 86400 AND "
        "kind = 2")]
    con.execute("COMMIT")
    con.close()
    check(sums[0] == sums[1] == sums[2],
          "rollups do not add up to the rows: %s" % sums)
    return out


def check_truth(stored, made, lost=frozenset()):
    """Each flow made is one row with the kernel's counters, but those
    in lost (rows a SIGKILL took with the receive batch in hand)."""
    check(len(stored) == len(made) - len(lost), "%d rows for %d flows, "
          "%d lost" % (len(stored), len(made), len(lost)))
    for f in made:
        got = stored.get((f.src, f.sport))
        if (f.src, f.sport) in lost and got is None:
            continue
        check(got is not None, "flow %s:%d has no row" % (f.src, f.sport))
        check(tuple(got[:4]) == f.counts and got[4] == "destroy",
              "flow %s:%d: row %s, made %s" % (f.src, f.sport, got, f.counts))


KILLS = 2    # SIGKILLs in the test: crash_round and storm_round


def json_records(ctd, kills=KILLS):
    """The JSON file's records. A SIGKILL in the middle of a write leaves
    the file ending inside a line: the next ctd ends that line (counted in
    torn_lines) and writes its record again, as it was not final; so at
    most one line per SIGKILL is not JSON."""
    out, torn = [], 0
    with open(ctd.json) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    check(torn <= kills, "%d lines of %s are not JSON (%d SIGKILLs)"
          % (torn, ctd.json, kills))
    return out


def check_json(stored, records):
    for r in records:
        o, p = r["orig"], r["reply"]
        got = stored.get((o["src"], o["sport"]))
        check(got is not None and tuple(got[:4]) == (
            o["packets"], o["bytes"], p["packets"], p["bytes"]),
            "JSON record %s:%d differs from its row %s"
            % (o["src"], o["sport"], got))


def report(ctd, db, *args):
    r = subprocess.run([ctd, "report"] + list(args) + ["--store", db,
                                                       "--json"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "ctd report %s failed: %s" % (args, r.stderr))
    return json.loads(r.stdout)["rows"]


def report_top(ctd, db):
    return report(ctd, db, "top", "--since", "1h", "--limit", "3")


def sums(pairs):
    out = {}
    for host, counts in pairs:
        old = out.get(host, (0, 0, 0))
        out[host] = tuple(a + b for a, b in zip(old, counts))
    return out


def check_hosts(ctd, db, made, records):
    """report top --by src against the ground truth and the JSON file."""
    rows = report(ctd, db, "top", "--by", "src", "--since", "1h",
                  "--limit", "0")
    got = {r["addr"]: (r["flows"], r["packets"], r["bytes"]) for r in rows}
    truth = sums((f.src, (1, f.packets + f.reply_packets,
                          f.bytes + f.reply_bytes)) for f in made)
    check(got == truth, "report top by host %s, ground truth %s"
          % (got, truth))
    js = sums((r["orig"]["src"], (1, r["orig"]["packets"] +
                                  r["reply"]["packets"], r["orig"]["bytes"] +
                                  r["reply"]["bytes"])) for r in records)
    check(got == js, "report top by host %s, JSON file %s" % (got, js))
    tot = report(ctd, db, "totals", "--since", "1h", "--every", "1m")
    check(sum(t["bytes"] for t in tot) == sum(v[2] for v in truth.values()),
          "report totals %s do not add up to the flows" % tot)
    print("report top by host = ground truth = JSON file:", got)


def check_nat(ctd, db, made):
    """report nat finds the inside host of every NATed flow."""
    snat = [f for f in made if f.tag == "snat"]
    dnat = [f for f in made if f.tag == "dnat"]
    check(len(snat) == len(dnat) == NNAT, "NAT flows missing from the truth")
    for f in snat:
        check(f.peer and f.peer[0] == "127.0.0.7", "flow %s:%d not SNATed: "
              "the server saw %s" % (f.src, f.sport, f.peer))
        rows = report(ctd, db, "nat", "127.0.0.7:%d" % f.peer[1], "--at",
                      "now")
        check([(r["inside"], r["inside_port"]) for r in rows] ==
              [(f.src, f.sport)], "report nat 127.0.0.7:%d: %s, made from "
              "%s:%d" % (f.peer[1], rows, f.src, f.sport))
    rows = report(ctd, db, "nat", "127.0.0.10:7000", "--since", "10m",
                  "--limit", "0")
    check(sorted((r["inside"], r["inside_port"], r["peer"], r["peer_port"])
                 for r in rows) ==
          sorted(("127.0.0.1", 5555, f.src, f.sport) for f in dnat),
          "report nat 127.0.0.10:7000: %s" % rows)
    print("report nat: %d SNAT inside hosts, %d DNAT" % (len(snat), len(rows)))


def first_round(ns, args, tmp, db, env):
    ctd = Ctd(ns, args.ctd, tmp, ["--store", db], env=env)
    ns.run(["nft", NAT])
    made = ns.traffic(*first_sets())
    ns.run(["conntrack", "-F"])
    n = len(made)
    check(ctd.wait_records(n, 60) is not None, "JSON records missing")
    ctd.wait_stats("every record stored", lambda s: s.get(
        "out_store_store_rows") == n and s.get("out_store_held") == 0, 30)
    stored = rows(db)
    check_truth(stored, made)
    check_json(stored, json_records(ctd, 0))
    top = report_top(args.ctd, db)
    want = {}
    for (src, _), r in stored.items():
        f, b = want.get(src, (0, 0))
        want[src] = (f + 1, b + r[1] + r[3])
    check(top[0]["addr"] == "127.0.0.2" and len(top) == 3 and
          all(want[t["addr"]] == (t["flows"], t["bytes"]) for t in top),
          "report top: %s, rows say %s" % (top, want))
    print("report top:", top)
    check_hosts(args.ctd, db, made, json_records(ctd, 0))
    check_nat(args.ctd, db, made)
    return ctd, made


def crash_round(ns, args, tmp, db, ctd):
    made = ns.traffic(flows("udp", MORE, src="127.0.0.5", dst="127.0.0.1",
                            sport=5000, size=[20, 40, 80], replies=1,
                            reply_size=10))
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    before = ctd.stats()["out_store_store_rows"]
    ns.run(["conntrack", "-F"])
    st = ctd.wait_stats("failed commits", lambda s: s.get(
        "out_store_store_commit_errors", 0) > 0 and
        s.get("out_store_records", 0) >= before + MORE, 60)
    check(st["out_store_store_rows"] == before,
          "rows written while the database was locked")
    lock.execute("ROLLBACK")
    lock.close()
    t0 = time.time()
    ctd.wait_stats("a commit after the lock", lambda s: s.get(
        "out_store_store_rows", 0) > before, 30)
    ctd.proc.send_signal(signal.SIGKILL)
    ctd.proc.wait(timeout=10)
    print("killed ctd %.2f s after the lock went" % (time.time() - t0))
    return made


def storm_round(ns, args, tmp, db, env, mgr, made):
    """20,000 flows end at once; SIGKILL once the first rows landed."""
    ctd = Ctd(ns, args.ctd, tmp, ["--store", db], env=env, tag="ctd3",
              listen_fd=mgr.stored)
    more = ns.traffic(flows("udp", STORM, src="127.0.0.6", dst="127.0.0.1",
                            sport=30000, size=[10, 30], replies=1,
                            reply_size=5))
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                          isolation_level=None)
    # fetchall: a statement left unfinished would pin its snapshot.
    count = lambda: con.execute("SELECT COUNT(*) FROM flows").fetchall()[0][0]
    before = count()
    flush = ns.start(["conntrack", "-F"], subprocess.DEVNULL, subprocess.DEVNULL)
    end = time.time() + 60
    while count() == before:
        check(time.time() < end, "no storm row committed in 60 s")
        time.sleep(0.002)
    ctd.proc.send_signal(signal.SIGKILL)
    ctd.proc.wait(timeout=10)
    n = count() - before
    con.close()
    check(flush.wait(timeout=60) == 0, "conntrack -F failed")
    print("storm: SIGKILL as soon as the first storm rows were committed "
          "(%d seen then, of %d)" % (n, STORM))
    return more


def lost_records(ctd, stored, made):
    """Flows without a JSON record in any run, and without a row: a
    SIGKILL mid-storm loses the receive batch in hand (at most PER_KILL,
    as the systemd test allows) for the outputs whose log it was not in."""
    keys = {(f.src, f.sport) for f in made}
    seen = {(r["orig"]["src"], r["orig"]["sport"]) for r in json_records(ctd)}
    no_json, no_row = keys - seen, keys - set(stored)
    check(len(no_json) <= PER_KILL and len(no_row) <= PER_KILL,
          "%d flows have no JSON record, %d no row (at most %d may be lost)"
          % (len(no_json), len(no_row), PER_KILL))
    return no_json, no_row


def restart(ns, args, tmp, db, env, mgr, made, tag):
    """A new ctd on the same socket, store and spool: every flow made is
    one row, but those no output ever got; returns its counters."""
    ctd = Ctd(ns, args.ctd, tmp, ["--store", db], env=env, tag=tag,
              listen_fd=mgr.stored)
    ctd.wait_stats("every record stored after the restart",
                   lambda s: s.get("out_store_held", 1) == 0 and
                   s.get("out_json_held", 1) == 0 and
                   len(rows(db)) + PER_KILL >= len(made) and
                   ctd.count_records() >= len(made) - PER_KILL, 60)
    time.sleep(1)    # DESTROYs the kernel still holds come in
    stored = rows(db)
    no_json, lost = lost_records(ctd, stored, made)
    check_truth(stored, made, lost)
    c = ctdns.identity(ctd.stop(), "store")
    print("%s: %d rows, %d repeats ignored, %d records carried over, "
          "%d commit errors; %d flows in all; lost with the batch in hand "
          "at the SIGKILL: %d rows, %d JSON records"
          % (tag, c["store_rows"], c["store_repeats"], c["carried"],
             c["store_commit_errors"], len(made), len(lost), len(no_json)))
    return c


OLD_MS = 2 * 86400 * 1000


def age_copies(db):
    """Copies of every row two days older (ids no flow has), as rows a
    stopped ctd left behind; the rollups are not touched. Returns the
    rows there were and their end times, sorted."""
    con = sqlite3.connect(db, isolation_level=None)
    ends = sorted(r[0] for r in con.execute("SELECT end_ms FROM flows"))
    con.execute(
        "INSERT INTO flows SELECT id + 4294967296, kstart_ns, netns, family, "
        "proto, src, dst, sport, dport, reply_src, reply_dst, reply_sport, "
        "reply_dport, orig_packets, orig_bytes, reply_packets, reply_bytes, "
        "start_ms - ?1, end_ms - ?1, end_reason, zone, mark FROM flows",
        (OLD_MS,))
    con.close()
    return ends


def prune_round(ns, args, tmp, db, env, mgr):
    """store-retention prunes exactly the old copies, store-max-size then
    the oldest rows, each counted apart; the rollups keep every flow."""
    ends = age_copies(db)
    ctd = Ctd(ns, args.ctd, tmp, ["--store", db, "--store-retention", "1d",
                                  "--store-max-size", "1M"],
              env=env, tag="ctd5", listen_fd=mgr.stored)
    ns.traffic(flows("udp", 10, src="127.0.0.11", dst="127.0.0.1",
                     sport=6000, size=5, replies=1, reply_size=5))
    ns.run(["conntrack", "-F"])
    st = ctd.wait_stats("pruned by retention and by size", lambda s: s.get(
        "out_store_store_pruned", 0) == len(ends) and
        s.get("out_store_store_pruned_size", 0) > 0 and
        s.get("out_store_store_rows", 0) == 10, 30)
    by_size = st["out_store_store_pruned_size"]
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    left, oldest = con.execute("SELECT COUNT(*), MIN(end_ms) FROM flows "
                               "WHERE src != x'7f00000b'").fetchone()
    # Day cells hold the folded hours, minute cells the rest (kept).
    day = con.execute("SELECT SUM(flows) FROM rollup, rollup_state WHERE "
                      "kind = 0 AND (span = 86400 OR (span = 60 AND "
                      "bucket >= folded))").fetchone()[0]
    con.close()
    check(left + by_size == len(ends) and left > 0 and
          oldest >= ends[by_size - 1],
          "%d rows left, %d pruned by size of %d: not the oldest (%d < %d)"
          % (left, by_size, len(ends), oldest, ends[by_size - 1]))
    check(st["out_store_store_bytes"] <= 1 << 20 and
          st["out_store_store_max_bytes"] == 1 << 20,
          "store_bytes %d past store-max-size" % st["out_store_store_bytes"])
    check(day == len(ends) + 10, "day rollups hold %s flows, not %d"
          % (day, len(ends) + 10))
    print("pruned %d old rows by retention, %d oldest by size (%d left, "
          "%d bytes in use, %d bytes per flow)"
          % (st["out_store_store_pruned"], by_size, left,
             st["out_store_store_bytes"], st["out_store_store_bytes_per_flow"]))
    ctd.stop()


def main(args):
    with ctdns.sandbox("sto") as (ns, tmp):
        ns.sysctl("nf_conntrack_acct", 1)
        ns.sysctl("nf_conntrack_udp_timeout", 600)
        ns.sysctl("nf_conntrack_udp_timeout_stream", 600)
        db = os.path.join(tmp, "flows.db")
        mgr = ctdns.Manager(os.path.join(tmp, "notify.sock"))
        env = mgr.env()
        ctd, made = first_round(ns, args, tmp, db, env)
        mgr.wait("FDSTORE=1", 5)
        made += crash_round(ns, args, tmp, db, ctd)
        restart(ns, args, tmp, db, env, mgr, made, "ctd2")
        made += storm_round(ns, args, tmp, db, env, mgr, made)
        c = restart(ns, args, tmp, db, env, mgr, made, "ctd4")
        check(c["store_commit_errors"] == 0, "commit errors after the restart")
        print("db %d bytes for %d flows (%.0f per flow, rollups and index "
              "included)" % (os.path.getsize(db), len(made),
                             os.path.getsize(db) / len(made)))
        prune_round(ns, args, tmp, db, env, mgr)
        mgr.close()


if __name__ == "__main__":
    ctdns.main(main)

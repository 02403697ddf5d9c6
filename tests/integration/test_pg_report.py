#!/usr/bin/env python3
"""`ctd report` gives the same answers from PostgreSQL as from SQLite, and
the postgresql output prunes past store-retention.

One ctd (with --netns all, in a parent namespace that watches one child)
writes the same real flows to its SQLite store and to a PostgreSQL 15
server the test starts (as test_postgresql.py does): in the parent 800
UDP flows from three sources, 100 from ::1, 20 SNATed and 20 DNATed (the
NAT rules of test_store.py), in the child 60 flows; all end with
`conntrack -F`. Then every report, `top` by each key and in each order,
`flows` unfiltered and by source, destination, prefix, IPv6 address,
port, protocol and namespace, `nat` by address and by address and port,
and `totals` every 1m, 5m, 1h and 1d, is run with --json against both
stores over the same window: each output must be the same text, most of
them non-empty, and the totals and `top --by src` must equal the test's
ground truth (flows, packets and bytes per host from the traffic it made).

Retention: ctd is stopped (records = delivered + failed + held for both
outputs), and the test adds to the database a copy of every row two days
older, a copy of every minute, hour and day rollup cell two days older,
and the same old rows under another exporter's name. A ctd started with
--store-retention 1d prunes exactly the copies of its own exporter
(store_pruned), and the old minute cells; the old hour and day cells
(store-rollup-retention 400 days) and the other exporter's rows stay,
and the reports of the first round still give the same answers.

Each time, the pass that prunes first folds the minute cells pending
(rollup_pending) into the hour and day cells: the reports that read
hour and day cells (top over 26 hours, totals every 1h and 2h) are
compared between the stores while cells are pending and after the fold.

Last, a ctd connecting as a role without DELETE on flows and rollup
(DELETE only on rollup_pending): its prune is refused, counted
(pg_prune_errors) and rolled back while the fold before it commits, and
new flows are still stored, every one.

Usage: test_pg_report.py --ctd PATH
"""
import json
import os
import subprocess
import sys
import time

import ctdns
from ctdns import Ctd, Netns, check, flows
from test_netns import private_run_netns
from test_postgresql import Server
from test_store import NAT, first_sets

DAY_MS = 86400000
CHILD_FLOWS = 60


def report(ctd, db, args, window):
    r = subprocess.run([ctd, "report"] + args + ["--db", db, "--json"] +
                       window, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ctd report %s --db %s failed: %s"
          % (" ".join(args), db.split("?")[0], r.stderr))
    return r.stdout


def questions(child, snat_port):
    out = []
    for by in ("src", "dst", "port", "pair", "netns"):
        for order in ("bytes", "packets", "flows"):
            out.append(["top", "--by", by, "--order", order, "--limit", "0"])
    out.append(["top", "--limit", "3"])
    for f in ([], ["--src", "127.0.0.2"], ["--src", "127.0.0.0/29"],
              ["--dst", "127.0.0.1"], ["--src", "::1"], ["--port", "5555"],
              ["--proto", "udp"], ["--netns", child],
              ["--src", "127.0.0.3", "--port", "30001"]):
        out.append(["flows", "--limit", "0"] + f)
    out.append(["flows", "--limit", "25"])
    out += [["nat", "127.0.0.10:7000", "--limit", "0"],
            ["nat", "127.0.0.7", "--limit", "0"],
            ["nat", "127.0.0.7:%d" % snat_port, "--limit", "0"]]
    out += [["totals", "--every", e] for e in ("1m", "5m", "1h", "1d")]
    return out


def day_window():
    """26 hours to now: top reads hour (and day) cells, the minute cells
    not yet folded into them too."""
    fmt = "%Y-%m-%dT%H:%M:%S"
    return ["--from", time.strftime(fmt, time.localtime(time.time() - 26 * 3600)),
            "--to", time.strftime(fmt, time.localtime(time.time() + 60))]


def compare_folded(args, db, uri, what):
    """Reports that read hour and day cells: the same from both stores."""
    window = day_window()
    qs = [["top", "--by", b, "--limit", "0"] for b in
          ("src", "dst", "port", "netns")]
    qs += [["totals", "--every", e] for e in ("1h", "2h")]
    for q in qs:
        a = report(args.ctd, db, q, window)
        b = report(args.ctd, uri, q, window)
        check(a == b and json.loads(a)["rows"], "ctd report %s over 26 h "
              "(%s): SQLite says\n%s\nPostgreSQL says\n%s"
              % (" ".join(q), what, a, b))
    print("%d reports over 26 hours (%s): the same JSON" % (len(qs), what))


def compare(args, db, uri, child, made, window):
    """Every question's JSON from both stores: the same text."""
    snat = [f for f in made if f.tag == "snat"]
    check(snat and snat[0].peer, "no SNATed flow in the ground truth")
    empty = 0
    for q in questions(child, snat[0].peer[1]):
        a = report(args.ctd, db, q, window)
        b = report(args.ctd, uri, q, window)
        check(a == b, "ctd report %s: SQLite says\n%s\nPostgreSQL says\n%s"
              % (" ".join(q), a, b))
        empty += not json.loads(a)["rows"]
    check(empty == 0, "%d reports were empty" % empty)
    print("%d reports: the same JSON from SQLite and PostgreSQL"
          % len(questions(child, 0)))


def truth_checks(args, uri, made, window):
    """top --by src and totals from PostgreSQL against the ground truth."""
    truth = {}
    for f in made:
        old = truth.get(f.src, (0, 0, 0))
        truth[f.src] = (old[0] + 1, old[1] + f.packets + f.reply_packets,
                        old[2] + f.bytes + f.reply_bytes)
    rows = json.loads(report(args.ctd, uri, ["top", "--by", "src", "--limit",
                                             "0"], window))["rows"]
    got = {r["addr"]: (r["flows"], r["packets"], r["bytes"]) for r in rows}
    check(got == truth, "report top --by src %s, ground truth %s"
          % (got, truth))
    want = tuple(sum(v[i] for v in truth.values()) for i in range(3))
    for every in ("1m", "1d"):
        tot = json.loads(report(args.ctd, uri, ["totals", "--every", every],
                                window))["rows"]
        sums = tuple(sum(t[k] for t in tot) for k in
                     ("flows", "packets", "bytes"))
        check(sums == want, "report totals --every %s add up to %s, ground "
              "truth %s" % (every, sums, want))
    print("report top --by src and totals = ground truth:", want)


def make_flows(parent, child):
    parent.run(["nft", NAT])
    made = parent.traffic(*first_sets())
    made += child.traffic(flows("udp", CHILD_FLOWS, src="127.0.0.11",
                                dst="127.0.0.1", sport=40000, size=[5, 60],
                                replies=1, reply_size=9))
    for ns in (parent, child):
        ns.run("conntrack -F 2>/dev/null")
    return made


def wait_stored(ctd, n, outputs=("store", "postgresql")):
    ctd.wait_stats("every record stored in both", lambda s: all(
        s.get("out_%s_store_rows" % o) == n and
        s.get("out_%s_held" % o) == 0 for o in outputs), 60)


def first_round(args, srv, parent, child, tmp, db):
    ctd = Ctd(parent, args.ctd, tmp, ["--store", db, "--netns", "all",
                                      "--postgresql", srv.conninfo()])
    ctd.wait_log("watching network namespace %s " % child.name, 10)
    child.sysctl("nf_conntrack_acct", 1)
    t0 = time.time() - 60
    made = make_flows(parent, child)
    wait_stored(ctd, len(made))
    window = ["--from", time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
              "--to", time.strftime("%Y-%m-%dT%H:%M:%S",
                                    time.localtime(time.time() + 120))]
    uri = "postgresql:///flows?host=%s&user=postgres" % srv.sock
    compare(args, db, uri, child.name, made, window)
    truth_checks(args, uri, made, window)
    check(int(srv.psql("SELECT count(*) FROM rollup_pending")[0][0]) > 0,
          "no minute cells pending: the folded path was taken instead")
    compare_folded(args, db, uri, "minute cells pending")
    c = ctd.stop()
    for o in ("store", "postgresql", "json"):
        ctdns.identity(c, o, made=len(made))
    return made, uri, window


def age_copies(srv):
    """Old copies: this exporter's rows and cells and another's rows."""
    cols = [r[0] for r in srv.psql(
        "SELECT column_name FROM information_schema.columns WHERE "
        "table_name = 'flows' ORDER BY ordinal_position")]
    aged = {"kstart_ns": "kstart_ns - %d000000" % (2 * DAY_MS),
            "start_ms": "start_ms - %d" % (2 * DAY_MS),
            "end_ms": "end_ms - %d" % (2 * DAY_MS)}
    sel = ", ".join(aged.get(c, c) for c in cols)
    srv.psql("INSERT INTO flows SELECT %s FROM flows" % sel)
    srv.psql("INSERT INTO flows SELECT 'elsewhere', %s FROM flows WHERE "
             "end_ms < %d" % (", ".join(cols[1:]),
                              int(time.time() * 1000) - DAY_MS))
    srv.psql("INSERT INTO rollup SELECT exporter, span, kind, bucket - %d, "
             "key, flows, packets, bytes FROM rollup" % (2 * DAY_MS))
    # the hour and day cells of minutes not yet folded, as folded cells
    srv.psql("INSERT INTO rollup SELECT exporter, s.span, kind, bucket - "
             "mod(bucket, s.span * 1000) - %d, key, sum(flows), sum(packets), "
             "sum(bytes) FROM rollup_pending, (VALUES (3600), (86400)) AS "
             "s(span) GROUP BY 1, 2, 3, 4, 5" % (2 * DAY_MS))


def count(srv, where, table="flows"):
    return int(srv.psql("SELECT count(*) FROM %s WHERE %s" % (table, where))
               [0][0])


def prune_round(args, srv, parent, tmp, db, made, uri, window):
    host = os.uname().nodename
    age_copies(srv)
    cut = int(time.time() * 1000) - DAY_MS
    n = len(made)
    old_cells = count(srv, "bucket < %d AND span > 60" % cut, "rollup")
    check(count(srv, "end_ms < %d" % cut) == 2 * n and old_cells > 0 and
          count(srv, "bucket < %d AND span = 60" % cut, "rollup") > 0,
          "the old copies are not in place")
    ctd = Ctd(parent, args.ctd, tmp, ["--store", db, "--netns", "all",
                                      "--postgresql", srv.conninfo(),
                                      "--store-retention", "1d"], tag="ctd2")
    st = ctd.wait_stats("the old rows pruned", lambda s: s.get(
        "out_postgresql_store_pruned", 0) >= n, 30)
    check(st["out_postgresql_store_pruned"] == n and
          st.get("out_postgresql_pg_prune_errors", 0) == 0,
          "pruned %d rows (errors %d), the old copies were %d" % (
              st["out_postgresql_store_pruned"],
              st.get("out_postgresql_pg_prune_errors", 0), n))
    mine = "exporter = '%s'" % host
    check(count(srv, mine + " AND end_ms < %d" % cut) == 0 and
          count(srv, mine) == n and
          count(srv, "exporter = 'elsewhere'") == n,
          "after the prune: %d old rows of ours, %d of ours, %d of another "
          "exporter's" % (count(srv, mine + " AND end_ms < %d" % cut),
                          count(srv, mine), count(srv, "exporter = 'elsewhere'")))
    check(count(srv, "span = 60 AND bucket < %d" % cut, "rollup") == 0 and
          count(srv, "bucket < %d AND span > 60" % cut, "rollup") == old_cells,
          "the prune took other rollup cells than the old minutes")
    srv.psql("DELETE FROM flows WHERE exporter = 'elsewhere'")
    check(count(srv, "true", "rollup_pending") == 0,
          "the pass did not fold the pending minute cells")
    compare_folded(args, db, uri, "folded into hours and days")
    for q in (["top", "--by", "src", "--limit", "0"],
              ["totals", "--every", "1d"], ["totals", "--every", "1h"]):
        check(report(args.ctd, db, q, window) ==
              report(args.ctd, uri, q, window),
              "report %s differs between the stores after the prune" % q)
    print("prune: %d old rows and the old minute cells went, %d old hour and "
          "day cells and the other exporter's %d rows stayed" % (n, old_cells, n))
    c = ctd.stop()
    ctdns.identity(c, "postgresql")


def refused_round(args, srv, parent, child, tmp):
    """A role without DELETE: the prune is refused and counted, the
    batches go on."""
    srv.psql("CREATE ROLE ctdlimited LOGIN; GRANT SELECT, INSERT, UPDATE ON "
             "flows, rollup TO ctdlimited; GRANT SELECT, INSERT, DELETE ON "
             "rollup_pending TO ctdlimited")
    host = os.uname().nodename
    srv.psql("UPDATE flows SET end_ms = end_ms - %d WHERE exporter = '%s' AND "
             "id %% 2 = 0" % (3 * DAY_MS, host))
    srv.psql("INSERT INTO rollup_pending SELECT exporter, kind, bucket, key, "
             "flows, packets, bytes FROM rollup WHERE span = 60 AND "
             "exporter = '%s' LIMIT 5" % host)
    conninfo = "host=%s dbname=flows user=ctdlimited" % srv.sock
    ctd = Ctd(parent, args.ctd, tmp, ["--store", "none", "--netns", "all",
                                      "--postgresql", conninfo,
                                      "--store-retention", "1d"], tag="ctd3")
    ctd.wait_stats("the prune refused", lambda s: s.get(
        "out_postgresql_pg_prune_errors", 0) >= 1, 30)
    check(count(srv, "true", "rollup_pending") == 0,
          "the refused prune took the fold of the rollups with it")
    before = count(srv, "true")
    made = child.traffic(flows("udp", 200, src="127.0.0.12", dst="127.0.0.1",
                               sport=41000, size=20, replies=1, reply_size=9))
    child.run("conntrack -F 2>/dev/null")
    wait_stored(ctd, len(made), outputs=("postgresql",))
    c = ctd.stop()
    st = ctdns.identity(c, "postgresql", made=len(made))
    check(count(srv, "true") == before + len(made) and
          st["store_pruned"] == 0 and st["pg_lost"] == 0,
          "with the prune refused: %d rows for %d + %d, %d pruned, %d lost "
          "connections" % (count(srv, "true"), before, len(made),
                           st["store_pruned"], st["pg_lost"]))
    check("pruning rows past store-retention failed" in ctd.log_text(),
          "the refused prune was not logged")
    print("refused prune: %d errors counted, %d new flows stored, none lost"
          % (st["pg_prune_errors"], len(made)))


def main(args):
    rc = private_run_netns()
    if rc is not None:
        sys.exit(rc)
    srv = Server()
    try:
        with ctdns.sandbox("pgr") as (parent, tmp), Netns("pgc") as child:
            for ns in (parent, child):
                ns.sysctl("nf_conntrack_acct", 1)
            db = os.path.join(tmp, "flows.db")
            made, uri, window = first_round(args, srv, parent, child, tmp, db)
            prune_round(args, srv, parent, tmp, db, made, uri, window)
            refused_round(args, srv, parent, child, tmp)
    finally:
        srv.close()


if __name__ == "__main__":
    ctdns.main(main)

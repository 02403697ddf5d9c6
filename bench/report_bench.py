#!/usr/bin/env python3
"""Times `ctd report` on a big flow store and prints what a flow costs.

The store is filled by ctd-storebench (bench/storebench.c: ctd's own
out_store, the daemon's rows, rollups and batches) with N synthetic
flows ending evenly over one day, unless --db names one already filled.
Each query runs --runs times as the `ctd report` command a user types
(process start included); the median and the slowest are printed with
the rows it returned. The window is the data's own day and last hour
(read from the store), so a fill that took long still answers the same
questions.

Usage: report_bench.py --ctd build/ctd [--storebench build/bench/ctd-storebench]
                       [--db PATH] [-n FLOWS] [--runs 5]
"""
import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import time


def fill(args):
    if os.path.exists(args.db):
        return
    t = time.time()
    out = subprocess.run(["nice", args.storebench, "-n", str(args.n),
                          args.db], check=True, capture_output=True,
                         text=True).stdout
    print(out.strip())
    print("filled in %.0f s" % (time.time() - t))


def store_facts(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows, last = con.execute("SELECT COUNT(*), MAX(end_ms) FROM flows"
                             ).fetchone()
    page = con.execute("PRAGMA page_size").fetchone()[0]
    used = (con.execute("PRAGMA page_count").fetchone()[0] -
            con.execute("PRAGMA freelist_count").fetchone()[0]) * page
    rollups = con.execute("SELECT COUNT(*) FROM rollup").fetchone()[0]
    src = con.execute("SELECT src FROM flows WHERE end_ms > ? AND "
                      "length(src) = 4 LIMIT 1", (last - 600000,)
                      ).fetchone()[0]
    nat = con.execute("SELECT reply_dst, reply_dport, end_ms FROM flows "
                      "WHERE end_ms > ? AND reply_dst != src LIMIT 1",
                      (last - 1800000,)).fetchone()
    con.close()
    return rows, last, used, rollups, src, nat


def addr(blob):
    return ".".join(str(b) for b in blob)


def cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(args, argv):
    """Median and slowest wall time, median CPU time (user+sys: what the
    query costs whatever else the machine runs), rows."""
    times, cpus, n = [], [], 0
    for _ in range(args.runs):
        t, c = time.perf_counter(), cpu()
        r = subprocess.run([args.ctd, "report"] + argv + ["--store", args.db,
                                                          "--csv"],
                           capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        cpus.append(cpu() - c)
        if r.returncode:
            raise SystemExit("ctd report %s: %s" % (argv, r.stderr))
        n = r.stdout.count("\n") - 1
    return statistics.median(times), max(times), statistics.median(cpus), n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ctd", required=True)
    p.add_argument("--storebench", default="build/bench/ctd-storebench")
    p.add_argument("--db", default="/var/tmp/ctd-report-bench.db")
    p.add_argument("-n", type=int, default=10000000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    fill(args)
    rows, last, used, rollups, src, nat = store_facts(args.db)
    day = ["--from", "@%d" % (last // 1000 - 86400), "--to",
           "@%d" % (last // 1000 + 1)]
    hour = ["--from", "@%d" % (last // 1000 - 3600), "--to",
            "@%d" % (last // 1000 + 1)]
    s = addr(src)
    print("store: %d flows, %d rollup rows, %d bytes in use, %.0f bytes "
          "per flow (file %d bytes)" % (rows, rollups, used, used / rows,
                                        os.path.getsize(args.db)))
    queries = [
        ["top"] + day, ["top", "--by", "dst"] + day,
        ["top", "--by", "port"] + day, ["top", "--by", "pair"] + day,
        ["top", "--by", "netns"] + day,
        ["totals", "--every", "5m"] + day, ["totals", "--every", "1h"] + day,
        ["flows", "--src", s] + hour,
        ["flows", "--src", s, "--limit", "0"] + day,
        ["flows", "--src", s.rsplit(".", 1)[0] + ".0/24", "--limit", "0"] + hour,
        ["flows", "--port", "443", "--limit", "100"] + hour,
        ["nat", "%s:%d" % (addr(nat[0]), nat[1]), "--at", "@%d" % (nat[2] // 1000)],
    ]
    print("%-66s %8s %7s %7s %6s" % ("ctd report ... (@T: the data's day "
                                      "or hour)", "median s", "max s",
                                      "CPU s", "rows"))
    for q in queries:
        med, worst, c, n = run(args, q)
        shown = " ".join(a if not a.startswith("@") else "@T" for a in q)
        print("%-66s %8.3f %7.3f %7.3f %6d" % (shown, med, worst, c, n))


if __name__ == "__main__":
    main()

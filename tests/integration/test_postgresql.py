#!/usr/bin/env python3
"""The postgresql output keeps every flow exactly once, through a server
outage and a crash.

The test starts its own PostgreSQL 15 server (Debian's initdb and pg_ctl,
as the postgres user, on a Unix socket only, in a directory of its own)
and ctd in a namespace with `--postgresql` naming that socket and a
password (trust authentication ignores it; ctd must never show it:
neither `ctd -t -v` nor ctd's log may contain it). 20,000 UDP flows end,
10,000 in one `conntrack -D`; as soon as the first of their rows is
committed the server is stopped (pg_ctl -m fast: ctd's connection is cut
mid-batch) for --outage seconds, while the other 10,000 end: ctd must
count connect failures and hold the records (dying list, spool, with
--dying-max 1000). The server is started again; while ctd's first batch
after the outage is in the server's hands ctd is stopped (SIGSTOP), the
server commits the batch, and ctd is killed with SIGKILL without having
read that COMMIT's answer (a batch too quick to catch: ctd is killed at
the first new row instead). The test plays systemd's fd store, so the ctnetlink socket outlives ctd; a
new ctd on the same spool replays what was not final, the rows committed
already are ignored (counted as repeats), and then: every flow is exactly one row
with the kernel's counters (ground truth) and the JSON record's, and the
rollups add up to the rows, and so does `ctd report top --store
postgresql://...`. As in test_store.py, a SIGKILL may lose the
receive batch in hand (at most 64 DESTROYs) for each output whose log
it was not in yet, so up to 64 flows may miss a row, none be doubled.
At the end `ctd -s` (the counters at SIGTERM) must show records =
delivered + failed + held with nothing held.

Fails, never skips, when PostgreSQL is not installed.

Usage: test_postgresql.py --ctd PATH [--outage SECS]
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import ctdns
from ctdns import Ctd, check, flows

PGBIN = "/usr/lib/postgresql/15/bin"
STORM = 20000
PER_KILL = 64     # what a SIGKILL may lose: the receive batch in hand
SECRET = "s3cret-pw"


class Server:
    """A throw-away PostgreSQL cluster on a Unix socket, run by postgres."""

    def __init__(self):
        for tool in ("initdb", "pg_ctl"):
            check(os.access(os.path.join(PGBIN, tool), os.X_OK),
                  "%s/%s is missing: apt-get install postgresql" % (PGBIN, tool))
        check(shutil.which("psql"), "psql is missing: apt-get install "
              "postgresql-client")
        self.user = pwd.getpwnam("postgres")
        self.base = tempfile.mkdtemp(prefix="ctdpg-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.sock = os.path.join(self.base, "sock")
        os.mkdir(self.sock)
        os.chown(self.sock, self.user.pw_uid, self.user.pw_gid)
        os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.as_postgres([PGBIN + "/initdb", "-D", self.data, "-A", "trust",
                          "-U", "postgres", "--no-sync"])
        self.start()
        self.psql("CREATE DATABASE flows", db="postgres")

    def as_postgres(self, cmd, timeout=60):
        r = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres",
                            "--init-groups"] + cmd, capture_output=True,
                           text=True, timeout=timeout, cwd=self.base)
        check(r.returncode == 0, "%s failed: %s%s" % (cmd[0], r.stdout,
                                                      r.stderr))
        return r.stdout

    def start(self):
        self.as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-w", "-l",
                          os.path.join(self.base, "log"), "-o",
                          "-k %s -c listen_addresses=''" % self.sock, "start"])

    def stop(self):
        self.as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-w", "-m",
                          "fast", "stop"])

    def close(self):
        subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres",
                        "--init-groups", PGBIN + "/pg_ctl", "-D", self.data,
                        "-m", "immediate", "stop"], capture_output=True,
                       cwd=self.base)
        shutil.rmtree(self.base, ignore_errors=True)

    def conninfo(self):
        return "host=%s dbname=flows user=postgres password=%s" % (
            self.sock, SECRET)

    def psql(self, sql, db="flows"):
        r = subprocess.run(["psql", "-h", self.sock, "-U", "postgres", "-d",
                            db, "-XtA", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-c", sql], capture_output=True, text=True,
                           timeout=60)
        check(r.returncode == 0, "psql %s: %s" % (sql, r.stderr))
        return [l.split("\t") for l in r.stdout.splitlines()]

    def count(self):
        try:
            return int(self.psql("SELECT count(*) FROM flows")[0][0])
        except ctdns.Fail:
            return 0    # the table is not there yet


def folded(span, kind):
    """An hour or day rollup's sums with the minute cells not yet folded
    into it (rollup_pending)."""
    return ("SELECT sum(f), sum(b) FROM (SELECT flows AS f, bytes AS b FROM "
            "rollup WHERE span = %d AND kind = %d UNION ALL SELECT flows, "
            "bytes FROM rollup_pending WHERE kind = %d) AS x"
            % (span, kind, kind))


def rows(srv):
    """Every row as {(src, sport): (counters, end_reason)}; fails on a
    flow stored twice and on rollups that do not add up to the rows."""
    out = {}
    for r in srv.psql("SELECT host(src), sport, orig_packets, orig_bytes, "
                      "reply_packets, reply_bytes, end_reason, exporter "
                      "FROM flows"):
        key = (r[0], int(r[1]))
        check(key not in out, "flow %s:%d stored twice" % key)
        out[key] = tuple(int(v) for v in r[2:6]) + (r[6], r[7])
    sums = [tuple(srv.psql(q)[0]) for q in (
        "SELECT count(*), sum(orig_bytes + reply_bytes) FROM flows",
        "SELECT sum(flows), sum(bytes) FROM rollup WHERE span = 60 AND "
        "kind = 0",
        folded(3600, 1), folded(86400, 2),
        "SELECT sum(flows), sum(bytes) FROM rollup WHERE span = 60 AND "
        "kind = 4")]
    check(all(s == sums[0] for s in sums),
          "rollups do not add up to the rows: %s" % sums)
    return out


def check_secret(args, srv, tmp):
    r = subprocess.run([args.ctd, "-t", "-v", "-c", "/dev/null",
                        "--postgresql", srv.conninfo()],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "password=(hidden)" in r.stdout and
          SECRET not in r.stdout + r.stderr,
          "ctd -t -v shows the password or fails: %s %s" % (r.stdout, r.stderr))


def end_flows(ns, src):
    return ns.start(["conntrack", "-D", "-s", src], subprocess.DEVNULL,
                    subprocess.DEVNULL)


def storm(ns, args, srv, ctd):
    """20,000 flows end: the first half in one go, and at its first row
    the server goes away; the second half ends while it is down. Back
    after the outage; SIGKILL at the first commit after it. Returns the
    flows made."""
    half = STORM // 2
    t0 = time.time()
    made = ns.traffic(*[flows("udp", half, src=src, dst="127.0.0.1",
                              sport=30000, size=[10, 30], replies=1,
                              reply_size=5)
                        for src in ("127.0.0.6", "127.0.0.7")])
    print("%d flows made in %.1f s" % (len(made), time.time() - t0))
    first = end_flows(ns, "127.0.0.6")
    end = time.time() + 60
    while srv.count() == 0:
        check(time.time() < end, "no row committed in 60 s")
        time.sleep(0.01)
    srv.stop()
    t0 = time.time()
    second = end_flows(ns, "127.0.0.7")
    check(first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0,
          "conntrack -D failed")
    time.sleep(max(0, args.outage - (time.time() - t0)))
    st = ctd.wait_stats("records spooled while the server is down",
                        lambda s: s.get("out_postgresql_pg_connect_errors", 0)
                        > 1 and s.get("out_postgresql_spooled", 0) > 0, 30)
    print("server down %.1f s: %d connect failures, %d records held, %d "
          "deferred, %d spooled" % (
              time.time() - t0, st["out_postgresql_pg_connect_errors"],
              st["out_postgresql_held"], st["out_postgresql_deferred"],
              st["out_postgresql_spooled"]))
    srv.start()
    t0 = time.time()
    caught = kill_after_commit(srv, ctd)
    print("SIGKILL %.2f s after the server came back, %d rows then; %s"
          % (time.time() - t0, srv.count(), "a batch was committed that ctd "
             "never heard of" if caught else "between commits"))
    return made, caught


def merging(srv):
    """Whether ctd's batch statement (INSERT, rollups, COMMIT) runs."""
    return int(srv.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                        "query LIKE 'WITH ins AS%' AND state = 'active'")
               [0][0]) > 0


def kill_after_commit(srv, ctd):
    """Stops ctd while its first batch after the outage is in the server's
    hands; the server goes on to COMMIT (one query string), then ctd is
    killed without having read the answer: its next run replays rows
    stored already. Should the batch be too quick to catch, ctd is killed
    at the first new row instead. Returns whether it was caught."""
    before, end = srv.count(), time.time() + 60
    while not merging(srv):
        if srv.count() != before:
            ctd.proc.send_signal(signal.SIGKILL)
            ctd.proc.wait(timeout=10)
            return False
        check(time.time() < end, "no commit in 60 s after the outage")
    ctd.proc.send_signal(signal.SIGSTOP)
    while merging(srv):
        time.sleep(0.01)
    ctd.proc.send_signal(signal.SIGKILL)
    ctd.proc.wait(timeout=10)
    return True
    return made


def report_top(args, srv, stored):
    """ctd report top --store postgresql://...: the sources' flows and
    bytes as the rows add them up."""
    uri = "postgresql:///flows?host=%s&user=postgres&password=%s" % (
        srv.sock, SECRET)
    r = subprocess.run([args.ctd, "report", "top", "--store", uri, "--since",
                        "1h", "--json"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "ctd report top failed: %s" % r.stderr)
    want = {}
    for (src, _), row in stored.items():
        f, b = want.get(src, (0, 0))
        want[src] = (f + 1, b + row[1] + row[3])
    top = json.loads(r.stdout)["rows"]
    check(len(top) == len(want) and all(
        want[t["addr"]] == (t["flows"], t["bytes"]) for t in top),
        "report top: %s, rows say %s" % (top, want))
    print("report top from PostgreSQL:", top)


def check_all(srv, ctd, made):
    stored = rows(srv)
    keys = {(f.src, f.sport) for f in made}
    seen = {(r["orig"]["src"], r["orig"]["sport"]): r for r in ctd.records()}
    no_row, no_json = keys - set(stored), keys - set(seen)
    check(len(no_row) <= PER_KILL and len(no_json) <= PER_KILL,
          "%d flows have no row, %d no JSON record (at most %d may be lost)"
          % (len(no_row), len(no_json), PER_KILL))
    check(len(stored) == len(made) - len(no_row), "%d rows for %d flows"
          % (len(stored), len(made)))
    host = os.uname().nodename
    for f in made:
        got = stored.get((f.src, f.sport))
        if got is None:
            continue
        check(got[:4] == f.counts and got[4] == "destroy" and got[5] == host,
              "flow %s:%d: row %s, made %s" % (f.src, f.sport, got, f.counts))
        r = seen.get((f.src, f.sport))
        check(r is None or got[:4] == (r["orig"]["packets"], r["orig"]["bytes"],
                                       r["reply"]["packets"],
                                       r["reply"]["bytes"]),
              "flow %s:%d: row %s, JSON record %s" % (f.src, f.sport, got, r))
    return stored, len(no_row), len(no_json)


def main(args):
    t0 = time.time()
    srv = Server()
    print("server made and started in %.1f s" % (time.time() - t0))
    try:
        with ctdns.sandbox("pg") as (ns, tmp):
            run(args, srv, ns, tmp)
    finally:
        srv.close()


def run(args, srv, ns, tmp):
    ns.sysctl("nf_conntrack_acct", 1)
    ns.sysctl("nf_conntrack_udp_timeout", 600)
    ns.sysctl("nf_conntrack_udp_timeout_stream", 600)
    check_secret(args, srv, tmp)
    mgr = ctdns.Manager(os.path.join(tmp, "notify.sock"))
    env = mgr.env()
    # A short dying list: most held records go to the spool.
    pg = ["--postgresql", srv.conninfo(), "--dying-max", "1000"]
    ctd = Ctd(ns, args.ctd, tmp, pg, env=env)
    mgr.wait("FDSTORE=1", 5)
    ctd.wait_stats("a connection", lambda s: s.get(
        "out_postgresql_pg_connected") == 1, 30)
    made, caught = storm(ns, args, srv, ctd)
    t0 = time.time()
    ctd = Ctd(ns, args.ctd, tmp, pg, env=env, tag="ctd2",
              listen_fd=mgr.stored)
    ctd.wait_stats("every record stored after the restart",
                   lambda s: s.get("out_postgresql_held", 1) == 0 and
                   s.get("out_json_held", 1) == 0 and
                   srv.count() + PER_KILL >= len(made) and
                   ctd.count_records() >= len(made) - PER_KILL, 60)
    print("the next ctd had every record stored %.1f s after its start"
          % (time.time() - t0))
    time.sleep(1)    # DESTROYs the kernel still holds come in
    stored, no_row, no_json = check_all(srv, ctd, made)
    report_top(args, srv, stored)
    log = open(ctd.log).read() + open(os.path.join(tmp, "ctd.log")).read()
    check(SECRET not in log and "password=(hidden)" in log,
          "ctd's log shows the password, or never named the server")
    c = ctdns.identity(ctd.stop(), "postgresql")
    check(not caught or c["store_repeats"] > 0, "the batch committed before "
          "the SIGKILL was stored again, not ignored as repeats")
    print("after the restart: %d rows inserted, %d repeats ignored, %d "
          "records carried over, %d batches (%.1f ms each), %d connect "
          "failures; %d flows, lost with the batch in hand at the SIGKILL: "
          "%d rows, %d JSON records" % (
              c["store_rows"], c["store_repeats"], c["carried"],
              c["store_commits"], c["pg_commit_us"] / 1000.0 /
              max(1, c["store_commits"]), c["pg_connect_errors"], len(made),
              no_row, no_json))
    mgr.close()


def arguments(ap):
    ap.add_argument("--outage", type=float, default=5.0,
                    help="seconds the server is down mid-storm (default 5)")


if __name__ == "__main__":
    ctdns.main(main, arguments)

#!/usr/bin/env python3
"""`ctd -f` watches beside the service, and a second service is refused.

A service-like ctd runs with a JSON file, a spool directory and a control
socket in the test's directory. Beside it, `ctd -f -c watch.conf` runs,
where watch.conf names the service's very file, spool directory and
control socket and says `filter-proto udp`. Made: UDP flows (the filter
keeps them) and TCP connections (left out), then `conntrack -F`.

1. The service's JSON file has every flow exactly once: the watcher wrote
   nothing to it (no doubles), took no lock and no socket of the service.
2. The watcher printed a NEW and a DESTROY line for every UDP flow and no
   line at all for a TCP one (the filter applies to its lines).
3. A second ctd that is not a watcher is refused with one line naming the
   running ctd by pid: with the same spool directory ("another ctd (pid
   N) is running with spool directory"), the same JSON file ("another
   ctd (pid N) is writing FILE"), the same control socket ("another ctd
   (pid N) is listening on PATH"); the service keeps running meanwhile,
   and its file stays locked across a reopen (SIGUSR1).
4. A watcher whose standard input is a terminal stops on SIGHUP (the
   terminal went away) instead of reloading: exit 0 within 5 s.
5. The watcher's lines give local time (TZ set 5:30 east of UTC: every
   line within a minute of that clock, no Z), UDP flows nobody answered
   say [UNREPLIED] as conntrack -E does, and its exit line counts the
   events it watched, not "0 records delivered".
6. A spool left by an output that is no longer configured (kafka.spool
   in the service's spool directory) is named at start as holding
   undelivered records, and left in place.

Usage: test_watch.py --ctd PATH
"""
import os
import pty
import re
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows

N = 100
LINE = re.compile(r"^\S+ (NEW|UPDATE|DESTROY)\s+(\w+)\s+127\.0\.0\.1:(\d+) ->")


# POSIX TZ: "IST-5:30" is 5 h 30 min east of UTC.
TZ_EAST = ("IST-5:30", 5 * 3600 + 1800)


def start_watcher(ns, binary, tmp, conf):
    out = open(os.path.join(tmp, "watch.out"), "w")
    log_path = os.path.join(tmp, "watch.log")
    p = ns.start([binary, "-f", "-c", conf], out, open(log_path, "w"),
                 env=dict(os.environ, TZ=TZ_EAST[0]))
    end = time.time() + 10
    while "listening" not in open(log_path).read():
        check(p.poll() is None and time.time() < end,
              "the watcher did not start:\n" + open(log_path).read())
        time.sleep(0.05)
    return p, log_path


def hangup(ns, binary, tmp, conf):
    """A watcher started from a terminal (a pty on stdin) ends on SIGHUP."""
    master, slave = pty.openpty()
    try:
        out = open(os.path.join(tmp, "tty.out"), "w")
        log_path = os.path.join(tmp, "tty.log")
        p = ns.start([binary, "-f", "--utc", "-c", conf], out,
                     open(log_path, "w"), stdin=slave)
        end = time.time() + 10
        while "listening" not in open(log_path).read():
            check(p.poll() is None and time.time() < end,
                  "the tty watcher did not start:\n" + open(log_path).read())
            time.sleep(0.05)
        p.send_signal(signal.SIGHUP)
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise ctdns.Fail("a watcher in a terminal survived SIGHUP:\n"
                             + open(log_path).read())
        check(rc == 0, "the tty watcher exited %d" % rc)
    finally:
        os.close(master)
        os.close(slave)


def watched(tmp):
    """{(event, proto, sport): count} of the watcher's lines."""
    seen = {}
    with open(os.path.join(tmp, "watch.out")) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                key = (m.group(1), m.group(2), int(m.group(3)))
                seen[key] = seen.get(key, 0) + 1
    return seen


def check_lines(tmp, log):
    """Local time, [UNREPLIED] on the unanswered UDP flows' DESTROYs, and
    a watcher's exit line."""
    now = time.time() + TZ_EAST[1]
    lines = open(os.path.join(tmp, "watch.out")).read().splitlines()
    for line in lines:
        stamp = line.split()[0]
        check(re.match(r"^\d\d:\d\d:\d\d\.\d{3}$", stamp) is not None,
              "not a local time stamp: %r" % line)
        h, m, sec = stamp.split(":")
        of_day = int(h) * 3600 + int(m) * 60 + float(sec)
        off = (now - of_day) % 86400
        check(min(off, 86400 - off) < 120, "line time %s is not TZ=%s's "
              "clock (%s UTC now): %r" % (stamp, TZ_EAST[0],
                                           time.strftime("%H:%M:%S", time.gmtime()), line))
    gone = [l for l in lines if " DESTROY " in l and " udp " in l]
    bare = [l for l in gone if "[UNREPLIED]" not in l]
    check(gone and not bare, "%d of %d UDP DESTROY lines lack [UNREPLIED]: %s"
          % (len(bare), len(gone), bare[:2]))
    check("exiting: watched" in log and "records delivered" not in log,
          "the watcher's exit line:\n" + log)
    return len(lines)


def refused(ns, binary, args, want, pid):
    """A second ctd with args: exit 1, its only line has want and pid."""
    r = subprocess.run(ns.argv([binary, "--store", "none"] + args),
                       capture_output=True,
                       text=True, timeout=30)
    lines = r.stderr.splitlines()
    check(r.returncode == 1 and len(lines) == 1 and want in lines[0] and
          "(pid %d)" % pid in lines[0],
          "second ctd %s: exit %d, wanted one line with %r and pid %d:\n%s"
          % (" ".join(args), r.returncode, want, pid, r.stderr))
    return lines[0]


def check_service(ctd, udp, tcp):
    counts = {}
    for r in ctd.records():
        port = r["orig"].get("sport")
        counts[port] = counts.get(port, 0) + 1
    made = udp | tcp
    missing = sorted(made - set(counts))
    doubled = sorted(p for p in made if counts[p] > 1 if p in counts)
    check(not missing and not doubled,
          "service file: %d flows made, %d missing %s, %d doubled %s"
          % (len(made), len(missing), missing[:5], len(doubled), doubled[:5]))


def check_watcher(tmp, udp, tcp):
    seen = watched(tmp)
    for ev in ("NEW", "DESTROY"):
        got = {s for (e, p, s) in seen if e == ev and p == "udp"} & udp
        check(got == udp, "watcher printed %s for %d of %d UDP flows"
              % (ev, len(got), len(udp)))
    leaked = sorted({s for (e, p, s) in seen if s in tcp})
    check(not leaked, "watcher printed lines for %d filtered TCP flows: %s"
          % (len(leaked), leaked[:5]))
    return seen


def second_services(ns, binary, ctd, tmp):
    pid = ctd.proc.pid
    other = lambda name: os.path.join(tmp, name)
    lines = [
        refused(ns, binary, ["-o", other("b.json"), "--spool-dir", ctd.spool,
                             "--control", other("b.ctl")],
                "is running with spool directory %s" % ctd.spool, pid),
        refused(ns, binary, ["-o", ctd.json, "--spool-dir", other("spool-c"),
                             "--control", other("c.ctl")],
                "is writing %s" % ctd.json, pid),
        refused(ns, binary, ["-o", other("d.json"), "--spool-dir",
                             other("spool-d"), "--control", ctd.control],
                "is listening on %s" % ctd.control, pid),
    ]
    check(ctd.proc.poll() is None, "the service died:\n" + ctd.log_text())
    ctd.query("-s")    # its control socket still answers
    return lines


def main(args):
    with ctdns.sandbox("wa") as (ns, tmp):
        svc = os.path.join(tmp, "svc.conf")
        with open(svc, "w") as f:
            f.write("grace 5\n")
        leftover = os.path.join(tmp, "spool", "kafka.spool")
        os.makedirs(os.path.dirname(leftover), mode=0o700)
        with open(leftover, "wb") as f:
            f.write(b"x" * 100)
        ctd = Ctd(ns, args.ctd, tmp, ["-c", svc])
        check("/kafka.spool (100 bytes) holds undelivered records" in
              ctd.log_text(), "the leftover spool was not reported:\n"
              + ctd.log_text())
        conf = os.path.join(tmp, "watch.conf")
        with open(conf, "w") as f:
            f.write('output "%s"\nspool-dir %s\ncontrol %s\n'
                    "filter-proto udp\n" % (ctd.json, ctd.spool, ctd.control))
        watcher, watch_log = start_watcher(ns, args.ctd, tmp, conf)
        udp = {f.sport for f in ns.traffic(
            flows("udp", N, sport=20000, size=1, listen=False))}
        tcp = {f.sport for f in ns.traffic(
            flows("tcp", N, sport=23000, dport=6666))}
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(2 * N, 30) is not None,
              "the service wrote %d of %d records" % (ctd.count_records(), 2 * N))
        # A reopen of the same file (SIGUSR1) keeps it locked: flock
        # locks each open, so the new descriptor must take it over.
        os.kill(ctd.proc.pid, signal.SIGUSR1)
        ctd.wait_log("reopened", 10)
        lines = second_services(ns, args.ctd, ctd, tmp)
        time.sleep(1)
        watcher.send_signal(signal.SIGTERM)
        check(watcher.wait(timeout=15) == 0, "the watcher failed:\n"
              + open(watch_log).read())
        hangup(ns, args.ctd, tmp, conf)
        ctd.stop()
        check_service(ctd, udp, tcp)
        check(os.path.getsize(leftover) == 100, "the leftover spool changed")
        seen = check_watcher(tmp, udp, tcp)
        log = open(watch_log).read()
        check("lossy" in log and "another ctd" not in log,
              "watcher log:\n" + log)
        check_lines(tmp, log)
        print("watch: service file has %d flows once each; the watcher "
              "printed %d lines, NEW and DESTROY for all %d UDP flows, none "
              "for %d filtered TCP flows (local time, [UNREPLIED]); "
              "refused:\n  %s"
              % (2 * N, sum(seen.values()), N, N, "\n  ".join(lines)))


if __name__ == "__main__":
    ctdns.main(main)

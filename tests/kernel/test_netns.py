#!/usr/bin/env python3
"""One ctd with --netns all watches every namespace; records name theirs.

The test re-runs itself in a private mount namespace with a tmpfs on
/run/netns, so `all` means the test's namespaces only (never another
test's, whose sysctls ctd would otherwise set). A parent namespace runs
ctd with --netns all and a 2 KiB receive buffer that cannot grow; it
watches 10 children, 8 made before ctd starts and 2 after. Ground truth
per namespace: FLOWS UDP flows 127.0.0.1:(BASE+i) -> 127.0.0.1:5555 with
i+1 packets each, ended by `conntrack -F` in 4 namespaces at once (a
flush storm into the small buffer), then one by one in the rest. Every
flow of every child has exactly one record with its namespace's name
and its packet count; the parent's own flows have records without
"netns". Then one child with live flows is deleted: each of its flows
ends as netns_gone with the kernel's counters.

Usage: test_netns.py --ctd PATH
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from ctdns import Ctd, Fail, Netns, check

FLOWS, BASE, CHILDREN, LATE = 300, 20000, 10, 2

GEN = r"""
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", base + i))
    for _ in range(i % 3 + 1):
        c.sendto(b"x" * 20, ("127.0.0.1", 5555))
    c.close()
"""


def private_run_netns():
    """Re-exec in a mount namespace of our own with an empty /run/netns."""
    if os.environ.get("CTD_NETNS_PRIVATE"):
        return None
    env = dict(os.environ, CTD_NETNS_PRIVATE="1")
    script = ('mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && '
              'exec "$0" "$@"')
    return subprocess.call(["unshare", "-m", "--propagation", "private",
                            "sh", "-c", script, sys.executable] + sys.argv,
                           env=env)


def child(i):
    ns = Netns("nc%d" % i).__enter__()
    return ns


def flows(ns):
    ns.run(["python3", "-c", GEN, str(BASE), str(FLOWS)])


def check_records(recs, name, reason):
    got = {}
    for r in recs:
        o = r["orig"]
        if r.get("netns") == name and o["dport"] == 5555 and \
                BASE <= o["sport"] < BASE + FLOWS:
            got.setdefault(o["sport"], []).append(r)
    missing = [p for p in range(BASE, BASE + FLOWS) if p not in got]
    doubled = [p for p, v in got.items() if len(v) > 1]
    check(not missing and not doubled, "%s: %d missing %s, %d doubled %s"
          % (name, len(missing), missing[:5], len(doubled), doubled[:5]))
    for p, (r,) in got.items():
        check(r["end_reason"] == reason, "%s: %s ended %s, not %s"
              % (name, p, r["end_reason"], reason))
        check(r["orig"].get("packets") == (p - BASE) % 3 + 1 and
              "counters_from" not in r,
              "%s: flow %d has %s packets (want %d)" % (
                  name, p, r["orig"].get("packets"), (p - BASE) % 3 + 1))


def run(ctd_bin):
    kids = []
    try:
        with Netns("np") as parent, tempfile.TemporaryDirectory() as tmp:
            kids = [child(i) for i in range(CHILDREN - LATE)]
            ctd = Ctd(parent, ctd_bin, tmp, ["--netns", "all", "--rcvbuf",
                                             "2048", "--rcvbuf-max", "2048"])
            kids += [child(i) for i in range(CHILDREN - LATE, CHILDREN)]
            end = time.time() + 10
            while time.time() < end and any(
                    "watching network namespace %s " % k.name
                    not in ctd.log_text() for k in kids):
                time.sleep(0.1)
            for k in kids:
                ctd.wait_log("watching network namespace %s " % k.name, 1)
                check(k.sysctl("nf_conntrack_events") == "1",
                      "%s: ctd left nf_conntrack_events alone" % k.name)
            for ns in kids + [parent]:
                flows(ns)
            storm = [subprocess.Popen(k.argv(["conntrack", "-F"]),
                                      stderr=subprocess.DEVNULL)
                     for k in kids[:4]]
            for p in storm:
                p.wait(timeout=60)
            for ns in kids[4:-1] + [parent]:
                ns.run("conntrack -F 2>/dev/null")
            gone = kids.pop()
            for p in gone.procs:
                p.wait()
            subprocess.run(["ip", "netns", "del", gone.name], check=True)
            want = FLOWS * (CHILDREN + 1)
            waited = ctd.wait_records(want, 120)
            time.sleep(1)
            counters = ctd.stop()
            print("".join(l + "\n" for l in ctd.log_text().splitlines()
                          if "gone" in l or "netns" in l))
            recs = ctd.records()
            for k in kids:
                check_records(recs, k.name, "destroy")
            check_records(recs, gone.name, "netns_gone")
            check_records(recs, None, "destroy")
            check(counters.get("ends_netns_gone") == FLOWS and
                  counters.get("netns_gone") == 1 and
                  counters.get("netns_flushed") == 1,
                  "netns counters: %s" % {k: v for k, v in counters.items()
                                          if "netns" in k})
            check(counters.get("nl_drops", 0) > 0 or
                  counters.get("nl_grows", 0) == 0,
                  "the 2 KiB buffer grew")
            print("netns: %d namespaces (%d made after start), %d records, "
                  "every flow once with its namespace; %d netns_gone; "
                  "%d socket drops re-sent by the kernel (%.1f s)"
                  % (CHILDREN, LATE, len(recs), FLOWS,
                     counters.get("nl_drops", 0), waited or -1))
    finally:
        for k in kids:
            k.__exit__(None, None, None)


def main():
    rc = private_run_netns()
    if rc is not None:
        return rc
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctd", required=True)
    args = ap.parse_args()
    try:
        run(args.ctd)
    except Fail as e:
        print("FAIL:", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

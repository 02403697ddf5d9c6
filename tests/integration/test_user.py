#!/usr/bin/env python3
"""Outside systemd, `user nobody` makes ctd give up root once its sockets
and files are open, keeping CAP_NET_ADMIN alone, and it still records
every flow, also after a SIGUSR2 re-exec (the capability is ambient, so
the new process keeps it).

Checked in /proc: uid and gid 65534, effective, permitted and ambient
capabilities exactly CAP_NET_ADMIN (bit 12), bounding set no wider.

Usage: test_user.py --ctd PATH
"""
import os
import signal
import time

import ctdns
from ctdns import Ctd, check, flows

NET_ADMIN = "0000000000001000"


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def check_identity(pid, when):
    st = status(pid)
    check(st["Uid"][:3] == ["65534"] * 3 and st["Gid"][0] == "65534",
          "%s: uid %s gid %s" % (when, st["Uid"], st["Gid"]))
    for key in ("CapEff", "CapPrm", "CapAmb"):
        check(st[key][0] == NET_ADMIN, "%s: %s is %s, want only CAP_NET_ADMIN"
              % (when, key, st[key][0]))
    # libcap-ng empties the bounding set: nothing can be regained.
    check(st["CapBnd"][0] in ("0000000000000000", NET_ADMIN),
          "%s: CapBnd is %s" % (when, st["CapBnd"][0]))


def make(ns, base):
    """100 one-byte UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555, no
    server; the source ports made."""
    return {f.sport for f in ns.traffic(flows("udp", 100, sport=base, size=1,
                                              listen=False))}


def main(args):
    with ctdns.sandbox("us") as (ns, tmp):
        # The user must be able to reopen its files after a re-exec.
        os.chmod(tmp, 0o777)
        ctd = Ctd(ns, args.ctd, tmp, ["--user", "nobody"])
        ctd.wait_log("running as nobody", 10)
        check_identity(ctd.proc.pid, "after start")
        want = make(ns, 30000)
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(100, 30) is not None, "no records as nobody")
        os.kill(ctd.proc.pid, signal.SIGUSR2)
        end = time.time() + 10
        while time.time() < end and ctd.log_text().count("listening for") < 2:
            time.sleep(0.1)
        check(ctd.proc.poll() is None and
              ctd.log_text().count("listening for") == 2,
              "the re-exec as nobody failed:\n" + ctd.log_text())
        check_identity(ctd.proc.pid, "after re-exec")
        want |= make(ns, 31000)
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(200, 30) is not None,
              "no records after the re-exec")
        ctd.stop()
        got = [r["orig"]["sport"] for r in ctd.records()]
        check(sorted(got) == sorted(want), "%d records for %d flows"
              % (len(got), len(want)))
        print("user: ran as nobody with only CAP_NET_ADMIN (effective, "
              "permitted, ambient), before and after a re-exec; "
              "%d flows, %d records" % (len(want), len(got)))


if __name__ == "__main__":
    ctdns.main(main)

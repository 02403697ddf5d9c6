#!/usr/bin/env python3
"""ipfix_tls_cost: ctd's CPU per record exporting IPFIX over TLS vs TCP.

In a network namespace it creates (and removes), the same UDP flows
(N, answered, deleted every 250 so the table stays small) are made
three times, each time for a fresh ctd writing its JSON file: without
IPFIX, exporting over TCP to a plain sink, and over TLS 1.3 (mutual,
certificates made with openssl) to socat OPENSSL-LISTEN. ctd's CPU time
(every thread's time on CPU from /proc/PID/task/*/schedstat, read once
all records are acknowledged)
divided by the records gives the cost per record; the differences are
what IPFIX and TLS add. K rounds, the rounds interleaved so that each
compares runs made side by side; the median is printed.

Usage: ipfix_tls_cost.py --ctd PATH [--flows N] [--rounds K]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import ctdns  # noqa: E402
from ctdns import Ctd, check, flows  # noqa: E402
import test_ipfix_tls as tls  # noqa: E402


def cpu_seconds(pid):
    """Time on CPU of every thread, in ns (schedstat; /proc/PID/stat's
    10 ms ticks are too coarse for a 0.2 s run)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def tcp_sink(ns, port):
    return ns.start(["socat", "-u", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork"
                     % port, "OPEN:/dev/null,wronly"],
                    subprocess.DEVNULL, subprocess.DEVNULL)


def run(ns, tmp, binary, mode, n, i):
    work = os.path.join(tmp, "%s-%d" % (mode, i))
    os.mkdir(work)
    args = []
    if mode == "tcp":
        args = ["--ipfix", "tcp:127.0.0.1:4739"]
    elif mode == "tls":
        args = tls.tls_args(tmp)
    ctd = Ctd(ns, binary, work, args, tag=mode)
    if mode != "none":
        ctd.wait_log("connected", 10)
    ns.traffic(flows("udp", n, sport=20000, size=40, replies=1, reply_size=20,
                     every=250, run=["conntrack", "-D", "-p", "udp"]),
               timeout=600)
    check(ctd.wait_records(n, 120) is not None, "%s: records missing" % mode)
    if mode != "none":
        ctd.wait_stats("everything acknowledged", lambda s:
                       s["out_ipfix_held"] == 0 and s["out_ipfix_unacked"] == 0, 60)
    cpu = cpu_seconds(ctd.proc.pid)
    records = ctd.count_records()
    ctd.stop()
    return cpu, records


def main(args):
    with ctdns.sandbox("tlsbench") as (ns, tmp):
        os.chmod(tmp, 0o755)
        ns.sysctl("nf_conntrack_acct", 1)
        tls.make_certs(tmp)
        sink = tcp_sink(ns, 4739)
        col = tls.Collector(ns, tmp, tls.PORT, "bench")
        per = {"none": [], "tcp": [], "tls": []}
        for i in range(args.rounds):
            for mode in per:
                cpu, records = run(ns, tmp, args.ctd, mode, args.flows, i)
                per[mode].append(cpu / records * 1e6)
                print("round %d %-4s: %d records, %.2f s CPU, %.2f us/record"
                      % (i + 1, mode, records, cpu, per[mode][-1]), flush=True)
            for name in os.listdir(tmp):
                if name.startswith("bench-") and name.endswith(".bin"):
                    os.unlink(os.path.join(tmp, name))
        col.stop()
        sink.kill()
        med = {m: statistics.median(v) for m, v in per.items()}
        print("median CPU per record (%d flows, %d rounds): no IPFIX %.2f us, "
              "IPFIX/TCP %.2f us (+%.2f), IPFIX/TLS %.2f us (+%.2f over TCP)"
              % (args.flows, args.rounds, med["none"], med["tcp"],
                 med["tcp"] - med["none"], med["tls"], med["tls"] - med["tcp"]))


def arguments(ap):
    ap.add_argument("--flows", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)


if __name__ == "__main__":
    ctdns.main(main, arguments)

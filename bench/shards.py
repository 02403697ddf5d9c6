#!/usr/bin/env python3
"""shards: the finished flows per second ctd keeps up with, losing none,
with 1, 2 and 4 shards, each shard process held to the same small share
of a CPU by a cgroup (v1: cpu.cfs_quota_us / cpu.cfs_period_us; v2:
cpu.max), so a 2-core machine stands in for a box with a core per shard.

Per run, in a fresh network namespace: ctd (reliable mode, --kernel-
pressure hold, a receive buffer the whole burst fits in, so the kernel's
re-send pace never enters) starts with --shards S; once every shard is
ready each shard process is put in its own cgroup with the quota; N
one-packet UDP flows are made (bench/flowgen.c; ctd subscribes to DESTROY
only, so this costs it nothing); `conntrack -F` ends them all at once.
The rate is N over the seconds from the flush to the last record in the
JSON file; it is what ctd keeps up with only if every flow has exactly
one record (checked: lost and doubled must be 0, else the run fails).
The CPU per flow is the shard processes' CPU time (utime+stime) from the
flush to the end, over N. With --base, the same run of another ctd binary
(today's main, which has no --shards) as one capped process, in the same
rounds: its CPU per flow against shards 1's is the single-process
overhead of sharding, which must be none.

Usage: shards.py [--ctd PATH] [--base PATH] [--flows N] [--rounds K]
                 [--quota PCT] [--shards 1,2,4]
Prints one line per run and a table of medians; exit 1 when a run loses
or doubles a flow, or a tool is missing.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
from ctdns import Ctd, Fail, Netns, check  # noqa: E402
from storm import HostSysctls, build_flowgen, proc_cpu_ticks, CLK_TCK  # noqa: E402

CG1 = "/sys/fs/cgroup/cpu"
CG2 = "/sys/fs/cgroup"
PERIOD_US = 100000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Cap:
    """One cgroup per process, all with the same CPU quota."""

    def __init__(self, pct):
        self.pct = pct
        self.v1 = os.path.exists(os.path.join(CG1, "cpu.cfs_quota_us"))
        self.dirs = []

    def put(self, pid):
        base = CG1 if self.v1 else CG2
        d = os.path.join(base, "ctd-bench-%d" % pid)
        os.mkdir(d)
        self.dirs.append(d)
        quota = PERIOD_US * self.pct // 100
        if self.v1:
            self.write(d, "cpu.cfs_period_us", PERIOD_US)
            self.write(d, "cpu.cfs_quota_us", quota)
        else:
            self.write(d, "cpu.max", "%d %d" % (quota, PERIOD_US))
        self.write(d, "cgroup.procs", pid)

    @staticmethod
    def write(d, name, value):
        with open(os.path.join(d, name), "w") as f:
            f.write(str(value))

    def close(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)
        self.dirs = []


def shard_pids(ctd, shards):
    if shards == 1:
        return [ctd.proc.pid]
    pids = {}
    for k, pid in re.findall(r"shard (\d+) of \d+ \(pid (\d+)\)", ctd.log_text()):
        pids[int(k)] = int(pid)
    check(len(pids) == shards, "found %d shard pids of %d" % (len(pids), shards))
    return list(pids.values())


def wait_ready(ctd, shards, secs=30):
    word = "all %d shards are ready" % shards if shards > 1 else \
        "loaded 0 conntracks"
    end = time.time() + secs
    while time.time() < end:
        if word in ctd.log_text():
            return
        time.sleep(0.05)
    raise Fail("ctd never logged %r:\n%s" % (word, ctd.log_text()))


class Counter:
    """Lines of a growing file, reading only what is new."""

    def __init__(self, path):
        self.path, self.off, self.lines = path, 0, 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return 0
        self.off += len(data)
        self.lines += data.count(b"\n")
        return self.lines


def tally(path, n):
    seen = {}
    with open(path, "rb") as f:
        for line in f:
            r = json.loads(line)
            o = r.get("orig", {})
            if r.get("proto") == "udp" and o.get("sport") == 7000 and \
                    o.get("dport") == 7777:
                seen[o["dst"]] = seen.get(o["dst"], 0) + 1
    return n - len(seen), sum(1 for v in seen.values() if v > 1)


def run(binary, shards, n, pct, flowgen, tag, sharded=True, stopped=True,
        cpu=0):
    cap = Cap(pct)
    with Netns(tag) as ns, tempfile.TemporaryDirectory(prefix="shb-") as tmp:
        for k, v in (("nf_conntrack_acct", 1), ("nf_conntrack_timestamp", 1),
                     ("nf_conntrack_events", 1), ("nf_conntrack_udp_timeout", 600)):
            ns.sysctl(k, v)
        args = ["--kernel-pressure", "hold", "--rcvbuf", "1G",
                "--rcvbuf-max", "1G"]
        if sharded:
            args += ["--shards", str(shards)]
        ctd = Ctd(ns, binary, tmp, args, json=os.path.join(tmp, "flows.json"))
        try:
            wait_ready(ctd, shards)
            pids = shard_pids(ctd, shards)
            for pid in pids:
                cap.put(pid)
                if cpu >= 0:
                    os.sched_setaffinity(pid, {cpu})
            out = ns.run([flowgen, str(n)], timeout=600).split()
            check(int(out[0]) == n, "flowgen made %s flows" % out[0])
            time.sleep(1)
            cpu0 = sum(proc_cpu_ticks(p) for p in pids)
            counter = Counter(ctd.json)
            if stopped:
                for p in pids:
                    os.kill(p, signal.SIGSTOP)
            t0 = time.time()
            ns.run(["conntrack", "-F"], timeout=300)
            flush = time.time() - t0
            if stopped:
                check(counter.poll() == 0, "records while the shards were "
                      "stopped")
                t0 = time.time()
                for p in pids:
                    os.kill(p, signal.SIGCONT)
            while counter.poll() < n:
                check(time.time() - t0 < 600, "only %d records in 600 s"
                      % counter.lines)
                check(ctd.proc.poll() is None, "ctd died:\n" + ctd.log_text())
                time.sleep(0.01)
            secs = time.time() - t0
            cpu = (sum(proc_cpu_ticks(p) for p in pids) - cpu0) / CLK_TCK
        finally:
            ctd.proc.send_signal(signal.SIGTERM)
            ctd.proc.wait(timeout=60)
            cap.close()
        lost, doubled = tally(ctd.json, n)
        check(lost == 0 and doubled == 0, "%s shards %d: %d flows lost, %d "
              "doubled" % (binary, shards, lost, doubled))
        return {"rate": n / secs, "secs": secs, "flush": flush,
                "cpu_us": cpu * 1e6 / n}


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctd", default=os.path.join(ROOT, "build", "ctd"))
    ap.add_argument("--base", help="another ctd (no --shards) as the base row")
    ap.add_argument("--flows", type=int, default=400000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quota", type=int, default=10, help="percent of a CPU")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--cpu", type=int, default=0,
                    help="pin every shard process to this CPU (-1: no)")
    opts = ap.parse_args()
    counts = [int(s) for s in opts.shards.split(",")]
    rows = [("base", 1)] if opts.base else []
    rows += [("shards %d" % s, s) for s in counts]
    res = {r[0]: [] for r in rows}
    try:
        with HostSysctls(opts.flows), tempfile.TemporaryDirectory() as gtmp:
            flowgen = build_flowgen(gtmp)
            for rnd in range(opts.rounds):
                for i, (name, s) in enumerate(rows):
                    binary = opts.base if name == "base" else opts.ctd
                    r = run(binary, s, opts.flows, opts.quota, flowgen,
                            "shb%d%d" % (rnd, i), sharded=name != "base",
                            cpu=opts.cpu)
                    res[name].append(r)
                    log("round %d %-9s: %6.0f flows/s (%.2f s, flush %.2f s), "
                        "%.2f us CPU per flow, 0 lost, 0 doubled"
                        % (rnd + 1, name, r["rate"], r["secs"], r["flush"],
                           r["cpu_us"]))
    except Fail as e:
        print("FAIL:", e)
        sys.exit(1)
    one = "shards %d" % counts[0]
    print("%d flows, each shard process capped at %d%% of a CPU, %d rounds "
          "(medians; ratio per round against %s)" % (opts.flows, opts.quota,
                                                     opts.rounds, one))
    print("%-9s %12s %8s %14s" % ("", "flows/s", "ratio", "CPU us/flow"))
    for name, _ in rows:
        rs = res[name]
        ratio = median([r["rate"] / b["rate"] for r, b in zip(rs, res[one])])
        print("%-9s %12.0f %7.2fx %14.2f" % (name, median([r["rate"] for r in rs]),
                                             ratio, median([r["cpu_us"] for r in rs])))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Kernel pressure (issue 25): a ctd that cannot keep up must not make the
firewall refuse new connections, and whatever that costs is counted.

In reliable mode (NETLINK_BROADCAST_ERROR) a DESTROY the kernel cannot
deliver keeps its conntrack on the namespace's dying list, still counted
in nf_conntrack_count (its max, 262,144 by default, is the host's, read
only in a namespace; the count is the namespace's). Past the max the
kernel drops every packet that would make a new conntrack: a UDP send
fails with EPERM, a TCP SYN is dropped (conntrack -S: drop). ctd's
kernel-pressure governor clears NETLINK_BROADCAST_ERROR when the table
passes --kernel-pressure-high percent while ctd is behind, counts the
DESTROYs the kernel then drops for ctd (kernel_lost) and re-arms reliable
mode once the fill is under --kernel-pressure-low and ctd caught up.

Scenarios (one per run, the first argument), each in a fresh namespace
with loopback tracked (ctdns.NFT_TRACK_LO) and ctd with its defaults (JSON
file output):

  stop    ctd is SIGSTOPped; rounds of ROUND one-packet UDP flows (a C
          generator compiled here, --rate flows/s, 0 = flat out), each
          round ended by `conntrack -F`, until FLOWS flows were made
          (--flows, 320,000: more than the table holds). A round lasts
          at most 2 s more than its pace (a send the full table refuses
          costs the kernel ~1 ms). In hold mode, where the table fills up
          for good, it stops after STUCK rounds in which every send
          failed. ctd stays stopped HOLD_S more seconds, then SIGCONT.
  starve  ctd (and every process it forked) in a CPU cgroup limited to
          --quota (5000 100000: 5 % of a CPU; cgroup v2 cpu.max, or
          cpu.cfs_quota_us/cpu.cfs_period_us where the cpu controller is
          on a v1 hierarchy), a UDP storm at --rate (40,000) flows/s for
          --seconds (30), each flow ended by nf_conntrack_udp_timeout=1.
          Once the storm is over the limit is lifted so ctd drains in
          reasonable time (its CPU time under the limit is printed too).
          A starved ctd that still keeps the table under --high needs no
          governor: fail-open then fails as proving nothing (on a 2-vCPU
          VM ctd at ~1.3 us per flow peaked at 61-83 %; ctest runs it
          with --high 40 --low 20).

Throughout, a monitor inside the namespace connects to a TCP listener on
127.0.0.1:PROBE_PORT once a second, probe n from 127.0.0.1:PROBE_SPORT+n
(a probe fails if it is not connected within PROBE_TIMEOUT s: its first
SYN was dropped; the SYN retransmit comes at 1 s) and samples
nf_conntrack_count every 50 ms (peak).
conntrack -S drop / insert_failed / early_drop are read before and after.
At the end every conntrack left is flushed and the test waits for ctd to
settle (table empty, records stable), then stops ctd.

Ground truth: generator flow i is 127.0.0.1:7000 -> 127.(1 + i/65536).
(i/256 % 256).(i % 256):7777, UDP; a send that failed (EPERM) made no
flow and is excluded. A probe is a flow when it connected (or, failed,
when it has a record: a late SYN could have made its conntrack).

Asserted, --mode fail-open (the default):
  - no probe failed, no generator send failed, conntrack -S drop unchanged;
  - no flow has two records, no record is of a flow never made;
  - records (unique flows) + kernel_lost == flows made, kernel_lost over-
    counting by at most 0.1 % of the flows made, never under;
  - kernel_fail_opens >= 1, kernel_rearms >= 1 and kernel_failed_open 0
    at the end (reliable mode came back by itself), and the log said
    "failing open" while it happened (before SIGCONT / before the storm's
    end) and "reliable mode restored" after;
  - records = delivered + failed + held for the JSON output (identity).
--mode hold (--kernel-pressure hold, the old behaviour): every flow made
has exactly one record and kernel_lost is 0; the probes and sends that
failed are printed, not asserted.
--pre-governor: for a ctd without the governor (no kernel-pressure option
exists, no kernel_* counters): passes no such option and checks as hold;
in the stop scenario it also requires the problem to show (sends or probes
failed and conntrack -S drop grew), proving the test can see it.

Every run prints flows made, records, kernel_lost, probes failed, sends
failed, the conntrack -S deltas, the peak nf_conntrack_count and seconds;
starve also ctd's CPU time per flow.

Usage: test_pressure.py --ctd PATH stop|starve [--mode fail-open|hold]
           [--pre-governor] [--high PCT] [--low PCT] [--flows N]
           [--rate N] [--seconds S] [--quota "Q P"]
"""
import json
import os
import re
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, Fail, check

PROBE_PORT, PROBE_TIMEOUT = 9999, 0.9
PROBE_SPORT, PROBE_MOST = 20000, 3600   # probe n from 127.0.0.1:20000+n
ROUND, STUCK, HOLD_S = 20000, 3, 5
FLOWS, STOP_RATE = 320000, 40000
STARVE_RATE, STARVE_S, QUOTA = 40000, 30, "5000 100000"
SETTLE_S, REARM_S = 240, 90
SLACK = 0.001
CGROOT = "/sys/fs/cgroup"


# The monitor, inside the namespace: a TCP listener on 127.0.0.1:PORT, a
# probe connect to it every INTERVAL s from 127.0.0.1:BASE+n (failed if
# not connected within TIMEOUT s), at most MOST probes; nf_conntrack_count
# sampled every 50 ms. Prints "ready", runs until a line (or EOF) on
# stdin, then prints one JSON summary.
MONITOR = r"""
import errno, json, os, select, socket, sys, threading, time
port, interval, timeout = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
base, most = int(sys.argv[4]), int(sys.argv[5])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1024)
stop = threading.Event()
peak = [0, 0.0]
series = []
t0 = time.time()

def acceptor():
    while not stop.is_set():
        try:
            c, _ = srv.accept()
            c.close()
        except OSError:
            return

def sampler():
    with open("/proc/sys/net/netfilter/nf_conntrack_count") as f:
        while not stop.is_set():
            f.seek(0)
            n = int(f.read())
            t = time.time() - t0
            if n > peak[0]:
                peak[0], peak[1] = n, t
            if not series or t - series[-1][0] >= 1:
                series.append([round(t, 2), n])
            time.sleep(0.05)

threading.Thread(target=acceptor, daemon=True).start()
threading.Thread(target=sampler, daemon=True).start()
probes = []
print("ready", flush=True)
nxt = time.time()
while True:
    r, _, _ = select.select([sys.stdin], [], [], max(0, nxt - time.time()))
    if r or len(probes) >= most:
        break
    nxt += interval
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    # a port of its own: a failed probe's port is never reused by another
    sport = base + len(probes)
    s.bind(("127.0.0.1", sport))
    t = time.time()
    err = s.connect_ex(("127.0.0.1", port))
    if err in (0, errno.EINPROGRESS):
        _, w, _ = select.select([], [s], [], timeout)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if w else errno.ETIMEDOUT
    probes.append([round(t - t0, 2), sport, err, round(time.time() - t, 4)])
    s.close()
stop.set()
print(json.dumps({"probes": probes, "peak": peak, "series": series,
                  "max": int(open("/proc/sys/net/netfilter/nf_conntrack_max").read())}),
      flush=True)
"""


def log(msg):
    print(msg, flush=True)


class Monitor:
    def __init__(self, ns):
        self.proc = subprocess.Popen(
            ns.argv(["python3", "-c", MONITOR, str(PROBE_PORT), "1",
                     str(PROBE_TIMEOUT), str(PROBE_SPORT), str(PROBE_MOST)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ns.procs.append(self.proc)
        check(self.proc.stdout.readline().strip() == "ready",
              "the probe monitor did not start")
        self.result = None

    def stop(self):
        out, _ = self.proc.communicate("stop\n", timeout=30)
        check(self.proc.returncode == 0 and out.strip(),
              "the probe monitor failed (%s)" % self.proc.returncode)
        self.result = json.loads(out.strip().splitlines()[-1])
        return self.result

    def failed(self):
        return [p for p in self.result["probes"] if p[2] != 0]


def ct_stats(ns):
    """conntrack -S summed over CPUs."""
    tot = {}
    for line in ns.run(["conntrack", "-S"]).splitlines():
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            if k != "cpu":
                tot[k] = tot.get(k, 0) + int(v)
    check("drop" in tot, "conntrack -S printed no drop counter")
    return tot


# The generator: bench/flowgen.c with START COUNT RATE SECS (see there):
# refused sends are reported as ranges, so they are not counted as flows.
FLOWGEN = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "bench", "flowgen.c")


def build_gen(tmp):
    exe = os.path.join(tmp, "flowgen")
    r = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                        FLOWGEN],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cannot compile the generator:\n" + r.stderr)
    return exe


class Truth:
    """Generator flows attempted so far and which sends failed."""

    def __init__(self):
        self.attempted = 0
        self.failed = bytearray()
        self.nfailed = 0
        self.secs = 0.0

    def run(self, ns, gen, count, rate, secs=0, timeout=None):
        """One generator run from the next index; returns (sent, failed)."""
        start = self.attempted
        cmd = [gen, str(start), str(count), str(rate), str(secs)]
        try:
            r = subprocess.run(ns.argv(cmd), capture_output=True, text=True,
                               timeout=timeout or (count / max(rate, 1) + 120))
        except subprocess.TimeoutExpired:
            raise Fail("the generator ran past its time")
        check(r.returncode == 0, "the generator failed (%d): %s %s"
              % (r.returncode, r.stderr.strip(), r.stdout[-300:]))
        end, sent, failed = None, 0, 0
        ranges = []
        for line in r.stdout.splitlines():
            p = line.split()
            if p[0] == "F":
                ranges.append((int(p[1]), int(p[2])))
            elif p[0] == "S":
                sent, failed, self.secs = int(p[1]), int(p[2]), \
                    self.secs + float(p[3])
            elif p[0] == "E":
                end = int(p[1])
        check(end is not None, "the generator printed no end: %r" % r.stdout[-300:])
        self.failed.extend(bytes(end - start))
        for a, b in ranges:
            self.failed[a:b] = b"\1" * (b - a)
        check(sum(b - a for a, b in ranges) == failed and
              sent + failed == end - start,
              "generator: %d sent + %d failed != %d attempted"
              % (sent, failed, end - start))
        self.attempted = end
        self.nfailed += failed
        return sent, failed

    @property
    def made(self):
        return self.attempted - self.nfailed


REC_RE = re.compile(rb'"proto":"(\w+)".*?"orig":\{"src":"([^"]*)","dst":"([^"]*)",'
                    rb'"sport":(\d+),"dport":(\d+)')


def tally(path, truth, probes):
    """Records per generator flow and per probe, from the JSON file.
    Returns a dict of counts; fails on records of flows never made."""
    hits = bytearray(truth.attempted)
    probe_ports = {p[1]: p for p in probes}
    probe_hits = {}
    total = active = 0
    reasons = {}
    foreign, of_failed = [], []
    with open(path, "rb") as f:
        for line in f:
            m = REC_RE.search(line)
            if m and b'"type":"flow"' in line:
                proto, src, dst, sport, dport = m.groups()
                sport, dport = int(sport), int(dport)
                rm = re.search(rb'"end_reason":"(\w+)"', line)
                reason = rm.group(1).decode() if rm else "?"
            else:
                try:
                    r = json.loads(line)
                except ValueError:
                    raise Fail("a line of %s is not JSON: %r" % (path, line[:200]))
                if r.get("type", "flow") != "flow":
                    continue
                o = r.get("orig", {})
                proto, src, dst = (r.get("proto", "").encode(),
                                   o.get("src", "").encode(),
                                   o.get("dst", "").encode())
                sport, dport = o.get("sport", 0), o.get("dport", 0)
                reason = r.get("end_reason", "?")
            if reason == "active":
                active += 1
                continue
            total += 1
            reasons[reason] = reasons.get(reason, 0) + 1
            if proto == b"udp" and src == b"127.0.0.1" and sport == 7000 \
                    and dport == 7777:
                a = [int(x) for x in dst.split(b".")]
                i = ((a[1] - 1) << 16) | (a[2] << 8) | a[3]
                if a[0] != 127 or not 0 <= i < truth.attempted:
                    foreign.append(line[:200])
                elif truth.failed[i]:
                    of_failed.append(i)
                elif hits[i] < 255:
                    hits[i] += 1
            elif proto == b"tcp" and dst == b"127.0.0.1" and \
                    dport == PROBE_PORT and sport in probe_ports:
                probe_hits[sport] = probe_hits.get(sport, 0) + 1
            else:
                foreign.append(line[:200])
    check(not foreign, "%d records of flows this test never made, e.g. %s"
          % (len(foreign), foreign[:3]))
    check(not of_failed, "%d records of flows whose send failed (EPERM), "
          "e.g. index %s" % (len(of_failed), of_failed[:5]))
    gen_unique = truth.attempted - hits.count(0)
    gen_doubled = gen_unique - hits.count(1)
    # a failed probe whose record exists made a conntrack (a late SYN)
    probe_made = sum(1 for p in probes if p[2] == 0 or p[1] in probe_hits)
    return {"records": total, "active": active, "reasons": reasons,
            "gen_unique": gen_unique, "gen_doubled": gen_doubled,
            "gen_missing": truth.made - gen_unique,
            "probe_unique": len(probe_hits),
            "probe_doubled": sum(1 for n in probe_hits.values() if n > 1),
            "probe_made": probe_made,
            "probe_missing": sum(1 for p in probes if p[2] == 0 and
                                 p[1] not in probe_hits)}


class CpuLimit:
    """A child cgroup limiting CPU to quota/period: cgroup v2 cpu.max when
    a v2 hierarchy has the cpu controller, else v1 cpu.cfs_quota_us."""

    def __init__(self, quota, period):
        self.quota, self.period = quota, period
        self.path = self.version = None

    def __enter__(self):
        name = "ctdpressure-%d" % os.getpid()
        v2 = self._v2_root()
        if v2:
            self.version, self.parent = 2, v2
            sub = os.path.join(v2, "cgroup.subtree_control")
            with open(sub) as f:
                if "cpu" not in f.read().split():
                    with open(sub, "w") as g:
                        g.write("+cpu")
            self.path = os.path.join(v2, name)
            os.mkdir(self.path)
            self._write("cpu.max", "%d %d" % (self.quota, self.period))
        elif os.path.exists(os.path.join(CGROOT, "cpu", "cpu.cfs_quota_us")):
            self.version, self.parent = 1, os.path.join(CGROOT, "cpu")
            self.path = os.path.join(self.parent, name)
            os.mkdir(self.path)
            self._write("cpu.cfs_period_us", str(self.period))
            self._write("cpu.cfs_quota_us", str(self.quota))
        else:
            raise Fail("no cgroup with a cpu controller under %s (neither a "
                       "v2 cpu.max nor a v1 cpu hierarchy)" % CGROOT)
        return self

    @staticmethod
    def _v2_root():
        with open("/proc/self/mounts") as f:
            for line in f:
                p = line.split()
                if p[2] == "cgroup2" and p[1].startswith(CGROOT):
                    try:
                        with open(os.path.join(p[1], "cgroup.controllers")) as c:
                            if "cpu" in c.read().split():
                                return p[1]
                    except OSError:
                        pass
        return None

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def describe(self):
        if self.version == 2:
            return "cgroup v2 %s cpu.max %d %d" % (self.path, self.quota, self.period)
        return "cgroup v1 %s cpu.cfs_quota_us %d cpu.cfs_period_us %d (the cpu " \
               "controller is on a v1 hierarchy here)" % (self.path, self.quota,
                                                          self.period)

    def add(self, pid):
        self._write("cgroup.procs", str(pid))

    def pids(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def lift(self):
        if self.version == 2:
            self._write("cpu.max", "max %d" % self.period)
        else:
            self._write("cpu.cfs_quota_us", "-1")

    def stat(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            return dict((l.split()[0], int(l.split()[1])) for l in f if l.strip())

    def __exit__(self, *exc):
        if not self.path:
            return False
        end = time.time() + 15
        while True:
            try:
                for pid in self.pids():
                    try:
                        with open(os.path.join(self.parent, "cgroup.procs"), "w") as f:
                            f.write(str(pid))
                    except OSError:
                        pass
                os.rmdir(self.path)
                return False
            except FileNotFoundError:
                return False
            except OSError as e:
                if time.time() > end:
                    raise Fail("cannot remove cgroup %s: %s (pids %s)"
                               % (self.path, e, self.pids()))
                time.sleep(0.2)


def family(pid):
    """pid and all its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids):
    tot = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tot += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return tot / os.sysconf("SC_CLK_TCK")


def ctd_args(args):
    if args.pre_governor:
        return []
    a = ["--kernel-pressure", args.mode]
    if args.high is not None:
        a += ["--kernel-pressure-high", str(args.high)]
    if args.low is not None:
        a += ["--kernel-pressure-low", str(args.low)]
    return a


def log_lines(ctd, word):
    return [l for l in ctd.log_text().splitlines() if word in l]


def settle(ns, ctd, secs):
    """Flushes what is left and waits until the table is empty and the
    records stop growing; returns seconds waited."""
    t = time.time()
    ns.run(["conntrack", "-F"])
    last, stable = -1, 0
    while True:
        check(ctd.proc.poll() is None, "ctd died:\n" + ctd.log_text()[-3000:])
        count = ns.conntrack_count()
        st = ctd.stats()
        rec = st["out_json_records"]
        if count == 0 and rec == last and st["out_json_held"] == 0 and \
                st.get("kernel_pending", 0) == 0:
            stable += 1
            if stable >= 3:
                return time.time() - t
        else:
            stable = 0
        last = rec
        if time.time() - t > secs:
            raise Fail("ctd did not settle within %d s: %d conntracks left, "
                       "records %d, held %d, kernel_pending %s"
                       % (secs, count, rec, st["out_json_held"],
                          st.get("kernel_pending")))
        time.sleep(1)


def wait_rearmed(ctd, args, secs):
    """After a fail-open, until reliable mode is back (kernel_failed_open
    0, as many re-arms as fail-opens); returns the counters and a note.
    Does not fail: the checks after it say what is wrong."""
    st = ctd.stats()
    if args.mode != "fail-open" or args.pre_governor or \
            not st.get("kernel_fail_opens"):
        return st, ""
    t = time.time()
    while True:
        if st.get("kernel_failed_open", 1) == 0 and \
                st.get("kernel_rearms", 0) >= st["kernel_fail_opens"]:
            return st, "; re-armed %.1f s after settling" % (time.time() - t)
        if time.time() - t > secs:
            return st, "; NOT re-armed %d s after settling" % secs
        time.sleep(0.5)
        st = ctd.stats()


def report_and_check(name, args, truth, mon, before, after, counters, final,
                     ctd, failing_line, secs, extra=""):
    """The accounting common to both scenarios."""
    probes = mon.result["probes"]
    t = tally(ctd.json, truth, probes)
    kernel = {k: v for k, v in final.items() if k.startswith("kernel_")}
    for k in ("kernel_failed_open", "kernel_fail_opens", "kernel_rearms",
              "kernel_lost"):
        kernel.setdefault(k, counters.get(k))
    has_gov = counters.get("kernel_lost") is not None or \
        final.get("kernel_lost") is not None
    lost = counters.get("kernel_lost", final.get("kernel_lost", 0)) or 0
    made = truth.made + t["probe_made"]
    unique = t["gen_unique"] + t["probe_unique"]
    pfailed = mon.failed()
    delta = {k: after.get(k, 0) - before.get(k, 0)
             for k in ("drop", "insert_failed", "early_drop")}
    peak, peak_t = mon.result["peak"]
    tmax = mon.result["max"]
    c = ctdns.identity(counters, "json", t["records"] + t["active"])
    log("%s [%s%s]: flows made %d (generator %d of %d attempted, probes %d), "
        "records %d (unique flows %d: generator %d + probes %d; doubled %d; "
        "end reasons %s), kernel_lost %s, unique + lost = %d (%+d vs made); "
        "probes failed %d of %d, sends failed %d; conntrack -S drop +%d, "
        "insert_failed +%d, early_drop +%d; peak nf_conntrack_count %d of %d "
        "(%.1f%%) at %.1f s; %.1f s; json delivered %d, failed %d"
        % (name, args.mode, ", pre-governor" if args.pre_governor else "",
           made, truth.made, truth.attempted, t["probe_made"], t["records"],
           unique, t["gen_unique"], t["probe_unique"],
           t["gen_doubled"] + t["probe_doubled"], t["reasons"],
           lost if has_gov else "n/a", unique + lost, unique + lost - made,
           len(pfailed), len(probes), truth.nfailed, delta["drop"],
           delta["insert_failed"], delta["early_drop"], peak, tmax,
           100.0 * peak / tmax, peak_t, secs, c["delivered"], c["failed"]))
    log("%s: governor counters %s%s" % (name, kernel, extra))
    if pfailed:
        log("%s: failed probes (t s, port, errno, s): %s"
            % (name, pfailed[:20]))
    log("%s: nf_conntrack_count per second: %s"
        % (name, " ".join("%g:%d" % (a, b) for a, b in mon.result["series"])))
    check(t["gen_doubled"] == 0 and t["probe_doubled"] == 0,
          "%d generator flows and %d probes have more than one record"
          % (t["gen_doubled"], t["probe_doubled"]))
    if args.mode == "hold" or args.pre_governor:
        check(lost == 0, "hold mode: kernel_lost %d" % lost)
        check(t["gen_missing"] == 0 and t["probe_missing"] == 0,
              "hold mode lost records: %d generator flows and %d probes "
              "have none" % (t["gen_missing"], t["probe_missing"]))
        check(unique == made, "hold: %d unique records for %d flows"
              % (unique, made))
        return t, delta, pfailed, lost
    check(has_gov, "no kernel_lost counter: is this a ctd with the "
          "kernel-pressure governor? (--pre-governor for one without)")
    check(not pfailed, "%d of %d probe connections failed (the firewall "
          "refused them): %s" % (len(pfailed), len(probes), pfailed[:10]))
    check(truth.nfailed == 0, "%d generator sends failed (EPERM: table full)"
          % truth.nfailed)
    check(delta["drop"] == 0, "conntrack -S drop grew by %d" % delta["drop"])
    check(unique + lost >= made, "records under-counted: %d unique records "
          "+ %d kernel_lost = %d < %d flows made"
          % (unique, lost, unique + lost, made))
    check(unique + lost - made <= SLACK * made,
          "kernel_lost over-counts: %d unique records + %d kernel_lost = %d, "
          "%d flows made (%.3f%% over, at most %.1f%%)"
          % (unique, lost, unique + lost, made,
             100.0 * (unique + lost - made) / made, 100 * SLACK))
    check(kernel["kernel_fail_opens"] and kernel["kernel_fail_opens"] >= 1,
          "the governor never failed open (kernel_fail_opens %s; peak "
          "nf_conntrack_count %.1f%% of the max%s)"
          % (kernel["kernel_fail_opens"], 100.0 * peak / tmax,
             ": the load did not outrun ctd, the test proves nothing"
             if peak < 0.8 * tmax else ""))
    check(kernel["kernel_rearms"] and kernel["kernel_rearms"] >= 1,
          "reliable mode never came back (kernel_rearms %s)"
          % kernel["kernel_rearms"])
    check(kernel["kernel_failed_open"] == 0 and
          kernel["kernel_rearms"] >= kernel["kernel_fail_opens"],
          "still failed open at the end (kernel_failed_open %s, %s fail-opens, "
          "%s re-arms)" % (kernel["kernel_failed_open"],
                           kernel["kernel_fail_opens"], kernel["kernel_rearms"]))
    check(failing_line, "the log did not say \"failing open\" while it "
          "happened")
    check(log_lines(ctd, "reliable mode restored"),
          "the log never said \"reliable mode restored\"")
    return t, delta, pfailed, lost


def scenario_stop(args, ns, tmp):
    gen = build_gen(tmp)
    ctd = Ctd(ns, args.ctd, tmp, ctd_args(args))
    truth = Truth()
    mon = Monitor(ns)
    before = ct_stats(ns)
    t0 = time.time()
    stopped = False
    failing_line = []
    try:
        os.kill(ctd.proc.pid, signal.SIGSTOP)
        stopped = True
        rounds = stuck = 0
        cap = t0 + max(300, 3 * args.flows / max(args.rate, 1))
        while truth.made < args.flows:
            n = min(ROUND, args.flows - truth.made)
            # bounded: at a full table each refused send costs the kernel
            # an early-drop scan (~1 ms here), far below the pace
            sent, failed = truth.run(ns, gen, n, args.rate,
                                     n / args.rate + 2 if args.rate else 5)
            ns.run(["conntrack", "-F"])
            rounds += 1
            stuck = stuck + 1 if sent == 0 else 0
            if stuck >= STUCK:
                log("stop: %d rounds in a row made no flow (table full): "
                    "giving up at %d flows" % (stuck, truth.made))
                break
            check(time.time() < cap, "rounds ran past %d s" % (cap - t0))
        gen_s = time.time() - t0
        time.sleep(HOLD_S)
        failing_line = log_lines(ctd, "failing open")
        os.kill(ctd.proc.pid, signal.SIGCONT)
        stopped = False
        stop_s = time.time() - t0
        log("stop: %d rounds, %d flows made of %d attempted in %.1f s "
            "(generator %.1f s), ctd stopped %.1f s"
            % (rounds, truth.made, truth.attempted, gen_s, truth.secs, stop_s))
        if args.mode == "fail-open" and not args.pre_governor:
            check(truth.made >= args.flows, "only %d of %d flows could be "
                  "made" % (truth.made, args.flows))
        # the probes go on while the kernel re-sends what it held
        settle_t = time.time()
        while time.time() - settle_t < 2:
            time.sleep(0.5)
        mon.stop()
        after = ct_stats(ns)
        settled = settle(ns, ctd, SETTLE_S)
        final, rearm = wait_rearmed(ctd, args, REARM_S)
        time.sleep(1)
        counters = ctd.stop()
    finally:
        if stopped:
            os.kill(ctd.proc.pid, signal.SIGCONT)
    secs = time.time() - t0
    extra = "; settled %.1f s after SIGCONT+2 s%s; log: %s" % (
        settled, rearm, (failing_line or ["(no \"failing open\" line)"])[0].strip()[:200])
    t, delta, pfailed, lost = report_and_check(
        "stop", args, truth, mon, before, after, counters, final, ctd,
        failing_line, secs, extra)
    if args.pre_governor:
        check(delta["drop"] > 0 and (truth.nfailed + len(pfailed)) > 0,
              "the table never refused a connection (drop +%d, sends failed "
              "%d, probes failed %d): the test proves nothing"
              % (delta["drop"], truth.nfailed, len(pfailed)))


def scenario_starve(args, ns, tmp):
    gen = build_gen(tmp)
    quota, period = (int(x) for x in args.quota.split())
    ns.sysctl("nf_conntrack_udp_timeout", 1)
    with CpuLimit(quota, period) as cg:
        ctd = Ctd(ns, args.ctd, tmp, ctd_args(args))
        for pid in family(ctd.proc.pid):
            cg.add(pid)
        log("starve: %s; ctd pids %s in it" % (cg.describe(), cg.pids()))
        truth = Truth()
        mon = Monitor(ns)
        before = ct_stats(ns)
        cpu0 = cpu_seconds(family(ctd.proc.pid))
        stat0 = cg.stat()
        t0 = time.time()
        n = int(args.rate * args.seconds)
        # every flow is sent: a busy machine stretches the storm (printed)
        truth.run(ns, gen, n, args.rate, 3 * args.seconds + 10,
                  timeout=3 * args.seconds + 120)
        storm_s = time.time() - t0
        time.sleep(2)           # the last flows time out
        fam = family(ctd.proc.pid)
        outside = sorted(set(fam) - set(cg.pids()))
        failing_line = log_lines(ctd, "failing open")
        cpu_storm = cpu_seconds(fam) - cpu0
        stat1 = cg.stat()
        cg.lift()
        log("starve: storm %d flows made of %d attempted in %.1f s (%.0f/s), "
            "ctd used %.2f s CPU meanwhile (%.1f%% of one CPU)%s; limit lifted"
            % (truth.made, truth.attempted, storm_s, truth.attempted / storm_s,
               cpu_storm, 100 * cpu_storm / (storm_s + 2),
               "; NOT in the cgroup: %s" % outside if outside else ""))
        time.sleep(2)
        mon.stop()
        after = ct_stats(ns)
        settled = settle(ns, ctd, SETTLE_S)
        final, rearm = wait_rearmed(ctd, args, REARM_S)
        time.sleep(1)
        cpu_all = cpu_seconds(family(ctd.proc.pid)) - cpu0
        counters = ctd.stop()
        secs = time.time() - t0
        thr = {k: stat1.get(k, 0) - stat0.get(k, 0) for k in
               ("nr_periods", "nr_throttled", "throttled_time", "throttled_usec")
               if k in stat1}
        made = max(truth.made, 1)
        extra = ("; ctd CPU %.2f s under the limit (%.1f us per flow), %.2f s "
                 "in all (%.1f us per flow); cgroup during the storm %s; "
                 "settled %.1f s after the limit was lifted + 4 s%s; log: %s"
                 % (cpu_storm, 1e6 * cpu_storm / made, cpu_all,
                    1e6 * cpu_all / made, thr, settled, rearm,
                    (failing_line or ["(no \"failing open\" line)"])[0].strip()[:200]))
        report_and_check("starve", args, truth, mon, before, after, counters,
                         final, ctd, failing_line, secs, extra)
        check(not outside, "processes of ctd outside the cgroup: %s" % outside)


def main(args):
    check(os.geteuid() == 0, "needs root (namespaces, cgroups)")
    for tool in ("cc", "conntrack", "nft", "ip"):
        check(subprocess.run(["sh", "-c", "command -v " + tool],
                             capture_output=True).returncode == 0,
              "%s is missing" % tool)
    if args.high is not None or args.low is not None:
        check(not args.pre_governor, "--high/--low need the governor")
    t = time.time()
    with ctdns.sandbox("pr") as (ns, tmp):
        if args.scenario == "stop":
            scenario_stop(args, ns, tmp)
        else:
            scenario_starve(args, ns, tmp)
    log("%s: %.0f s in all" % (args.scenario, time.time() - t))


def arguments(ap):
    ap.add_argument("scenario", choices=["stop", "starve"])
    ap.add_argument("--mode", choices=["fail-open", "hold"], default="fail-open",
                    help="ctd's kernel-pressure setting and what is asserted")
    ap.add_argument("--pre-governor", action="store_true",
                    help="ctd has no kernel-pressure governor: pass no such "
                    "option, check as hold (stop: and that the table refused)")
    ap.add_argument("--high", type=int, help="--kernel-pressure-high PCT")
    ap.add_argument("--low", type=int, help="--kernel-pressure-low PCT")
    ap.add_argument("--flows", type=int, default=FLOWS,
                    help="stop: flows to make (default %d)" % FLOWS)
    ap.add_argument("--rate", type=int, default=None,
                    help="flows/s (stop: %d, 0 = flat out; starve: %d)"
                    % (STOP_RATE, STARVE_RATE))
    ap.add_argument("--seconds", type=float, default=STARVE_S,
                    help="starve: storm length (default %d)" % STARVE_S)
    ap.add_argument("--quota", default=QUOTA,
                    help="starve: CPU quota and period in us (default %r)" % QUOTA)


def _main(args):
    if args.rate is None:
        args.rate = STOP_RATE if args.scenario == "stop" else STARVE_RATE
    if args.pre_governor:
        args.mode = "hold"
    main(args)


if __name__ == "__main__":
    ctdns.main(_main, arguments)

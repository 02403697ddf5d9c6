#!/usr/bin/env python3
"""storm: ctd against conntrackd, ulogd2 and `conntrack -E` in one UDP flow storm.

Each listener run gets a fresh network namespace (so it sees only its own
namespace's conntrack events), with the listener started INSIDE it by
`ip netns exec`. Then, in that namespace:

  1. N one-packet UDP flows, 127.0.0.1:7000 -> 127.x.y.z:7777 (127.1.0.0
     upward, loopback only), made as fast as one socket can send them by a
     small C generator (bench/flowgen.c, compiled with cc -O2 into a
     temporary directory);
  2. `conntrack -C` must say N;
  3. wait until the listener has caught up with the NEW events (its CPU
     time stops moving);
  4. `conntrack -F` (N DESTROY events);
  5. wait until its record count stops growing (no growth for --quiet
     seconds, at most --cap seconds after the flush), then stop it.

Per run: DESTROY records written, flows without a record (lost %), flows
with more than one record (doubled), CPU time of the listener process
(user+sys from wait4's rusage) per event (2 N events: NEW + DESTROY, also
for `conntrack -E -e DESTROY`, which subscribes to DESTROY only), peak RSS
(VmHWM just before it is stopped) and the generator's rate.

Usage: storm.py [--ctd PATH] [--flows N | --quick] [--only LIST]
                [--json FILE] [--quiet SECS] [--cap SECS]
                [--cost storm|mix] [--rounds K] [--floor PATH]
  --only: comma-separated from ctd,conntrackd,ulogd,conntrack
  --cost: instead of the side-by-side table, the cost of a finished flow
          and the firewall's own connection rate, K rounds (default 5) of
          none, floor, ctd, ctd with every group, conntrackd (reliable,
          stats mode) and, in the storm, ctd from a 2 KiB buffer; each
          round runs them all in turn, so every ratio compares runs of the
          same round. "storm": the UDP storm above; "mix": N TCP
          connections + N UDP flows with a reply each (bench/mixgen.c,
          default N 20,000), then conntrack -F. --only picks among
          none,floor,ctd,ctd-all,ctd-2k,ctd-store,conntrackd. The floor is the bare
          reliable DESTROY-only reader (--floor: its .c, built here, or a
          binary; default ../shared/bench/floor.c next to the checkout).
Needs root, ip, nft, conntrack, cc; conntrackd and ulogd (ulogd2, with the
JSON output plugin: Debian ulogd2-json) for their runs. A missing tool or a
run that fails is an error (exit 1), never a number.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True      # leave no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from ctdns import Ctd, Fail, Netns, check  # noqa: E402

NF = "/proc/sys/net/netfilter/"
ULOGD_PLUGINS = "/usr/lib/x86_64-linux-gnu/ulogd"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DST_RE = re.compile(rb"dst=127\.(\d+)\.(\d+)\.(\d+) ")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc helpers

def proc_cpu_ticks(pid):
    """utime+stime of a process (all its threads), in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def thread_cpu_ns(pid):
    """{thread id: CPU ns on the clock} for each of a process's threads,
    from /proc/PID/task/TID/schedstat (user and system together, at ns
    resolution rather than stat's clock ticks)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                out[int(tid)] = int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return out


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def netlink_sockets(pid):
    """The process's NETLINK_NETFILTER sockets: list of (groups, rmem, drops,
    portid) read from /proc/PID/net/netlink (the process's namespace)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
        with open("/proc/%d/net/netlink" % pid) as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    out = []
    for r in rows:
        c = r.split()
        if len(c) >= 10 and c[1] == "12" and c[9] in inodes:
            out.append((int(c[3], 16), int(c[4]), int(c[8]), int(c[2])))
    return out


def event_rcvbufs(ns, pid):
    """Receive buffer sizes (sk_rcvbuf, from `ss -m`) of the listener's
    sockets subscribed to conntrack events, at the moment of asking."""
    ports = {p for g, _, _, p in netlink_sockets(pid) if g}
    try:
        out = ns.run(["ss", "-f", "netlink", "-m", "-n"], timeout=30)
    except (Fail, subprocess.TimeoutExpired):
        return []
    sizes = []
    for line in out.splitlines():
        m = re.search(r"\s(?:nft|12):(?:\S*/)?(-?\d+)\s.*\brb(\d+)", line)
        if m and (int(m.group(1)) & 0xffffffff) in ports:
            sizes.append(int(m.group(2)))
    return sorted(set(sizes))


def wait_subscribed(proc, secs, what, logfile=None):
    """Until the listener holds a ctnetlink socket subscribed to event groups."""
    end = time.time() + secs
    while time.time() < end:
        if any(s[0] for s in netlink_sockets(proc.pid)):
            return
        if proc.poll() is not None:
            text = open(logfile, errors="replace").read()[-2000:] if logfile else ""
            raise Fail("%s exited (%d) before it subscribed to conntrack events%s"
                       % (what, proc.returncode, ":\n" + text if text else ""))
        time.sleep(0.05)
    raise Fail("%s never subscribed to conntrack events within %ds" % (what, secs))


def reap(proc, secs, what):
    """Waits for a Popen child with wait4 and returns (rc, cpu seconds)."""
    end = time.time() + secs
    killed = False
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.time() > end and not killed:
            log("  %s did not exit within %ds: SIGKILL" % (what, secs))
            proc.kill()
            killed = True
        time.sleep(0.05)
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc          # Popen must not wait for it again
    reap.last_split = (ru.ru_utime, ru.ru_stime)
    return rc, ru.ru_utime + ru.ru_stime, killed


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------- records

class Tally:
    """Records per generated flow (index from the destination address)."""

    def __init__(self, n):
        self.n = n
        self.hits = bytearray(n)
        self.records = 0      # DESTROY records for our flows
        self.extra = 0        # DESTROY records for other flows
        self.kinds = {}

    def add_dst(self, a, b, c, kind=None):
        i = ((a - 1) << 16) | (b << 8) | c
        if 0 <= i < self.n:
            self.records += 1
            if self.hits[i] < 255:
                self.hits[i] += 1
            if kind is not None:
                self.kinds[kind] = self.kinds.get(kind, 0) + 1
        else:
            self.extra += 1

    def result(self):
        unique = self.n - self.hits.count(0)
        doubled = self.n - self.hits.count(0) - self.hits.count(1)
        return unique, doubled


def dst_of(addr):
    p = addr.split(".")
    if len(p) == 4 and p[0] == "127":
        return int(p[1]), int(p[2]), int(p[3])
    return None


def tally_text(path, n, marker):
    """conntrackd's Stats LogFile and conntrack -E: one line per DESTROY."""
    t = Tally(n)
    with open(path, "rb") as f:
        for line in f:
            if marker is not None and marker not in line:
                continue
            m = DST_RE.search(line)
            if m and b"sport=7000 dport=7777" in line:
                t.add_dst(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            else:
                t.extra += 1
    return t


# ---------------------------------------------------------------- listeners

class Listener:
    name = "?"
    buffer = "?"
    records_path = None
    proc = None

    def __init__(self, bufvariant):
        self.variant = bufvariant      # "default" or "2k"
        self.notes = []

    def start(self, ns, tmp):
        raise NotImplementedError

    def stop(self, ns):
        self.proc.send_signal(signal.SIGTERM)
        return reap(self.proc, 60, self.name)

    def tally(self, n):
        raise NotImplementedError

    def after(self):
        pass


class CtdListener(Listener):
    name = "ctd"

    def __init__(self, bufvariant, binary):
        super().__init__(bufvariant)
        self.binary = binary
        # The storm fills the table with N live flows, then flushes them:
        # the kernel-pressure guard would fail open near the top and the
        # run would measure losses, not the cost of a record; hold keeps
        # every DESTROY, like the other reliable listeners here.
        self.args = ["--kernel-pressure", "hold"] + (
            [] if bufvariant == "default" else ["--rcvbuf", "2048"])
        self.buffer = ("default (8 MiB, grows to 64 MiB)" if bufvariant == "default"
                       else "2 KiB (--rcvbuf 2048, grows to 64 MiB)")

    def start(self, ns, tmp):
        # The ctd-store row: the same ctd with the flow store on (ctdns
        # passes --store none otherwise).
        store = (["--store", os.path.join(tmp, "flows.db")]
                 if getattr(self, "store", False) else [])
        self.ctd = Ctd(ns, self.binary, tmp, self.args + store,
                       json=os.path.join(tmp, "flows.json"))
        self.proc = self.ctd.proc
        self.records_path = self.ctd.json

    def stop(self, ns):
        r = super().stop(ns)
        counters = {}
        for line in self.ctd.log_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counters[parts[0]] = int(parts[1])
        if r[0] != 0:
            self.notes.append("ctd exited with %d" % r[0])
        keys = ["nl_drops", "nl_enobufs", "nl_grows", "ends_lost",
                "flows_unseen_destroy", "kernel_pending_peak"]
        shown = ["%s %d" % (k, counters[k]) for k in keys if counters.get(k)]
        if shown:
            self.notes.append("ctd counters: " + ", ".join(shown))
        return r

    def tally(self, n):
        t = Tally(n)
        with open(self.records_path, "rb") as f:
            for line in f:
                if b'"end_reason"' not in line:
                    continue
                r = json.loads(line)
                o = r.get("orig", {})
                d = dst_of(o.get("dst", ""))
                if (d and r.get("proto") == "udp" and o.get("src") == "127.0.0.1"
                        and o.get("sport") == 7000 and o.get("dport") == 7777):
                    t.add_dst(*d, kind=r["end_reason"])
                else:
                    t.extra += 1
        other = {k: v for k, v in t.kinds.items() if k != "destroy"}
        if other:
            self.notes.append("end_reason other than destroy: %s" % other)
        return t


CONNTRACKD_CONF = """General {
	LogFile %(d)s/conntrackd.log
	LockFile %(d)s/conntrackd.lock
	UNIX {
		Path %(d)s/conntrackd.ctl
	}
	HashLimit %(limit)d
	NetlinkBufferSize %(buf)d
	NetlinkBufferSizeMaxGrowth 8388608
	NetlinkEventsReliable %(rel)s
}
Stats {
	LogFile %(d)s/stats.log
}
"""


class ConntrackdListener(Listener):
    def __init__(self, bufvariant, reliable, n):
        super().__init__(bufvariant)
        self.reliable = reliable
        self.n = n
        self.name = "conntrackd (Reliable %s)" % ("On" if reliable else "Off")
        self.buf = 2097152 if bufvariant == "default" else 2048
        self.buffer = ("recommended (2 MiB, grows to 8 MiB)" if bufvariant == "default"
                       else "2 KiB (grows to 8 MiB)")

    def start(self, ns, tmp):
        self.tmp = tmp
        self.conf = os.path.join(tmp, "conntrackd.conf")
        with open(self.conf, "w") as f:
            # HashLimit: its man page says twice nf_conntrack_max; the
            # default (262144) would refuse flows of a larger storm.
            f.write(CONNTRACKD_CONF % {"d": tmp, "buf": self.buf,
                                       "rel": "On" if self.reliable else "Off",
                                       "limit": max(262144, 2 * self.n)})
        self.records_path = os.path.join(tmp, "stats.log")
        self.proc = ns.start(["conntrackd", "-C", self.conf],
                             open(os.path.join(tmp, "conntrackd.out"), "w"),
                             subprocess.STDOUT)
        wait_subscribed(self.proc, 15, "conntrackd",
                        os.path.join(tmp, "conntrackd.out"))
        end = time.time() + 10
        while not os.path.exists(os.path.join(tmp, "conntrackd.ctl")):
            check(time.time() < end, "conntrackd made no control socket")
            time.sleep(0.05)

    def stop(self, ns):
        r = subprocess.run(ns.argv(["conntrackd", "-C", self.conf, "-s"]),
                           capture_output=True, text=True, timeout=30)
        m = re.search(r"connections created:\s+(\d+)\s+failed:\s+(\d+).*?"
                      r"connections destroyed:\s+(\d+)\s+failed:\s+(\d+)",
                      r.stdout, re.S)
        if m:
            self.notes.append("its cache stats: created %s (failed %s), destroyed %s "
                              "(failed %s)" % m.groups())
        # As its init script does: ask it over its UNIX socket.
        subprocess.run(ns.argv(["conntrackd", "-C", self.conf, "-k"]),
                       capture_output=True, timeout=30)
        return reap(self.proc, 60, self.name)

    def after(self):
        text = open(os.path.join(self.tmp, "conntrackd.log"), errors="replace").read()
        sizes = re.findall(r"socket buffer size has been set to (\d+)", text)
        if len(sizes) > 1:
            self.notes.append("buffer grew to %s bytes" % sizes[-1])
        for pat, what in (("overrun", "overrun/resync messages"),
                          ("can't add", "cache refused flows"),
                          ("ENOBUFS", "ENOBUFS messages")):
            k = text.count(pat)
            if k:
                self.notes.append("%d %s in its log" % (k, what))

    def tally(self, n):
        # Its Stats LogFile has one line per flow it logged as destroyed.
        return tally_text(self.records_path, n, None)


ULOGD_CONF = """[global]
logfile="%(d)s/ulogd.log"
loglevel=5
plugin="%(p)s/ulogd_inpflow_NFCT.so"
plugin="%(p)s/ulogd_filter_IP2STR.so"
plugin="%(p)s/ulogd_output_JSON.so"
stack=ct1:NFCT,ip2str1:IP2STR,json1:JSON

[ct1]
reliable=1
hash_buckets=%(buckets)d
hash_max_entries=%(entries)d
%(buf)s
[json1]
sync=1
file="%(d)s/ulogd.json"
"""


class UlogdListener(Listener):
    name = "ulogd2 (NFCT reliable=1)"

    def __init__(self, bufvariant, n):
        super().__init__(bufvariant)
        self.n = n
        if bufvariant == "default":
            self.buf = ""
            self.buffer = "default (kernel rmem_default %d KiB)" % (rmem_default() // 1024)
        else:
            # ulogd applies netlink_socket_buffer_size only when it is below
            # netlink_socket_buffer_maxsize (whose default, 0, disables it).
            self.buf = ("netlink_socket_buffer_size=2048\n"
                        "netlink_socket_buffer_maxsize=4096\n")
            self.buffer = "2 KiB (netlink_socket_buffer_size=2048)"

    def start(self, ns, tmp):
        self.tmp = tmp
        conf = os.path.join(tmp, "ulogd.conf")
        with open(conf, "w") as f:
            # Its flow hash (default 32768 entries) sized to hold the storm.
            f.write(ULOGD_CONF % {"d": tmp, "p": ULOGD_PLUGINS, "buf": self.buf,
                                  "buckets": 65536,
                                  "entries": max(32768, 2 * self.n)})
        self.records_path = os.path.join(tmp, "ulogd.json")
        self.proc = ns.start(["ulogd", "-c", conf],
                             open(os.path.join(tmp, "ulogd.out"), "w"),
                             subprocess.STDOUT)
        wait_subscribed(self.proc, 15, "ulogd", os.path.join(tmp, "ulogd.log"))

    def after(self):
        text = open(os.path.join(self.tmp, "ulogd.log"), errors="replace").read()
        for pat in ("losing events", "Maximum buffer size"):
            if pat in text:
                self.notes.append("its log says: %s" % pat)

    def tally(self, n):
        t = Tally(n)
        with open(self.records_path, "rb") as f:
            for line in f:
                r = json.loads(line)
                if r.get("ct.event") != 4:          # 4: NFCT_T_DESTROY
                    continue
                d = dst_of(r.get("dest_ip", r.get("orig.ip.daddr.str", "")))
                if (d and r.get("src_ip", r.get("orig.ip.saddr.str")) == "127.0.0.1"
                        and r.get("orig.l4.sport") == 7000
                        and r.get("orig.l4.dport") == 7777):
                    t.add_dst(*d)
                else:
                    t.extra += 1
        return t


class ConntrackEListener(Listener):
    name = "conntrack -E -e DESTROY"

    def __init__(self, bufvariant):
        super().__init__(bufvariant)
        self.args = [] if bufvariant == "default" else ["-b", "2048"]
        self.buffer = ("default (kernel rmem_default %d KiB)" % (rmem_default() // 1024)
                       if bufvariant == "default" else "2 KiB (-b 2048)")

    def start(self, ns, tmp):
        self.tmp = tmp
        self.records_path = os.path.join(tmp, "events.txt")
        self.err = os.path.join(tmp, "conntrack.err")
        self.proc = ns.start(["conntrack", "-E", "-e", "DESTROY"] + self.args,
                             open(self.records_path, "w"), open(self.err, "w"))
        wait_subscribed(self.proc, 15, "conntrack -E", self.err)

    def after(self):
        text = open(self.err, errors="replace").read()
        k = text.count("ENOBUFS")
        if k:
            self.notes.append("reported ENOBUFS %d times" % k)
        m = re.search(r"(\d+) flow events have been shown", text)
        if m:
            self.notes.append("says %s flow events shown" % m.group(1))

    def tally(self, n):
        return tally_text(self.records_path, n, b"[DESTROY]")


def rmem_default():
    with open("/proc/sys/net/core/rmem_default") as f:
        return int(f.read())


# ---------------------------------------------------------------- one run

def wait_cpu_idle(pid, cap):
    """Until the listener used no CPU for 3 samples in a row (0.6 s)."""
    start = time.time()
    last, idle = proc_cpu_ticks(pid), 0
    while time.time() - start < cap:
        time.sleep(0.2)
        now = proc_cpu_ticks(pid)
        if now is None:
            raise Fail("listener died while catching up with NEW events")
        idle = idle + 1 if now - last <= 1 else 0
        last = now
        if idle >= 3:
            return time.time() - start
    return None


def wait_drained(lst, quiet, cap, start):
    """Until the record file stopped growing for `quiet` s (at most `cap` s
    after `start`, the flush). Returns (seconds from the flush to the last
    growth, capped?)."""
    size = file_size(lst.records_path)
    last_growth = time.time()
    while True:
        time.sleep(0.25)
        now = time.time()
        s = file_size(lst.records_path)
        if s != size:
            size, last_growth = s, now
        if lst.proc.poll() is not None:
            raise Fail("%s exited during the drain" % lst.name)
        if now - last_growth >= quiet:
            return last_growth - start, False
        if now - start >= cap:
            return now - start, True


def run_one(lst, n, flowgen, opts, tag):
    res = {"listener": lst.name, "buffer": lst.buffer, "variant": lst.variant,
           "flows": n}
    with Netns(tag) as ns, tempfile.TemporaryDirectory(prefix="storm-") as tmp:
        for k, v in (("nf_conntrack_acct", 1), ("nf_conntrack_timestamp", 1),
                     ("nf_conntrack_events", 1),
                     # no flow may time out before the flush
                     ("nf_conntrack_udp_timeout", 600)):
            ns.sysctl(k, v)
        lst.start(ns, tmp)
        pid = lst.proc.pid
        time.sleep(0.3)
        out = ns.run([flowgen, str(n)], timeout=600).split()
        check(len(out) == 2 and int(out[0]) == n, "flowgen made %s flows" % out[:1])
        res["gen_s"] = float(out[1])
        res["gen_rate"] = n / float(out[1])
        count = ns.conntrack_count()
        check(count == n, "the kernel tracks %d conntracks after the storm, "
              "expected %d" % (count, n))
        caught = wait_cpu_idle(pid, opts.cap)
        res["new_catchup_s"] = caught
        if caught is None:
            lst.notes.append("still busy with NEW events after %ds" % opts.cap)
        t = time.time()
        ns.run(["conntrack", "-F"], timeout=300)
        res["flush_s"] = time.time() - t
        res["drain_s"], res["capped"] = wait_drained(lst, opts.quiet, opts.cap, t)
        if res["capped"]:
            lst.notes.append("records still arriving when the %ds cap ended "
                             "the wait" % opts.cap)
        res["after_flush_left"] = ns.conntrack_count()
        res["rss_kib"] = proc_status(pid, "VmHWM")
        socks = netlink_sockets(pid)
        res["sock_drops"] = sum(s[2] for s in socks if s[0])
        res["event_rcvbuf"] = event_rcvbufs(ns, pid)
        ticks = proc_cpu_ticks(pid)
        rc, cpu, killed = lst.stop(ns)
        if killed:
            lst.notes.append("had to be killed")
        res["exit"] = rc
        res["cpu_s"] = cpu
        res["cpu_user_s"], res["cpu_sys_s"] = getattr(reap, "last_split",
                                                      (None, None))
        res["cpu_s_proc"] = ticks / CLK_TCK if ticks is not None else None
        lst.after()
        t = lst.tally(n)
        unique, doubled = t.result()
        res.update(records=t.records, unique=unique, doubled=doubled,
                   extra=t.extra, lost_pct=100.0 * (n - unique) / n,
                   cpu_us_per_event=cpu * 1e6 / (2 * n))
        if res["sock_drops"]:
            lst.notes.append("event socket drop counter %d" % res["sock_drops"])
        if res["event_rcvbuf"]:
            lst.notes.append("event socket rcvbuf at the end %s bytes"
                             % "/".join(map(str, res["event_rcvbuf"])))
            if lst.variant == "2k" and min(res["event_rcvbuf"]) > 65536:
                lst.notes.append("so the event socket did not keep a 2 KiB "
                                 "buffer (grown, or the setting went elsewhere)")
        if t.extra:
            lst.notes.append("%d records for flows not made by the storm" % t.extra)
    res["notes"] = lst.notes
    return res


# ---------------------------------------------------------------- setup

def need(tool, hint):
    check(shutil.which(tool) is not None, "%s is missing (%s)" % (tool, hint))


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "missing"


def build_flowgen(tmp):
    exe = os.path.join(tmp, "flowgen")
    r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe, os.path.join(HERE, "flowgen.c")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cannot compile flowgen.c:\n" + r.stderr)
    return exe


class HostSysctls:
    """nf_conntrack_max is read-only inside a namespace; the host's (global)
    value is raised only when a storm would not fit, and restored."""

    def __init__(self, n):
        self.n = n
        self.saved = {}

    def __enter__(self):
        mx = int(open(NF + "nf_conntrack_max").read())
        if mx < self.n + 1024:
            self.set("nf_conntrack_max", self.n + 1024)
        b = int(open(NF + "nf_conntrack_buckets").read())
        if b < self.n // 2:
            self.set("nf_conntrack_buckets", 1 << (self.n - 1).bit_length())
        return self

    def set(self, name, value):
        self.saved.setdefault(name, open(NF + name).read().strip())
        with open(NF + name, "w") as f:
            f.write(str(value))
        log("host sysctl %s = %s (was %s; restored at exit)"
            % (name, value, self.saved[name]))

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            try:
                with open(NF + name, "w") as f:
                    f.write(value)
            except OSError as e:
                log("could not restore %s to %s: %s" % (name, value, e))
        return False


def plan(opts, n):
    only = [s.strip() for s in opts.only.split(",") if s.strip()]
    for s in only:
        check(s in ("ctd", "conntrackd", "ulogd", "conntrack"),
              "unknown listener %r in --only (ctd,conntrackd,ulogd,conntrack)" % s)
    runs = []
    if "ctd" in only:
        check(os.access(opts.ctd, os.X_OK), "ctd binary %s is missing: build it "
              "(cmake --build build-bench) or pass --ctd" % opts.ctd)
        runs += [lambda v=v: CtdListener(v, opts.ctd) for v in ("default", "2k")]
    if "conntrackd" in only:
        need("conntrackd", "apt-get install conntrackd")
        runs += [lambda v=v, r=r: ConntrackdListener(v, r, n)
                 for v in ("default", "2k") for r in (True, False)]
    if "ulogd" in only:
        need("ulogd", "apt-get install ulogd2 ulogd2-json")
        for so in ("inpflow_NFCT", "filter_IP2STR", "output_JSON"):
            p = os.path.join(ULOGD_PLUGINS, "ulogd_%s.so" % so)
            check(os.path.exists(p), "ulogd plugin %s is missing (apt-get install "
                  "ulogd2 ulogd2-json)" % p)
        runs += [lambda v=v: UlogdListener(v, n) for v in ("default", "2k")]
    if "conntrack" in only:
        runs += [lambda v=v: ConntrackEListener(v) for v in ("default", "2k")]
    return runs


# ---------------------------------------------------------------- output

def fmt_table(results):
    head = ("| listener | buffer | flows | DESTROY records | lost % | doubled | "
            "CPU µs/event (user+sys) | peak RSS MiB | gen flows/s |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append("| %s | %s | %d | FAILED: %s | | | | | |"
                         % (r["listener"], r["buffer"], r["flows"], r["error"]))
            continue
        split = ""
        if r.get("cpu_user_s") is not None:
            split = " (%.2f+%.2f)" % (r["cpu_user_s"] * 1e6 / (2 * r["flows"]),
                                      r["cpu_sys_s"] * 1e6 / (2 * r["flows"]))
        lines.append("| %s | %s | %d | %d | %.2f | %d | %.2f%s | %.1f | %d |" % (
            r["listener"], r["buffer"], r["flows"], r["records"], r["lost_pct"],
            r["doubled"], r["cpu_us_per_event"], split,
            (r["rss_kib"] or 0) / 1024.0, r["gen_rate"]))
    return "\n".join(lines)


def fmt_notes(results):
    out = []
    for i, r in enumerate(results, 1):
        if "error" in r:
            continue
        bits = ["NEW catch-up %s" % ("%.1fs" % r["new_catchup_s"]
                                     if r["new_catchup_s"] is not None else "n/a"),
                "flush %.1fs" % r["flush_s"],
                "records done %.1fs after the flush%s" % (r["drain_s"],
                                                          " (CAPPED)" if r["capped"] else "")]
        if r.get("after_flush_left"):
            bits.append("%d conntracks left after the flush" % r["after_flush_left"])
        bits += r["notes"]
        out.append("%d. %s, %s: %s" % (i, r["listener"], r["buffer"], "; ".join(bits)))
    return "\n".join(out)


# ---------------------------------------------------------------- cost runs
# The cost of a finished flow and the firewall's connection rate while a
# listener listens: K rounds, each running every row once in a fresh
# namespace, so ratios compare runs of the same round.

class NoListener(Listener):
    name = "none"
    buffer = "-"

    def start(self, ns, tmp):
        self.proc = None

    def stop(self, ns):
        return 0, 0.0, False


class FloorListener(Listener):
    name = "floor (bare reliable reader, DESTROY only)"

    def __init__(self, bufvariant, binary):
        super().__init__(bufvariant)
        self.binary = binary
        self.buffer = "8 MiB"

    def start(self, ns, tmp):
        self.records_path = os.path.join(tmp, "floor.out")
        self.proc = ns.start([self.binary, "-d", "-q", "86400", "-m", "86400"],
                             open(self.records_path, "w"), subprocess.STDOUT)
        wait_subscribed(self.proc, 15, "floor", self.records_path)

    def destroys(self):
        m = re.search(r"destroy (\d+)", open(self.records_path).read())
        return int(m.group(1)) if m else 0


class MixTally:
    """Records per TCP connection / UDP flow of mixgen (index from the
    source address 127.2|3.x.y)."""

    def __init__(self, n):
        self.n = n
        self.hits = {"tcp": bytearray(n), "udp": bytearray(n)}
        self.extra = 0

    def add(self, proto, src):
        p = src.split(".")
        want = {"tcp": "2", "udp": "3"}.get(proto)
        i = (int(p[2]) << 8 | int(p[3])) if len(p) == 4 and p[1] == want else -1
        if 0 <= i < self.n:
            h = self.hits[proto]
            h[i] = min(255, h[i] + 1)
        else:
            self.extra += 1

    def result(self):
        lost = sum(h.count(0) for h in self.hits.values())
        doubled = sum(len(h) - h.count(0) - h.count(1) for h in self.hits.values())
        return lost, doubled


SRC_RE = re.compile(rb"^\s*\[[^]]*\]\s*(?:\[\w+\]\s*)?(tcp|udp)\s.*?src=(127\.[23]\.\d+\.\d+) ")


def cost_tally(lst, mode, n):
    """(finished flows with a record, lost, doubled) for one run."""
    flows = 2 * n if mode == "mix" else n
    if isinstance(lst, NoListener):
        return None, None, None
    if isinstance(lst, FloorListener):
        d = lst.destroys()
        return d, max(0, flows - d), None
    if mode == "storm":
        t = lst.tally(n)
        unique, doubled = t.result()
        return t.records, n - unique, doubled
    t = MixTally(n)
    if isinstance(lst, CtdListener):
        with open(lst.records_path, "rb") as f:
            for line in f:
                if b'"end_reason"' in line:
                    r = json.loads(line)
                    t.add(r.get("proto"), r.get("orig", {}).get("src", ""))
    else:
        with open(lst.records_path, "rb") as f:
            for line in f:
                m = re.search(rb"\b(tcp|udp)\b.*?src=(127\.\d+\.\d+\.\d+) ", line)
                if m:
                    t.add(m.group(1).decode(), m.group(2).decode())
                else:
                    t.extra += 1
    lost, doubled = t.result()
    return flows - lost, lost, doubled


def ctd_counters(lst):
    counters = {}
    for line in lst.ctd.log_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


LAT_BOUNDS = ["1", "2", "5", "10", "20", "50", "100", "200", "500", "1000"]
LAT_KEYS = ["latency_le_%sms" % b if b != "1000" else "latency_le_1s"
            for b in LAT_BOUNDS] + ["latency_gt_1s"]


def latency_pct(counters, q):
    """The bucket bound (ms) that holds quantile q; None without data."""
    counts = [counters.get(k, 0) for k in LAT_KEYS]
    total = sum(counts)
    if not total:
        return None
    run = 0
    for bound, c in zip(LAT_BOUNDS + [">1000"], counts):
        run += c
        if run >= q * total:
            return bound
    return ">1000"


def generate(ns, mode, n, gens):
    """Makes the traffic; returns (flows made, seconds)."""
    if mode == "mix":
        ns.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"])
        out = ns.run([gens["mix"], str(n)], timeout=600).split()
        check(len(out) == 3 and int(out[0]) == n and int(out[1]) == n,
              "mixgen made %s" % out)
        return 2 * n, float(out[2])
    out = ns.run([gens["storm"], str(n)], timeout=600).split()
    check(len(out) == 2 and int(out[0]) == n, "flowgen made %s flows" % out[:1])
    return n, float(out[1])


def cost_drain(lst, opts, t):
    """After the flush: until the listener's CPU and records stand still."""
    if lst.proc is None:
        return 0.0
    wait_cpu_idle(lst.proc.pid, opts.cap)
    if isinstance(lst, FloorListener):
        return time.time() - t
    return wait_drained(lst, opts.quiet, opts.cap, t)[0]


def cost_run(lst, mode, n, gens, opts, tag):
    res = {"row": lst.row, "listener": lst.name}
    with Netns(tag) as ns, tempfile.TemporaryDirectory(prefix="cost-") as tmp:
        os.chmod(tmp, 0o755)
        for k, v in (("nf_conntrack_acct", 1), ("nf_conntrack_timestamp", 1),
                     ("nf_conntrack_events", 1),
                     ("nf_conntrack_udp_timeout", 600),
                     ("nf_conntrack_udp_timeout_stream", 600)):
            ns.sysctl(k, v)
        lst.start(ns, tmp)
        time.sleep(0.3)
        flows, secs = generate(ns, mode, n, gens)
        res["rate"] = flows / secs
        check(ns.conntrack_count() == flows, "the kernel tracks %d conntracks, "
              "expected %d" % (ns.conntrack_count(), flows))
        if lst.proc is not None:
            wait_cpu_idle(lst.proc.pid, opts.cap)
        t = time.time()
        ns.run(["conntrack", "-F"], timeout=300)
        res["drain_s"] = cost_drain(lst, opts, t)
        threads = thread_cpu_ns(lst.proc.pid) if lst.proc is not None else {}
        if lst.proc is not None:
            res["rss_kib"] = proc_status(lst.proc.pid, "VmHWM")
        rc, cpu, killed = lst.stop(ns)
        check(rc == 0 and not killed, "%s exited with %d" % (lst.name, rc))
        res["cpu_s"] = cpu
        res["records"], res["lost"], res["doubled"] = cost_tally(lst, mode, n)
        res["cpu_us_per_flow"] = cpu * 1e6 / flows if lst.proc else None
        # The main thread is the reader (ctd's loop); the flow store's
        # writer is a thread of its own. Read just before the stop.
        if lst.proc is not None and lst.proc.pid in threads:
            res["reader_us_per_flow"] = threads[lst.proc.pid] / 1e3 / flows
            res["threads"] = len(threads)
        if isinstance(lst, CtdListener):
            c = ctd_counters(lst)
            res["counters"] = {k: v for k, v in c.items()
                               if k.startswith(("nl_", "latency_", "events_",
                                                "out_store_"))}
            held = {k[10:]: v for k, v in c.items() if v and k in (
                "out_store_deferred", "out_store_retried",
                "out_store_store_waits", "out_store_store_grows",
                "out_store_spooled",
                "out_store_store_commits")}
            if held:
                log("  store: %s" % ", ".join("%s %d" % kv for kv in
                                              sorted(held.items())))
    return res


def cost_rows(opts, n):
    floor = getattr(opts, "floor_bin", None)
    rows = {
        "none": lambda: NoListener("default"),
        "floor": lambda: FloorListener("default", floor),
        "ctd": lambda: CtdListener("default", opts.ctd),
        "ctd-all": lambda: CtdListener("default", opts.ctd),
        "ctd-2k": lambda: CtdListener("2k", opts.ctd),
        "ctd-store": lambda: CtdListener("default", opts.ctd),
        "conntrackd": lambda: ConntrackdListener("default", True, 2 * n),
    }
    want = [s.strip() for s in opts.only.split(",") if s.strip()]
    for w in want:
        check(w in rows, "unknown row %r for --cost (%s)" % (w, ",".join(rows)))
    out = []
    for w in want:
        def make(w=w):
            lst = rows[w]()
            lst.row = w
            if w == "ctd-all":
                lst.args = lst.args + ["--subscribe", "all"]
                lst.name = "ctd --subscribe all"
            elif w == "ctd":
                lst.name = "ctd (subscribe auto: DESTROY only)"
            elif w == "ctd-2k":
                lst.name = "ctd, 2 KiB start buffer"
            elif w == "ctd-store":
                lst.store = True
                lst.name = "ctd with the flow store (store PATH)"
            elif w == "conntrackd":
                lst.name = "conntrackd (stats, reliable)"
            return lst
        out.append(make)
    return out


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def per_round_ratio(results, row, base, key):
    """Median over rounds of row's key / base's key in the same round."""
    by = {}
    for r in results:
        by.setdefault(r["round"], {})[r["row"]] = r
    ratios = []
    for rnd in by.values():
        a, b = rnd.get(row), rnd.get(base)
        if a and b and a.get(key) is not None and b.get(key):
            ratios.append(a[key] / b[key])
    return median(ratios)


def fmt_cost(results, mode):
    rows = []
    for r in results:
        if r["row"] not in rows:
            rows.append(r["row"])
    head = ("| listener | CPU µs per finished flow | main thread µs | × floor | ÷ by conntrackd's | "
            "connection rate /s | rate ÷ none | rate ÷ floor | lost | doubled | "
            "events per recvmmsg / per wakeup | event→record p50 / p99 |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        rs = [r for r in results if r["row"] == row and "error" not in r]
        failed = [r for r in results if r["row"] == row and "error" in r]
        if not rs:
            lines.append("| %s | FAILED: %s ||||||||||" % (row, failed[0]["error"]))
            continue
        cpu = median([r["cpu_us_per_flow"] for r in rs])
        main = median([r.get("reader_us_per_flow") for r in rs])
        vs_floor = per_round_ratio(results, row, "floor", "cpu_us_per_flow")
        vs_ctd = per_round_ratio(results, "conntrackd", row, "cpu_us_per_flow")
        rate = median([r["rate"] for r in rs])
        r_none = per_round_ratio(results, row, "none", "rate")
        r_floor = per_round_ratio(results, row, "floor", "rate")
        lost = [r["lost"] for r in rs if r["lost"] is not None]
        doubled = [r["doubled"] for r in rs if r["doubled"] is not None]
        batch, lat = "", ""
        cs = [r["counters"] for r in rs if r.get("counters")]
        if cs:
            msgs = sum(c.get("nl_messages", 0) for c in cs)
            calls = sum(c.get("nl_syscalls", 0) for c in cs)
            wakes = sum(c.get("nl_wakeups", 0) for c in cs)
            batch = "%.1f / %.1f" % (msgs / max(calls, 1), msgs / max(wakes, 1))
            tot = {k: sum(c.get(k, 0) for c in cs) for k in LAT_KEYS}
            p50, p99 = latency_pct(tot, 0.5), latency_pct(tot, 0.99)
            if p50:
                lat = "≤ %s / ≤ %s ms" % (p50, p99)
        f = lambda v, fmt: fmt % v if v is not None else "—"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            rs[0]["listener"], f(cpu, "%.2f"), f(main, "%.2f"), f(vs_floor, "%.2f"),
            f(vs_ctd, "%.1f"), f(rate, "%.0f"), f(r_none, "%.3f"),
            f(r_floor, "%.3f"), max(lost) if lost else "—",
            max(doubled) if doubled else "—", batch or "—", lat or "—"))
    return "\n".join(lines)


def build_floor(tmp, path):
    if path.endswith(".c"):
        exe = os.path.join(tmp, "floor")
        r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe, path, "-lmnl"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "cannot compile %s:\n%s" % (path, r.stderr))
        return exe
    check(os.access(path, os.X_OK), "floor reader %s is missing" % path)
    return path


def cost_main(opts):
    mode = opts.cost
    n = opts.flows or (20000 if mode == "mix" else (20000 if opts.quick else 250000))
    check(mode != "mix" or n <= 65536, "--flows for the mix: at most 65536")
    results = []
    with tempfile.TemporaryDirectory(prefix="cost-gen-") as gtmp, \
            HostSysctls(2 * n if mode == "mix" else n):
        os.chmod(gtmp, 0o755)
        gens = {"storm": build_flowgen(gtmp)}
        exe = os.path.join(gtmp, "mixgen")
        r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe,
                            os.path.join(HERE, "mixgen.c")],
                           capture_output=True, text=True)
        check(r.returncode == 0, "cannot compile mixgen.c:\n" + r.stderr)
        gens["mix"] = exe
        if "floor" in opts.only:
            opts.floor_bin = build_floor(gtmp, opts.floor)
        rows = cost_rows(opts, n)
        print("kernel %s, %d CPUs; ctd %s; conntrackd %s" % (
            os.uname().release, os.cpu_count(), version([opts.ctd, "-V"]),
            version(["conntrackd", "-v"])))
        print("%s: %s; %d rounds" % (mode, "%d TCP connections + %d UDP flows "
              "with a reply each, then conntrack -F" % (n, n) if mode == "mix"
              else "%d one-packet UDP flows, then conntrack -F" % n, opts.rounds))
        for rnd in range(opts.rounds):
            for i, make in enumerate(rows):
                lst = make()
                t = time.time()
                try:
                    r = cost_run(lst, mode, n, gens, opts, "c%d%d" % (rnd, i))
                except (Fail, subprocess.TimeoutExpired, OSError, ValueError) as e:
                    r = {"row": lst.row, "listener": lst.name,
                         "error": str(e).splitlines()[0][:200]}
                    log("  FAILED: %s" % e)
                r["round"] = rnd
                results.append(r)
                log("[round %d] %s: rate %s/s, CPU %s µs/flow (main thread %s), "
                    "peak RSS %s MiB, lost %s, doubled %s, %.0fs" % (
                                           rnd + 1, lst.row, "%.0f" % r["rate"]
                                           if "rate" in r else "-",
                                           "%.2f" % r["cpu_us_per_flow"]
                                           if r.get("cpu_us_per_flow") else "-",
                                           "%.2f" % r["reader_us_per_flow"]
                                           if r.get("reader_us_per_flow") else "-",
                                           "%.1f" % (r["rss_kib"] / 1024.0)
                                           if r.get("rss_kib") else "-",
                                           r.get("lost"), r.get("doubled"),
                                           time.time() - t))
    print(fmt_cost(results, mode))
    print()
    print("CPU = user+sys of the listener (wait4 rusage) over its whole run / "
          "finished flows; main thread: ctd's loop (the reader) alone, from "
          "/proc/PID/task/PID/schedstat just before the stop (the flow store's "
          "writer is another thread); medians over rounds; ratios are medians of the "
          "per-round ratios. Rate: flows the generator made per second while "
          "the listener listened. Lost/doubled: the worst round. Latency: the "
          "kernel's event stamp (CTA_TIMESTAMP_EVENT) to the read that brought "
          "the DESTROY, ctd's buckets, all rounds pooled.")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"mode": mode, "flows": n, "rounds": opts.rounds,
                       "kernel": os.uname().release, "results": results}, f,
                      indent=1)
    return 1 if any("error" in r for r in results) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--ctd", default=os.path.join(ROOT, "build-bench", "ctd"),
                    help="ctd binary (default build-bench/ctd)")
    ap.add_argument("--flows", type=int, default=None,
                    help="flows per run (default 250000; --quick: 20000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20000 flows, shorter waits")
    ap.add_argument("--only", default="ctd,conntrackd,ulogd,conntrack",
                    help="listeners to run (default all: ctd,conntrackd,ulogd,conntrack)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--quiet", type=float, default=None,
                    help="seconds without new records that end a run's wait "
                    "(default 5; --quick: 1.5)")
    ap.add_argument("--cap", type=float, default=None,
                    help="at most this many seconds of waiting after the flush "
                    "(default 120; --quick: 10)")
    ap.add_argument("--cost", choices=("storm", "mix"),
                    help="cost per finished flow and connection rate (see above)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="--cost: rounds (default 5)")
    ap.add_argument("--floor", default=os.path.join(os.path.dirname(ROOT), "shared",
                                                    "bench", "floor.c"),
                    help="--cost: the floor reader, its .c or a binary")
    opts = ap.parse_args()
    if opts.cost:
        if opts.only == ap.get_default("only"):
            opts.only = ("none,floor,ctd,ctd-all,conntrackd" if opts.cost == "mix"
                         else "none,floor,ctd,ctd-all,ctd-2k,conntrackd")
        opts.quiet = opts.quiet if opts.quiet is not None else 2
        opts.cap = opts.cap if opts.cap is not None else 120
        os.environ.pop("CTD_TEST_WRAPPER", None)
        try:
            check(os.geteuid() == 0, "needs root (network namespaces)")
            return cost_main(opts)
        except Fail as e:
            print("storm: %s" % e, file=sys.stderr)
            return 1
    n = opts.flows or (20000 if opts.quick else 250000)
    opts.quiet = opts.quiet if opts.quiet is not None else (1.5 if opts.quick else 5)
    opts.cap = opts.cap if opts.cap is not None else (10 if opts.quick else 120)
    os.environ.pop("CTD_TEST_WRAPPER", None)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    results = []
    t0 = time.time()
    try:
        check(os.geteuid() == 0, "needs root (network namespaces)")
        check(1 <= n <= 4000000, "--flows must be 1..4000000")
        for tool, hint in (("ip", "iproute2"), ("nft", "nftables"),
                           ("conntrack", "apt-get install conntrack"),
                           ("cc", "a C compiler")):
            need(tool, hint)
        runs = plan(opts, n)
        header = ["kernel %s, %d CPUs" % (os.uname().release, os.cpu_count()),
                  "ctd: %s (%s)" % (version([opts.ctd, "-V"]), opts.ctd),
                  "conntrackd: %s" % version(["conntrackd", "-v"]),
                  "ulogd: %s" % version(["ulogd", "-V"]),
                  "conntrack: %s" % version(["conntrack", "--version"]),
                  "storm: %d one-packet UDP flows per run; wait ends after %gs "
                  "without new records, at most %gs after the flush"
                  % (n, opts.quiet, opts.cap)]
        for h in header:
            print(h)
        print(flush=True)
        with tempfile.TemporaryDirectory(prefix="storm-gen-") as gtmp, HostSysctls(n):
            os.chmod(gtmp, 0o755)
            flowgen = build_flowgen(gtmp)
            for i, make in enumerate(runs):
                lst = make()
                log("[%d/%d] %s, %s ..." % (i + 1, len(runs), lst.name, lst.buffer))
                t = time.time()
                try:
                    r = run_one(lst, n, flowgen, opts, "sb%d" % i)
                except (Fail, subprocess.TimeoutExpired, OSError, ValueError) as e:
                    r = {"listener": lst.name, "buffer": lst.buffer, "flows": n,
                         "error": str(e).splitlines()[0][:200], "detail": str(e)}
                    log("  FAILED: %s" % e)
                else:
                    log("  %d records, lost %.2f%%, %.2f µs/event, %.1fs"
                        % (r["records"], r["lost_pct"], r["cpu_us_per_event"],
                           time.time() - t))
                r["run_s"] = time.time() - t
                results.append(r)
    except Fail as e:
        print("storm: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("storm: interrupted", file=sys.stderr)
        return 130
    print(fmt_table(results))
    print()
    print("Notes per run (in table order):")
    print(fmt_notes(results))
    print()
    print("lost % = flows without any record / flows; doubled = flows with more "
          "than one record; CPU = user+sys of the listener process over its whole "
          "run (wait4 rusage) / (2 x flows) events; peak RSS = VmHWM before stop.")
    print("total time %.0fs" % (time.time() - t0))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"flows": n, "quiet": opts.quiet, "cap": opts.cap,
                       "kernel": os.uname().release, "results": results}, f, indent=1)
    failed = [r for r in results if "error" in r]
    if failed:
        print("storm: %d run(s) failed: %s" % (len(failed), "; ".join(
            "%s/%s: %s" % (r["listener"], r["buffer"], r["error"]) for r in failed)),
            file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

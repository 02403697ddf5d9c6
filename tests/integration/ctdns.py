"""Shared plumbing for ctd's kernel integration tests.

Each test runs ctd and its traffic inside a network namespace it creates
and always removes. Python 3.11 has no os.setns, so the namespace is
entered per command with `ip netns exec`; generators are small Python
programs started the same way. Every wait is bounded. Anything that stops
a test from running is an error (Fail), never a skip.
"""
import argparse
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC = os.path.join(HERE, "traffic.py")

NFT_TRACK_LO = ("add table inet f; add chain inet f c "
                "{ type filter hook output priority 0; }; "
                "add rule inet f c ct state new counter")
# The tests' IPv4 NAT: 127.0.0.10:7000 DNATed to 127.0.0.1:5555, and
# what goes to 127.0.0.1:5556 SNATed to 127.0.0.7:30000-39999.
NAT4 = ("add table ip n; "
        "add chain ip n out { type nat hook output priority -100; }; "
        "add chain ip n post { type nat hook postrouting priority 100; }; "
        "add rule ip n out ip daddr 127.0.0.10 udp dport 7000 "
        "dnat to 127.0.0.1:5555; "
        "add rule ip n post ip daddr 127.0.0.1 udp dport 5556 "
        "snat to 127.0.0.7:30000-39999; ")


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def identity(counters, name, made=None, held=0):
    """Output `name`'s flow records obey records = delivered + failed +
    held (failed = the sum of its reasons), with `held` held now (0 at the
    end of a test; a ctd stopped with records spooled holds them); with `made`,
    the records this run made (records less those carried over from a
    previous run's spool or write-ahead log) are exactly that many.
    Returns the output's counters without the out_<name>_ prefix."""
    pre = "out_%s_" % name
    c = {k[len(pre):]: v for k, v in counters.items() if k.startswith(pre)}
    check("records" in c, "no counters for output %s" % name)
    reasons = sum(c.get("failed_" + r, 0)
                  for r in ("render", "spool", "shutdown", "output"))
    check(c["records"] == c["delivered"] + c["failed"] + c["held"] and
          c["failed"] == reasons and c["held"] == held,
          "%s: records %d != delivered %d + failed %d (by reason %d) + "
          "held %d, or held not %d" % (name, c["records"], c["delivered"],
                                       c["failed"], reasons, c["held"], held))
    if made is not None:
        check(c["records"] - c["carried"] == made,
              "%s: %d records (%d carried over) for %d flows made"
              % (name, c["records"], c["carried"], made))
    return c


def main(test, arguments=None):
    """Every test's main(): parses --ctd (and what `arguments` adds to the
    parser), runs test(args); a Fail prints "FAIL: reason" and exits 1."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctd", required=True, help="the ctd binary to test")
    if arguments:
        arguments(ap)
    args = ap.parse_args()
    try:
        test(args)
    except Fail as e:
        print("FAIL:", e)
        sys.exit(1)
    sys.exit(0)


@contextlib.contextmanager
def sandbox(tag, **tmp):
    """A Netns and a temporary directory, both removed after; with KEEP
    set in the environment the directory stays (and is named)."""
    with Netns(tag) as ns, tempfile.TemporaryDirectory(**tmp) as path:
        if os.environ.get("KEEP"):
            path = tempfile.mkdtemp(prefix="ctd%s-" % tag, **tmp)
            print("keeping", path)
        yield ns, path


class Netns:
    """A throw-away namespace with loopback up and conntrack tracking it."""

    def __init__(self, tag):
        self.name = "ctd%s-%d" % (tag, os.getpid())
        self.procs = []

    def __enter__(self):
        check(os.geteuid() == 0, "kernel tests need root (network namespaces)")
        r = subprocess.run(["ip", "netns", "add", self.name],
                           capture_output=True, text=True)
        check(r.returncode == 0, "cannot create namespace %s: %s"
              % (self.name, r.stderr.strip()))
        self.run("ip link set lo up")
        self.run(["nft", NFT_TRACK_LO])
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        pids = subprocess.run(["ip", "netns", "pids", self.name],
                              capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", self.name])
        return False

    def argv(self, cmd):
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        return ["ip", "netns", "exec", self.name] + cmd

    def run(self, cmd, timeout=60):
        r = subprocess.run(self.argv(cmd), capture_output=True, text=True,
                           timeout=timeout)
        check(r.returncode == 0, "%s failed (%d): %s"
              % (cmd, r.returncode, r.stderr.strip()))
        return r.stdout

    def sysctl(self, name, value=None):
        path = "/proc/sys/net/netfilter/" + name
        if value is not None:
            self.run("echo %s > %s" % (value, path))
        return self.run(["cat", path]).strip()

    def conntrack_count(self):
        return int(self.run(["conntrack", "-C"]).strip())

    def start(self, cmd, stdout, stderr, **popen):
        p = subprocess.Popen(self.argv(cmd), stdout=stdout, stderr=stderr,
                             **popen)
        self.procs.append(p)
        return p

    def traffic(self, *sets, timeout=120, **kw):
        """Makes the flow sets (see flows()) and returns the ground truth:
        a list of Flow, one per flow made."""
        t = Traffic(self, *sets, **kw)
        t.wait(timeout)
        return list(t.flows())


def flows(proto, count, **kw):
    """One flow set for traffic.py (whose docstring lists the keys)."""
    s = dict(proto=proto, count=count, **kw)
    if s.get("listen") is not None and s["listen"] is not False:
        s["listen"] = list(s["listen"])
    return s


class Flow(collections.namedtuple("Flow", "tag proto src sport dst dport "
                                  "packets bytes reply_packets reply_bytes "
                                  "peer captured")):
    """One flow traffic.py made: its tuple as the client addressed it, the
    packets and L3 bytes it sent each way (None for TCP), the peer the
    server saw and, with a capture, what the capture counted."""

    @property
    def key(self):
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    @property
    def counts(self):
        return (self.packets, self.bytes, self.reply_packets, self.reply_bytes)


class Traffic:
    """traffic.py running in a namespace. progress() reads the counts it
    prints (sets with `every`); wait() returns its summary; flows()
    iterates the ground truth it wrote (it may be millions of flows)."""

    def __init__(self, ns, *sets, capture=False, truth_dir=None):
        fd, self.truth = tempfile.mkstemp(prefix="truth-", dir=truth_dir)
        os.close(fd)
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = ["python3", TRAFFIC, "--truth", self.truth] + \
            (["--capture"] if capture else []) + [json.dumps(sets)]
        self.proc = ns.start(cmd, subprocess.PIPE, self.err, text=True)
        self.summary = None

    def progress(self):
        """The next count traffic.py printed, or None at its end."""
        line = self.proc.stdout.readline()
        return int(line) if line else None

    def wait(self, timeout=120):
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            os.unlink(self.truth)
            raise Fail("traffic.py ran longer than %d s" % timeout)
        self.err.seek(0)
        if self.proc.returncode != 0:
            os.unlink(self.truth)
            raise Fail("traffic.py failed (%d): %s"
                       % (self.proc.returncode, self.err.read().strip()[-2000:]))
        with open(self.truth, "rb") as f:
            f.seek(max(0, os.path.getsize(self.truth) - 4096))
            self.summary = json.loads(f.read().splitlines()[-1])
        return self.summary

    def flows(self):
        try:
            with open(self.truth) as f:
                for line in f:
                    row = json.loads(line)
                    if isinstance(row, list):
                        yield Flow._make(row + [None] * (12 - len(row)))
        finally:
            os.unlink(self.truth)


# A second reliable DESTROY listener with a 1 KiB buffer that never reads:
# each DESTROY that does not fit stays on the kernel's dying list and is
# broadcast again, to every listener, until this socket closes.
_SLOW = r"""
import socket, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.bind((0, 1 << 2))                                        # NFNLGRP_CONNTRACK_DESTROY
s.setsockopt(270, 4, 1)                                    # NETLINK_BROADCAST_ERROR
print("ready", s.getsockname()[0], flush=True)
sys.stdin.readline()
s.close()
"""


class SlowListener:
    """Makes the kernel re-send DESTROYs in ns while it is open."""

    def __init__(self, ns):
        self.proc = subprocess.Popen(ns.argv(["python3", "-c", _SLOW]),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        ns.procs.append(self.proc)
        ready = self.proc.stdout.readline().split()
        check(len(ready) == 2 and ready[0] == "ready",
              "the slow listener did not start")
        self.portid = int(ready[1])     # its line in /proc/net/netlink

    def close(self):
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        check(self.proc.wait(timeout=10) == 0, "the slow listener failed")


class Ctd:
    """ctd running in a namespace, with its stderr log and JSON output."""

    def __init__(self, ns, binary, workdir, args, json=None, tag="ctd",
                 env=None, listen_fd=None, output_arg=True, listen_fds=None):
        """listen_fd: a ctnetlink socket to hand over as systemd does
        (fd 3, LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=ctnetlink);
        listen_fds: {name: fd}, several handed over the same way (3, 4,
        ... in the order given)."""
        self.json = json or os.path.join(workdir, "flows.json")
        self.log = os.path.join(workdir, tag + ".log")
        self.out = os.path.join(workdir, tag + ".out")
        self.spool = os.path.join(workdir, "spool")
        wrapper = os.environ.get("CTD_TEST_WRAPPER", "").split()
        self.control = os.path.join(workdir, tag + ".ctl")
        cmd = wrapper + [binary, "-v"] + \
            (["-o", self.json] if output_arg else []) + \
            ["--spool-dir", self.spool, "--control", self.control] + \
            ([] if "--store" in args else ["--store", "none"]) + args
        popen = {"env": env}
        if listen_fd is not None:
            cmd = ["sh", "-c", 'exec 3<&%d %d<&-; LISTEN_PID=$$ '
                   'LISTEN_FDS=1 LISTEN_FDNAMES=ctnetlink exec "$0" "$@"'
                   % (listen_fd, listen_fd)] + cmd
            popen["pass_fds"] = (listen_fd,)
        if listen_fds:
            names, fds = list(listen_fds), list(listen_fds.values())
            moves = " ".join("%d<&%d" % (3 + i, fd + 100)
                             for i, fd in enumerate(fds))
            up = " ".join("%d<&%d %d<&-" % (fd + 100, fd, fd) for fd in fds)
            down = " ".join("%d<&-" % (fd + 100) for fd in fds)
            cmd = ["bash", "-c", 'exec %s; exec %s %s; LISTEN_PID=$$ '
                   'LISTEN_FDS=%d LISTEN_FDNAMES=%s exec "$0" "$@"'
                   % (up, moves, down, len(fds), ":".join(names))] + cmd
            popen["pass_fds"] = tuple(fds)
        self.binary = binary
        self.proc = ns.start(cmd, open(self.out, "w"), open(self.log, "w"),
                             **popen)
        self.wait_log("listening", 10)

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, word, secs):
        end = time.time() + secs
        while time.time() < end:
            if word in self.log_text():
                return
            check(self.proc.poll() is None, "ctd exited early:\n" + self.log_text())
            time.sleep(0.05)
        raise Fail("ctd never logged %r:\n%s" % (word, self.log_text()))

    def count_records(self):
        try:
            with open(self.json, "rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def wait_records(self, n, secs):
        """Polls until n records are written; returns seconds waited."""
        start = time.time()
        while time.time() - start < secs:
            if self.count_records() >= n:
                return time.time() - start
            check(self.proc.poll() is None, "ctd died:\n" + self.log_text())
            time.sleep(0.1)
        return None

    def peak_rss_kib(self):
        """VmHWM of ctd itself (the child of `ip netns exec`, which execs)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """SIGTERM, expect exit 0, return the counters ctd -v printed."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise Fail("ctd did not exit within 15 s of SIGTERM")
        check(rc == 0, "ctd exited with %d:\n%s" % (rc, self.log_text()))
        counters = {}
        for line in self.log_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counters[parts[0]] = int(parts[1])
        check("events_destroy" in counters, "no counters in ctd's log")
        return counters

    def query(self, *args, user=None):
        """ctd -s/-l against this ctd's control socket; returns stdout."""
        cmd = [self.binary, "--control", self.control] + list(args)
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                   "--clear-groups"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "ctd %s failed (%d): %s"
              % (" ".join(args), r.returncode, r.stderr.strip()))
        return r.stdout

    def stats(self):
        """ctd -s all: every counter of the running ctd."""
        return {p[0]: int(p[1]) for p in (l.split() for l in
                                          self.query("-s", "all").splitlines())
                if len(p) == 2 and p[1].isdigit()}

    def wait_stats(self, what, cond, secs, show="out_"):
        """Polls ctd -s until cond(counters); fails naming what it waited
        for, with the counters starting with show."""
        end = time.time() + secs
        while True:
            st = self.stats()
            if cond(st):
                return st
            if time.time() > end:
                raise Fail("ctd never had %s: %s" % (what, {
                    k: v for k, v in st.items() if k.startswith(show)}))
            time.sleep(0.25)

    def records(self):
        out = []
        with open(self.json) as f:
            for i, line in enumerate(f, 1):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise Fail("line %d of %s is not JSON: %s" % (i, self.json, e))
        return out


class Manager:
    """Plays the service manager: owns NOTIFY_SOCKET, keeps every message
    ctd sends and the descriptor it puts in the fd store (FDSTORE=1), as
    systemd does, and can stop reading to fill its queue."""

    def __init__(self, path):
        import array
        import socket
        import threading
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs, self.stored, self.fdstores = [], None, 0
        self.all = []       # (time, message), never cleared
        self.lock = threading.Condition()
        self.reading = True
        self._array, self._socket = array, socket
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def env(self, **extra):
        return dict(os.environ, NOTIFY_SOCKET=self.path, **extra)

    def _run(self):
        s = self._socket
        while True:
            with self.lock:
                while not self.reading:
                    self.lock.wait()
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, s.CMSG_SPACE(16))
            except OSError:
                return
            with self.lock:
                self._take(data.decode(errors="replace"), anc)
                self.lock.notify_all()

    def _take(self, msg, anc):
        self.msgs.append(msg)
        self.all.append((time.time(), msg[:20]))
        for level, kind, payload in anc:
            if level != self._socket.SOL_SOCKET or kind != self._socket.SCM_RIGHTS:
                continue
            fds = self._array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % 4])
            for fd in fds:
                if "FDSTORE=1" in msg and self.stored is None:
                    self.stored = fd
                    self.fdstores += 1
                else:
                    if "FDSTORE=1" in msg:
                        self.fdstores += 1
                    os.close(fd)

    def wait(self, word, secs):
        """The first message since the last clear() containing word."""
        end = time.time() + secs
        with self.lock:
            while True:
                for m in self.msgs:
                    if word in m:
                        return m
                left = end - time.time()
                check(left > 0, "ctd never sent %r to NOTIFY_SOCKET (got %s)"
                      % (word, self.msgs[-5:]))
                self.lock.wait(left)

    STATES = ("READY=1", "RELOADING=1", "STOPPING=1")

    def count(self, word):
        with self.lock:
            return sum(word in m for m in self.msgs)

    def _last_state(self):
        said = [m for m in self.msgs if any(s in m for s in self.STATES)]
        return said[-1] if said else ""

    def wait_reloaded(self, n, secs):
        """Until n re-execs since the last clear() said RELOADING=1 and
        the last state said since is READY=1 (a ctd that re-executes again
        before it was ready never says READY=1; its successor does)."""
        end = time.time() + secs
        with self.lock:
            while (sum("RELOADING=1" in m for m in self.msgs) < n or
                   "READY=1" not in self._last_state()):
                left = end - time.time()
                check(left > 0, "expected %d RELOADING=1 and READY=1 last "
                      "(got %s; all %s; reader alive %s)"
                      % (n, self.msgs[-6:], self.all[-6:],
                         self.thread.is_alive()))
                self.lock.wait(left)

    def clear(self):
        with self.lock:
            self.msgs = []

    def pause(self, paused):
        with self.lock:
            self.reading = not paused
            self.lock.notify_all()

    def close(self):
        self.pause(False)
        self.sock.close()
        if self.stored is not None:
            os.close(self.stored)

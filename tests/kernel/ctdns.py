"""Shared plumbing for ctd's kernel integration tests.

Each test runs ctd and its traffic inside a network namespace it creates
and always removes. Python 3.11 has no os.setns, so the namespace is
entered per command with `ip netns exec`; generators are small Python
programs started the same way. Every wait is bounded. Anything that stops
a test from running is an error (Fail), never a skip.
"""
import json
import os
import signal
import subprocess
import time

NFT_TRACK_LO = ("add table inet f; add chain inet f c "
                "{ type filter hook output priority 0; }; "
                "add rule inet f c ct state new counter")


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


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


class Ctd:
    """ctd running in a namespace, with its stderr log and JSON output."""

    def __init__(self, ns, binary, workdir, args, json=None, tag="ctd",
                 env=None, listen_fd=None, output_arg=True):
        """listen_fd: a ctnetlink socket to hand over as systemd does
        (fd 3, LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=ctnetlink)."""
        self.json = json or os.path.join(workdir, "flows.json")
        self.log = os.path.join(workdir, tag + ".log")
        self.out = os.path.join(workdir, tag + ".out")
        self.spool = os.path.join(workdir, "spool")
        wrapper = os.environ.get("CTD_TEST_WRAPPER", "").split()
        self.control = os.path.join(workdir, tag + ".ctl")
        cmd = wrapper + [binary, "-v"] + \
            (["-o", self.json] if output_arg else []) + \
            ["--spool-dir", self.spool, "--control", self.control] + args
        popen = {"env": env}
        if listen_fd is not None:
            cmd = ["sh", "-c", 'exec 3<&%d %d<&-; LISTEN_PID=$$ '
                   'LISTEN_FDS=1 LISTEN_FDNAMES=ctnetlink exec "$0" "$@"'
                   % (listen_fd, listen_fd)] + cmd
            popen["pass_fds"] = (listen_fd,)
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

    def records(self):
        out = []
        with open(self.json) as f:
            for i, line in enumerate(f, 1):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise Fail("line %d of %s is not JSON: %s" % (i, self.json, e))
        return out

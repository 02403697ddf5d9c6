#!/usr/bin/env python3
"""ctd under a real systemd: a Debian 12 container booted with
systemd-nspawn (systemd as PID 1, a network namespace of its own), this
build installed in it with `cmake --install` (DESTDIR = the container's
root) and the unit CMake generated from conf/ctd.service.in enabled, so
it starts at boot with the shipped configuration.

The root is made once with debootstrap (Debian's mirror, or
CTD_DEBIAN_MIRROR): minbase, systemd and the packages of the libraries
ctd links (found with ldd and dpkg -S on this machine, itself Debian 12),
kept under the build tree and reused while that list stays the same.
Each run removes ctd's state, logs and the journal before booting.

The test drives the container from the host: systemctl and journalctl
through `nsenter -a` into the container's leader (systemd-run -M needs a
registered machine), traffic.py and conntrack through `nsenter -n` into
its network namespace, flows.json read through the root directory. Four
steps, each with flows ending meanwhile: 10,000 UDP flows are made,
then 6,000 more at 2,000 a second with `conntrack -F` after every 100 of
them; the step's action runs as soon as the first flush (which ends the
first 10,000) has returned, so ctd is reading their DESTROYs when it
comes and flows keep ending for 3 s after:

  restart  `systemctl restart ctd`: a new ctd takes the ctnetlink socket
           from the fd store ("took over the ctnetlink socket").
  kill     `systemctl kill -s KILL ctd`: Restart=on-failure starts a new
           ctd, which takes the socket from the fd store and warns at
           priority warning that the previous one did not stop cleanly.
  usr2     `systemctl kill -s USR2 ctd`: ctd re-executes in place (same
           main PID); the unit never enters deactivating, nothing is
           killed, no restart is counted.
  reload   `systemctl reload ctd`: ExecReload checks the configuration
           and sends SIGHUP; same main PID.

After each step: every flow has exactly one record ended by "destroy" (a
SIGKILL may lose at most the receive batch being handled: 64), no line
is torn, the unit is active (running) with one fd in its store, and the
journal never says "Cannot store more fds than FileDescriptorStoreMax".
`journalctl -u ctd -p warning` must hold ctd's warnings (the unclean
restart) and none of its info lines: ctd marks each line's priority.

The conntrackd log path is migrated as docs/migrating-from-conntrackd.md
says: `conntrackd-log /var/log/conntrackd-stats.log` in the installed
ctd.conf and a drop-in with `ReadWritePaths=` for it. After each step
that file has one line per flow the JSON file has (each output may lose
its own batch in hand at the SIGKILL: 64), none twice.

If the container cannot be made or cannot boot, the test fails with the
reason; it never skips.

Usage: test_systemd.py --ctd PATH --build BUILD_DIR
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import ctdns
from ctdns import Fail, check, flows

BULK = 10000
PACED = 6000
RATE = 2000
EVERY = 100
PER_KILL = 64
STEPS = ("restart", "kill", "usr2", "reload")
MIRROR = os.environ.get("CTD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
MARKER = ".ctd-systemd-root"


def run(cmd, timeout=120, ok=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    check(not ok or r.returncode == 0, "%s failed (%d): %s"
          % (" ".join(cmd), r.returncode, (r.stderr or r.stdout).strip()[-2000:]))
    return r


def runtime_packages(binary):
    """The Debian packages of the libraries the binary links."""
    pkgs = set()
    for line in run(["ldd", binary]).stdout.splitlines():
        parts = line.split("=>")
        if len(parts) != 2 or not parts[1].split():
            continue
        lib = parts[1].split()[0]
        for path in (lib, os.path.realpath(lib), "/usr" + lib):
            r = run(["dpkg", "-S", path], ok=False)
            if r.returncode == 0:
                pkgs.add(r.stdout.split(":")[0])
                break
        else:
            raise Fail("no Debian package owns %s (ldd %s)" % (lib, binary))
    return sorted(pkgs)


def make_root(root, binary):
    """A Debian 12 root that boots systemd and runs the binary; made once."""
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg"):
        check(shutil.which(tool), "%s missing: apt-get install debootstrap "
              "systemd-container util-linux" % tool)
    want = " ".join(["systemd"] + runtime_packages(binary))
    try:
        with open(os.path.join(root, MARKER)) as f:
            if f.read().strip() == want:
                return "cached"
    except FileNotFoundError:
        pass
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log = root + ".debootstrap.log"
    start = time.time()
    with open(log, "w") as out:
        r = subprocess.run(["debootstrap", "--variant=minbase",
                            "--include=" + want.replace(" ", ","), "bookworm",
                            tmp, MIRROR], stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-2000:]
        raise Fail("debootstrap from %s failed (%d):\n%s" % (MIRROR, r.returncode, tail))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    with open(os.path.join(root, MARKER), "w") as f:
        f.write(want + "\n")
    return "debootstrapped in %.0f s" % (time.time() - start)


def install(root, build):
    """This build into the root as `make install` would put it, the unit
    enabled; ctd's state, logs and the journal from earlier runs gone."""
    for d in ("var/log/ctd", "var/lib/ctd", "var/lib/private/ctd",
              "var/log/journal"):
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=root))
    # The unit went where the build's prefix puts units; systemd must
    # find it there (/usr/local/lib/systemd/system for the default).
    r = run(["systemctl", "--root=" + root, "enable", "ctd.service"], ok=False)
    check(r.returncode == 0, "cannot enable the installed unit (is the "
          "install prefix's lib/systemd/system in systemd's unit path?): %s"
          % r.stderr.strip())


CTLOG = "var/log/conntrackd-stats.log"


def migrate_conntrackd_log(root):
    """conntrackd's LogFile path kept, as the migration guide says: the
    setting in the installed ctd.conf, and a drop-in that lets the unit
    write there (its sandbox is read-only outside ReadWritePaths)."""
    confs = [os.path.join(root, d, "ctd/ctd.conf")
             for d in ("etc", "usr/local/etc")]
    conf = next((c for c in confs if os.path.exists(c)), None)
    check(conf, "no ctd.conf installed in %s" % confs)
    with open(conf) as f:
        lines = [l for l in f if not l.startswith("conntrackd-log ")]
    lines.append("conntrackd-log /%s\n" % CTLOG)
    with open(conf, "w") as f:
        f.writelines(lines)
    log = os.path.join(root, CTLOG)
    if os.path.exists(log):
        os.unlink(log)
    open(log, "w").close()
    dropin = os.path.join(root, "etc/systemd/system/ctd.service.d")
    os.makedirs(dropin, exist_ok=True)
    with open(os.path.join(dropin, "conntrackd-log.conf"), "w") as f:
        f.write("[Service]\nReadWritePaths=/%s\n" % CTLOG)


def ctlog_ports(root, src):
    """Source port -> lines of conntrackd-stats.log to port 5555 from src."""
    seen = {}
    pat = re.compile(r"src=%s dst=\S+ sport=(\d+) dport=5555 " % re.escape(src))
    with open(os.path.join(root, CTLOG)) as f:
        for line in f:
            m = pat.search(line)
            if m:
                seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
    return seen


def check_ctlog(root, name, src, json_ports):
    """The conntrackd log has the JSON file's flows, each once."""
    allowed = PER_KILL if name == "kill" else 0
    got = wait_stable(lambda: len(ctlog_ports(root, src)), len(json_ports), 30)
    seen = ctlog_ports(root, src)
    doubled = [p for p, n in seen.items() if n > 1]
    check(not doubled and len(set(json_ports) ^ set(seen)) <= allowed,
          "%s: conntrackd-stats.log has %d flows of %d in the JSON file, %d "
          "twice" % (name, len(seen), len(json_ports), len(doubled)))
    return got


class Net(ctdns.Netns):
    """The container's network namespace, entered with nsenter."""

    def __init__(self, pid):
        self.pid, self.procs = pid, []

    def argv(self, cmd):
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        return ["nsenter", "-t", str(self.pid), "-n"] + cmd


class Container:
    """systemd-nspawn -b: systemd as PID 1 in its own namespaces."""

    def __init__(self, root, workdir):
        self.root = root
        self.log = os.path.join(workdir, "nspawn.log")
        self.name = "ctdsd%d" % os.getpid()
        cmd = ["systemd-nspawn", "--register=no", "--keep-unit", "-b",
               "-D", root, "--private-network", "-M", self.name,
               "--console=read-only"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        self.net = Net(None)
        try:
            self.leader = self._find_leader(30)
        except Fail:
            self.stop()
            raise
        self.net.pid = self.leader

    def boot_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-3000:]

    def _find_leader(self, secs):
        """The container's PID 1: nspawn's child whose last NSpid is 1."""
        end = time.time() + secs
        while time.time() < end:
            if self.proc.poll() is not None:
                raise Fail("systemd-nspawn exited with %d before the container "
                           "booted:\n%s" % (self.proc.returncode, self.boot_log()))
            for pid in os.listdir("/proc"):
                if pid.isdigit() and self._is_leader(pid):
                    return int(pid)
            time.sleep(0.1)
        raise Fail("no container PID 1 under systemd-nspawn after %d s:\n%s"
                   % (secs, self.boot_log()))

    def _is_leader(self, pid):
        try:
            with open("/proc/%s/status" % pid) as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            return False
        return (status.get("PPid", "").strip() == str(self.proc.pid) and
                status.get("NSpid", "").split()[-1:] == ["1"])

    def sh(self, *cmd, ok=True, timeout=60):
        return run(["nsenter", "-t", str(self.leader), "-a"] + list(cmd),
                   ok=ok, timeout=timeout)

    def wait_booted(self, secs):
        end = time.time() + secs
        state = ""
        while time.time() < end:
            check(self.proc.poll() is None, "the container stopped while "
                  "booting:\n" + self.boot_log())
            state = self.sh("systemctl", "is-system-running", ok=False).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.3)
        raise Fail("the container did not finish booting in %d s (%s):\n%s"
                   % (secs, state, self.boot_log()))

    def show(self):
        out = self.sh("systemctl", "show", "ctd", "-p", "ActiveState,SubState,"
                      "MainPID,NRestarts,NFileDescriptorStore,Result").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def cursor(self):
        out = self.sh("journalctl", "-n", "0", "--show-cursor", "-q").stdout
        return out.strip().split("cursor: ", 1)[1]

    def journal(self, *args):
        return self.sh("journalctl", "--no-pager", "-o", "cat", *args).stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)    # nspawn: power off
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in self.net.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


class Poller(threading.Thread):
    """Samples the unit's state while a step runs."""

    def __init__(self, container):
        super().__init__(daemon=True)
        self.c, self.seen, self.stopping = container, [], False

    def run(self):
        while not self.stopping:
            try:
                s = self.c.show()
            except Fail as e:          # the container went away
                self.seen.append(str(e))
                return
            state = "%s (%s)" % (s.get("ActiveState"), s.get("SubState"))
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
            time.sleep(0.01)

    def finish(self):
        self.stopping = True
        self.join(10)
        return self.seen


def records(path, src):
    """(src port -> records to port 5555 from src, lines not JSON)."""
    seen, broken = {}, 0
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    broken += 1
                    continue
                o = r.get("orig", {})
                if o.get("dport") == 5555 and o.get("src") == src:
                    seen.setdefault(o["sport"], []).append(r.get("end_reason"))
    except FileNotFoundError:
        pass
    return seen, broken


def wait_stable(read, want, secs):
    """Polls read() until it reaches want or stays the same for 3 s."""
    last, since, end = None, time.time(), time.time() + secs
    while time.time() < end:
        now = read()
        if now >= want:
            return now
        if now != last:
            last, since = now, time.time()
        elif time.time() - since > 3:
            return now
        time.sleep(0.2)
    return last


def wait_running(c, secs):
    end = time.time() + secs
    while time.time() < end:
        s = c.show()
        if (s["ActiveState"], s["SubState"]) == ("active", "running"):
            return s
        time.sleep(0.1)
    raise Fail("ctd.service is %s (%s), result %s, %d s after the step:\n%s"
               % (s["ActiveState"], s["SubState"], s["Result"], secs,
                  c.journal("-u", "ctd", "-n", "30")))


def act(c, name):
    cmd = {"restart": ["systemctl", "restart", "ctd"],
           "kill": ["systemctl", "kill", "-s", "KILL", "ctd"],
           "usr2": ["systemctl", "kill", "-s", "USR2", "ctd"],
           "reload": ["systemctl", "reload", "ctd"]}[name]
    start = time.time()
    r = c.sh(*cmd, ok=False)
    check(r.returncode == 0, "%s failed (%d): %s\n%s"
          % (" ".join(cmd), r.returncode, r.stderr.strip(),
             c.journal("-n", "15")))
    return time.time() - start


def step(c, root, name, n):
    """One action with flows ending meanwhile; returns its numbers."""
    src = "127.0.0.%d" % (n + 2)
    cursor = c.cursor()
    before = wait_running(c, 30)
    bulk = c.net.traffic(flows("udp", BULK, src=src, sport=20000, size=1,
                               listen=False))
    paced = ctdns.Traffic(c.net, flows(
        "udp", PACED, src=src, sport=20000 + BULK, size=1, listen=False,
        rate=RATE, every=EVERY, run=["conntrack", "-F"]))
    # The first flush ends the bulk: the action comes while ctd reads
    # its DESTROYs, and paced flows keep ending for 3 s after.
    check(paced.progress() == EVERY, "traffic.py made no flows")
    poller = Poller(c)
    poller.start()
    took = act(c, name)
    while paced.progress() is not None:
        pass
    paced.wait()
    want = {f.sport for f in bulk} | {f.sport for f in paced.flows()}
    c.net.run(["conntrack", "-F"])
    after = wait_running(c, 30)
    states = poller.finish()
    path = os.path.join(root, "var/log/ctd/flows.json")
    got = wait_stable(lambda: len(records(path, src)[0]), len(want), 60)
    seen, broken = records(path, src)
    missing = sorted(want - set(seen))
    doubled = sorted(p for p, v in seen.items() if len(v) > 1)
    unknown = sorted(set(seen) - want)
    not_destroy = sorted(p for p, v in seen.items() if v[0] != "destroy")
    allowed = PER_KILL if name == "kill" else 0
    check(len(missing) <= allowed and not doubled and not unknown and
          not not_destroy and not broken,
          "%s: %d flows, %d records; %d missing %s (allowed %d), %d doubled %s,"
          " %d unknown, %d not ended by destroy, %d lines not JSON"
          % (name, len(want), got, len(missing), missing[:5], allowed,
             len(doubled), doubled[:5], len(unknown), len(not_destroy), broken))
    ctlog = check_ctlog(root, name, src, seen)
    journal = c.journal("--after-cursor", cursor)
    ctd_log = c.journal("--after-cursor", cursor, "-u", "ctd")
    check_unit(name, before, after, states, journal, ctd_log)
    queued = re.findall(r"took over the ctnetlink socket .*\((\d+) bytes", ctd_log)
    return ("%-7s %5d flows ended meanwhile, %d records (conntrackd log: "
            "%d), %d missing, 0 doubled;"
            " action %.2f s; MainPID %s -> %s, NRestarts %s -> %s, fd store %s,"
            " socket taken over with %s bytes queued; states seen: %s"
            % (name, len(want), len(seen), ctlog, len(missing), took,
               before["MainPID"], after["MainPID"], before["NRestarts"],
               after["NRestarts"], after["NFileDescriptorStore"],
               "+".join(queued) or "no", ", ".join(states)))


def check_unit(name, before, after, states, journal, ctd_log):
    check(after["NFileDescriptorStore"] == "1", "%s: %s fds in the store, not 1"
          % (name, after["NFileDescriptorStore"]))
    check("Cannot store more fds" not in journal, "%s: the journal says:\n%s"
          % (name, [l for l in journal.splitlines() if "Cannot store" in l]))
    same_pid = before["MainPID"] == after["MainPID"]
    restarts = int(after["NRestarts"]) - int(before["NRestarts"])
    if name in ("restart", "kill"):
        check(not same_pid, "%s: MainPID stayed %s" % (name, after["MainPID"]))
        check("took over the ctnetlink socket" in ctd_log,
              "%s: the new ctd did not take the socket from the fd store:\n%s"
              % (name, ctd_log))
        check(restarts == (1 if name == "kill" else 0),
              "%s: NRestarts went up by %d" % (name, restarts))
    else:
        check(same_pid and restarts == 0, "%s: MainPID %s -> %s, NRestarts +%d"
              % (name, before["MainPID"], after["MainPID"], restarts))
        killed = [l for l in journal.splitlines()
                  if "SIGKILL" in l or "9/KILL" in l or "Killing" in l
                  or "timed out" in l]
        check(not killed and not any(s.startswith("deactivating") for s in states),
              "%s: states %s; journal: %s" % (name, states, killed))
    if name == "kill":
        check("code=killed, status=9/KILL" in journal,
              "kill: systemd did not see the SIGKILL:\n" + journal)
    if name == "usr2":
        check("SIGUSR2: restarting in place" in ctd_log,
              "usr2: ctd did not re-execute:\n" + ctd_log)
    if name == "reload":
        check("SIGHUP: configuration reloaded" in ctd_log,
              "reload: ctd did not reload:\n" + ctd_log)


def check_priorities(c):
    """ctd's lines carry their syslog priority into the journal."""
    warnings = c.journal("-u", "ctd", "-p", "warning")
    check("did not stop cleanly; its socket came back" in warnings,
          "journalctl -u ctd -p warning lacks the unclean restart:\n" + warnings)
    check("listening for conntrack events" not in warnings,
          "info lines shown at priority warning:\n" + warnings)
    check("listening for conntrack events" in c.journal("-u", "ctd", "-p", "info"),
          "ctd's info lines are not in the journal")
    return [l for l in warnings.splitlines() if l.strip()]


def test(args):
    check(os.geteuid() == 0, "needs root (debootstrap, systemd-nspawn)")
    root = os.path.join(os.path.abspath(args.build), "debian12-systemd-root")
    how = make_root(root, args.ctd)
    install(root, args.build)
    migrate_conntrackd_log(root)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        c = Container(root, tmp)
        try:
            # A booting container shares the 2 vCPUs with the other
            # tests' ctds: 60 s was missed on a loaded machine.
            state = c.wait_booted(180)
            booted = time.time() - start
            c.net.run("ip link set lo up")
            c.net.run(["nft", ctdns.NFT_TRACK_LO])
            wait_running(c, 30)
            print("systemd: Debian 12 root %s; booted with systemd-nspawn in "
                  "%.1f s (%s); ctd from this build under the shipped unit:"
                  % (how, booted, state), flush=True)
            for i, name in enumerate(STEPS):
                print("  " + step(c, root, name, i), flush=True)
            nwarn = check_priorities(c)
            journal = c.journal()
            check("Cannot store more fds" not in journal,
                  "the journal says Cannot store more fds than FileDescriptorStoreMax")
        finally:
            c.stop()
    print("  journalctl -u ctd -p warning: %d lines, the unclean restart among "
          "them, no info line; no 'Cannot store more fds':" % len(nwarn))
    for line in nwarn:
        print("    " + line)


def arguments(ap):
    ap.add_argument("--build", required=True, help="the build directory "
                    "(cmake --install from it; the root is kept there)")


if __name__ == "__main__":
    ctdns.main(test, arguments)

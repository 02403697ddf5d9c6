#!/usr/bin/env python3
"""A hostile local user against ctd (issue: a local user must never become
root through ctd, nor blind it).

With real users made for the test (useradd -M, removed after):
- ctd runs once with `user U`; U then plants a symbolic link to a root
  file (a stand-in for /etc/shadow) in place of every file ctd opens that
  U can reach: the spool file, the spool's temporary file, the JSON file,
  the conntrackd log (the last two in a directory U owns), and the stream
  and control socket paths. ctd, started again as root, refuses each one
  with a log line naming the path, and the target keeps its bytes, owner
  and mode.
- The control socket and the stream socket admit root and members of
  control-group / stream-group only: a member reads, a non-member is
  refused and counted, and `ctd -s` run by a non-member prints one clear
  line and exits 1 (not 141, SIGPIPE).
- 300 idle connections to /metrics and 100 to the control socket: a
  scrape and `ctd -s` still answer within 2 s; idle clients are dropped
  after the request deadline and counted. /metrics is not reachable on the
  namespace's non-loopback address.
- Bad configuration files (/dev/zero, a 1 MB line, control characters)
  give one error line naming file:line.

Usage: test_security.py --ctd PATH
"""
import grp
import os
import pwd
import subprocess
import time

import ctdns
from ctdns import Ctd, Fail, check, flows

SECRET = "root:$6$not-a-real-hash:19000:0:99999:7:::\n"
METRICS = "127.0.0.1:19477"


class Users:
    """Throw-away users: U (ctd's user, in group G), M (member of G) and
    X (nobody's friend)."""

    def __init__(self):
        self.tag = "c%d" % (os.getpid() % 100000)
        self.names = {k: "ctd%s%s" % (k, self.tag) for k in "umx"}
        self.group = "ctdg" + self.tag

    def __enter__(self):
        r = subprocess.run(["groupadd", self.group], capture_output=True,
                           text=True)
        check(r.returncode == 0, "groupadd: %s" % r.stderr.strip())
        for k, name in self.names.items():
            extra = ["-G", self.group] if k in "um" else []
            r = subprocess.run(["useradd", "-M", "-N", "-s", "/bin/false"] +
                               extra + [name], capture_output=True, text=True)
            check(r.returncode == 0, "useradd %s: %s" % (name, r.stderr.strip()))
        return self

    def __exit__(self, *exc):
        for name in self.names.values():
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", self.group], capture_output=True)
        return False

    def uid(self, k):
        return pwd.getpwnam(self.names[k]).pw_uid

    def as_user(self, k, cmd):
        """argv running cmd as user k with its groups."""
        pw = pwd.getpwnam(self.names[k])
        groups = [g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem]
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--groups=" + (",".join(map(str, groups)) or str(pw.pw_gid))] + cmd


def make_flows(ns, base, n):
    """n one-byte UDP flows from 127.0.0.1:base.. to a port nobody serves."""
    return ns.traffic(flows("udp", n, sport=base, size=1, listen=False))


def target_file(tmp):
    path = os.path.join(tmp, "shadow")
    with open(path, "w") as f:
        f.write(SECRET)
    os.chmod(path, 0o600)
    return path


def check_target(path, what):
    st = os.stat(path)
    with open(path) as f:
        body = f.read()
    check(body == SECRET and st.st_uid == 0 and st.st_mode & 0o7777 == 0o600,
          "%s: the target was touched (uid %d, mode %o, %d bytes)"
          % (what, st.st_uid, st.st_mode & 0o7777, len(body)))


def plant_link(users, target, path):
    """U replaces path with a symbolic link to target."""
    r = subprocess.run(users.as_user("u", ["sh", "-c", 'rm -f "$1"; ln -s "$2" "$1"',
                                           "sh", path, target]),
                       capture_output=True, text=True)
    check(r.returncode == 0, "user could not plant %s: %s" % (path, r.stderr))


def run_once(ns, binary, tmp, args, tag):
    """ctd started as root; returns (exit code or None if running, log)."""
    ctd = None
    try:
        ctd = Ctd(ns, binary, tmp, args, tag=tag)
        return ctd, ctd.log_text()
    except Fail:
        log = open(os.path.join(tmp, tag + ".log")).read()
        return None, log


def symlink_attacks(ns, binary, tmp, users):
    """Every file U can reach, replaced by a link to a root file."""
    target = target_file(tmp)
    udir = os.path.join(tmp, "userdir")          # an output dir U owns
    os.mkdir(udir, 0o755)
    os.chown(udir, users.uid("u"), -1)
    base = ["--user", users.names["u"], "--conntrackd-log",
            os.path.join(udir, "ct.log")]
    json_in_udir = os.path.join(udir, "flows.json")
    ctd = Ctd(ns, binary, tmp, base + ["-o", json_in_udir], tag="first",
              output_arg=False)
    make_flows(ns, 20000, 20)
    ctd.stop()
    spool = os.path.join(tmp, "spool")
    check(os.stat(spool).st_uid == users.uid("u"), "spool dir not handed over")
    cases = [
        ("spool file", os.path.join(spool, "json.spool"),
         ["-o", os.path.join(tmp, "flows.json")], "no spool in"),
        ("JSON file", json_in_udir, ["-o", json_in_udir], "refusing output"),
        ("conntrackd log", os.path.join(udir, "ct.log"),
         ["-o", os.path.join(tmp, "flows.json")], "refusing conntrackd log"),
        ("stream socket", os.path.join(udir, "s.sock"),
         ["--store", "none", "-o", os.path.join(tmp, "flows.json"), "--stream",
          os.path.join(udir, "s.sock")], "users other than root"),
        ("control socket", os.path.join(udir, "c.sock"),
         ["--store", "none", "-o", os.path.join(tmp, "flows-root.json"), "--spool-dir",
          os.path.join(tmp, "spool-root"), "--control",
          os.path.join(udir, "c.sock")], "users other than root"),
    ]
    for i, (what, path, extra, said) in enumerate(cases):
        plant_link(users, target, path)
        # The control socket is made after the drop; as root it is made
        # when ctd runs without `user`.
        args = [] if what == "control socket" else base
        ctd, log = run_once(ns, binary, tmp, args + extra, "atk%d" % i)
        if ctd is not None:
            make_flows(ns, 21000 + 100 * i, 10)
            ctd.stop()
            log = ctd.log_text()
        check_target(target, what)
        check(said in log and path.rsplit("/", 1)[0] in log,
              "%s: no clear refusal in the log:\n%s" % (what, log))
        os.unlink(path)
        print("%-20s refused, target untouched%s" % (
            what, "" if ctd is not None else " (ctd did not start)"))


def peer_checks(ns, binary, tmp, users):
    stream = os.path.join(tmp, "peer.sock")
    ctd = Ctd(ns, binary, tmp, ["--control-group", users.group,
                                "--stream", stream, "--stream-group",
                                users.group], tag="peer")
    # The sockets' modes keep strangers out already; open them wide, as
    # a file system that ignores a socket's mode would, so that the
    # credential check is what refuses.
    os.chmod(ctd.control, 0o666)
    os.chmod(stream, 0o666)
    # Control socket: a member may ask, a stranger is told why, once.
    out = subprocess.run(users.as_user("m", [binary, "--control", ctd.control,
                                             "-s"]),
                         capture_output=True, text=True, timeout=10)
    check(out.returncode == 0 and "counters" in out.stdout,
          "member refused: %d %s" % (out.returncode, out.stderr))
    out = subprocess.run(users.as_user("x", [binary, "--control", ctd.control,
                                             "-s"]),
                         capture_output=True, text=True, timeout=10)
    check(out.returncode == 1, "stranger's ctd -s exited %d (141 = SIGPIPE)"
          % out.returncode)
    lines = out.stderr.strip().splitlines()
    check(len(lines) == 1 and "refused" in lines[0],
          "stranger's ctd -s said: %r" % out.stderr)
    # Stream socket: the member reads records, the stranger gets nothing.
    reader = subprocess.Popen(ns.argv(users.as_user("m", [
        "python3", "-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\ns.settimeout(10)\nd=b''\n"
        "while d.count(b'\\n')<5:\n d+=s.recv(65536)\nprint(d.count(b'\\n'))",
        stream])), stdout=subprocess.PIPE, text=True)
    stranger = subprocess.run(ns.argv(users.as_user("x", [
        "python3", "-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\ns.settimeout(5)\nprint(len(s.recv(65536)))",
        stream])), capture_output=True, text=True, timeout=20)
    time.sleep(0.5)
    make_flows(ns, 22000, 5)
    ns.run(["conntrack", "-F"])
    got = reader.communicate(timeout=20)[0].strip()
    check(got.isdigit() and int(got) >= 5, "member read %r" % got)
    check(stranger.stdout.strip() == "0" or "Connection reset" in stranger.stderr,
          "stranger read stream bytes: %r %r" % (stranger.stdout, stranger.stderr))
    st = ctd.stop()
    check(st.get("out_stream_refused", 0) >= 1, "stranger not counted: %s"
          % st.get("out_stream_refused"))
    check(st.get("ctl_refused", 0) >= 1, "ctl_refused %s" % st.get("ctl_refused"))
    print("peer checks: member served; stranger refused on control and "
          "stream (ctl_refused %d, out_stream_refused %d)"
          % (st["ctl_refused"], st["out_stream_refused"]))


def scrape(ns, timeout):
    code = ("import socket,time\nt=time.time()\n"
            "s=socket.create_connection(('127.0.0.1',19477),timeout=%d)\n"
            "s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n')\nd=b''\n"
            "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\n"
            "print(len(d), time.time()-t)" % timeout)
    out = ns.run(["python3", "-c", code], timeout=timeout + 5).split()
    return int(out[0]), float(out[1])


def idle_clients(ns, binary, tmp):
    ctd = Ctd(ns, binary, tmp, ["--metrics", METRICS], tag="idle")
    holder = ns.start(["python3", "-c", """
import socket, sys, time
socks = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", 19477))
    s.send(b"GET /met")          # half a request, never finished
    socks.append(s)
for i in range(100):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    socks.append(s)
print("ready", flush=True)
time.sleep(30)
""", ctd.control], subprocess.PIPE, subprocess.PIPE, text=True)
    check(holder.stdout.readline().strip() == "ready", "idle clients failed: "
          + holder.stderr.read())
    n, secs = scrape(ns, 2)
    check(n > 1000 and secs < 2, "scrape with 400 idle clients: %d bytes in "
          "%.2f s" % (n, secs))
    t = time.time()
    out = ctd.query("-s")
    qsecs = time.time() - t
    check("counters" in out and qsecs < 2, "ctd -s took %.2f s" % qsecs)
    print("with 300 idle metrics and 100 idle control clients: scrape %.3f s "
          "(%d bytes), ctd -s %.3f s" % (secs, n, qsecs))
    time.sleep(6)   # past the request deadline
    st = ctd.stop()
    holder.kill()
    check(st["ctl_timeouts"] + st["ctl_evicted"] >= 400,
          "idle clients not dropped: timeouts %d evicted %d"
          % (st["ctl_timeouts"], st["ctl_evicted"]))
    print("idle clients dropped: ctl_timeouts %d, ctl_evicted %d"
          % (st["ctl_timeouts"], st["ctl_evicted"]))


def metrics_not_outside(ns, binary, tmp):
    ns.run("ip link add ctdv0 type veth peer name ctdv1 && "
           "ip addr add 192.0.2.1/24 dev ctdv0 && ip link set ctdv0 up && "
           "ip link set ctdv1 up")
    ctd = Ctd(ns, binary, tmp, ["--metrics", METRICS], tag="outside")
    r = subprocess.run(ns.argv(["python3", "-c",
                                "import socket\nsocket.create_connection("
                                "('192.0.2.1',19477),timeout=2)"]),
                       capture_output=True, text=True)
    check(r.returncode != 0 and "refused" in r.stderr,
          "metrics reachable off loopback: %s" % r.stderr)
    ctd.stop()
    print("metrics on 192.0.2.1 (veth): connection refused")


def bad_configs(binary, tmp):
    long_line = os.path.join(tmp, "long.conf")
    with open(long_line, "w") as f:
        f.write("grace " + "9" * 1000000 + "\n")
    ctrl = os.path.join(tmp, "ctrl.conf")
    with open(ctrl, "w") as f:
        f.write("grace 10\noutput /tmp/x\x1b[2Jy\n")
    for path, want in (("/dev/zero", "/dev/zero:1: control character"),
                       (long_line, long_line + ":1: line longer than"),
                       (ctrl, ctrl + ":2: control character \\x1b")):
        r = subprocess.run([binary, "-t", "-c", path], capture_output=True,
                           text=True, timeout=10)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and want in lines[0],
              "ctd -t -c %s: exit %d, %r" % (path, r.returncode, r.stderr))
    print("bad configs: one line each with file:line")


def main(args):
    with Users() as users, ctdns.sandbox("sec") as (ns, tmp):
        os.chmod(tmp, 0o755)
        phases = (lambda d: symlink_attacks(ns, args.ctd, d, users),
                  lambda d: peer_checks(ns, args.ctd, d, users),
                  lambda d: idle_clients(ns, args.ctd, d),
                  lambda d: metrics_not_outside(ns, args.ctd, d),
                  lambda d: bad_configs(args.ctd, d))
        for i, phase in enumerate(phases):
            d = os.path.join(tmp, "phase%d" % i)
            os.mkdir(d, 0o755)
            phase(d)
        print("PASS")


if __name__ == "__main__":
    ctdns.main(main)

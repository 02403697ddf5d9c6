#!/usr/bin/env python3
"""Operating ctd: configuration file, ctd -t, the control socket (ctd -s,
-l, -s top, text and JSON), who may use it, and SIGHUP reloads.

1. `ctd -t` accepts a good file and rejects a bad one with file:line,
   also for what only the start would find (unknown user or group, a
   socket path too long, a missing directory) and a key set twice; the
   daemon refuses those files with the same one line.
2. ctd runs from a config file; 300 UDP flows stay alive: `ctd -s --json`
   has a clean health check and, subscribed to DESTROY only (the
   default), tracks none of them (they began after the startup dump);
   `ctd -l` lists exactly those 300 tuples from a fresh kernel dump (text
   and JSON lines, with their counters), `ctd -s top` has 127.0.0.1 with
   300 flows first and their live bytes. A scrape of --metrics passes
   `promtool check metrics` with no finding and has ctd_build_info,
   process_start_time_seconds and a ctd_health_problem series per check.
3. Access: a non-root user cannot connect (socket mode), and even with
   the mode opened up is refused by its credentials; an oversized request
   is refused; each refusal is counted. With control-group, members (by
   primary or supplementary group) are answered, others refused, and a
   request that is not text is refused, counted and logged.
4. SIGHUP with the output moved while flows end: every flow is in one of
   the two files exactly once. A bad config on SIGHUP is logged and the
   running ctd keeps going.

Usage: test_ctl.py --ctd PATH
"""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time

import ctdns
from ctdns import Ctd, Traffic, check, flows

ALIVE, STORM = 300, 3000
METRICS = "127.0.0.1:19477"

# Runs in the namespace (the endpoint is on its loopback): one scrape.
SCRAPE = r"""
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode().replace("\r", ""))
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def check_config(ns, ctd_bin, tmp):
    good, bad = os.path.join(tmp, "good.conf"), os.path.join(tmp, "bad.conf")
    write(good, "# test\nrcvbuf 4M\ngrace 5\n")
    write(bad, "rcvbuf 4M\n\ngrace soon\n")
    r = subprocess.run([ctd_bin, "-t", "-c", good], capture_output=True, text=True)
    check(r.returncode == 0 and "is OK" in r.stdout, "ctd -t rejected a good file: %s"
          % (r.stdout + r.stderr))
    r = subprocess.run([ctd_bin, "-t", "-c", bad], capture_output=True, text=True)
    want = "%s:3: grace: 'soon' is not seconds from 1 to 86400" % bad
    check(r.returncode != 0 and want in r.stderr,
          "ctd -t on a bad file: exit %d, %r" % (r.returncode, r.stderr))
    r = subprocess.run([ctd_bin, "-t", "-c", os.path.join(tmp, "missing.conf")],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "No such file" in r.stderr,
          "ctd -t on a missing file: %r" % r.stderr)
    check_start_needs(ns, ctd_bin, tmp)


def check_start_needs(ns, ctd_bin, tmp):
    """What the daemon needs at start, -t checks too: each bad file gives
    exit 1 and one line naming file:line and the setting; the daemon (in
    the namespace, its other files in tmp) refuses the same file with the
    same line."""
    long_sock = os.path.join(tmp, "s" * 120)
    cases = (
        ("grace 5\nuser no-such-user-ctd\n", ":2: user: no such user"),
        ("control-group no-such-group-ctd\n", ":1: control-group: no such group"),
        ("stream %s/s.sock\nstream-group no-such-group-ctd\n" % tmp,
         ":2: stream-group: no such group"),
        ("\ncontrol %s\n" % long_sock, ":2: control: a Unix socket path has at most 107"),
        ("stream %s\n" % long_sock, ":1: stream: a Unix socket path has at most 107"),
        ("output %s/missing/flows.json\n" % tmp,
         ":1: output: directory %s/missing does not exist" % tmp),
        ("conntrackd-log %s/missing/ct.log\n" % tmp, ":1: conntrackd-log: directory"),
        ("spool-dir %s/missing/spool\n" % tmp, ":1: spool-dir: directory"),
        ("control %s/missing/c.sock\n" % tmp, ":1: control: directory"),
        ("grace 5\n\ngrace 9\n", "grace set twice: %s:1 and %s:3"),
        ('output "%s/a b.json\n' % tmp, ":1: output: unterminated quote"),
    )
    for text, want in cases:
        path = os.path.join(tmp, "start.conf")
        write(path, text)
        want = want.replace("%s", path) if "twice" in want else path + want
        own = [a for k in ("output", "spool-dir", "control") if k not in text
               for a in ("--" + k, os.path.join(tmp, "own-" + k))]
        for cmd in ([ctd_bin, "-t"], ns.argv(["timeout", "20", ctd_bin] + own)):
            r = subprocess.run(cmd + ["-c", path], capture_output=True,
                               text=True, timeout=30)
            lines = r.stderr.strip().splitlines()
            check(r.returncode == 1 and len(lines) == 1 and want in lines[0],
                  "%s on %r: exit %d, %r (want %r)"
                  % (" ".join(cmd), text, r.returncode, r.stderr, want))
    write(path, 'output "%s/a b.json"\nuser root\n' % tmp)
    r = subprocess.run([ctd_bin, "-t", "-v", "-c", path], capture_output=True, text=True)
    check(r.returncode == 0 and 'output                  "%s/a b.json"' % tmp in r.stdout,
          "ctd -t on a quoted path: %r" % (r.stdout + r.stderr))


def sports(records):
    return [r["orig"]["sport"] for r in records if r["orig"].get("dport") == 5555]


def check_queries(ctd, ns):
    want = {f.sport for f in ns.traffic(flows("udp", ALIVE, sport=30000))}
    time.sleep(0.5)
    st = json.loads(ctd.query("-s", "--json"))
    check(st["counters"]["flows_tracked"] == 0 and
          st["counters"]["events_new"] == 0,
          "ctd -s, DESTROY only: %d flows tracked, %d NEW events"
          % (st["counters"]["flows_tracked"], st["counters"]["events_new"]))
    check(st["health"] == [], "health problems: %s" % st["health"])
    text = ctd.query("-s")
    check("health:\n  ok\n" in text and text.endswith("# end\n") and
          "flows_tracked" in text, "ctd -s text:\n" + text)
    listed = ctd.query("-l")
    check(listed.endswith("# end\n"), "ctd -l has no end marker")
    lines = [l for l in listed.splitlines() if ":5555" in l]
    check(len(lines) == ALIVE, "ctd -l listed %d of %d flows" % (len(lines), ALIVE))
    # --sort: the same flows (their ages move on), largest first, the
    # end marker last.
    ranked = ctd.query("-l", "--sort", "bytes")
    total = [sum(int(x) for x in re.findall(r"(?:orig|reply)=\d+p/(\d+)B", l))
             for l in ranked.splitlines()[:-1]]
    check(ranked.endswith("# end\n") and
          sorted(re.findall(r" id=(\d+)", ranked)) ==
          sorted(re.findall(r" id=(\d+)", listed)) and
          total == sorted(total, reverse=True),
          "ctd -l --sort bytes:\n" + ranked[:500])
    rows = [json.loads(l) for l in ctd.query("-l", "--json").splitlines()]
    got = sports(rows)
    check(sorted(got) == sorted(want), "ctd -l --json: %d flows, %d of ours"
          % (len(got), len(want & set(got))))
    # Live counters: each flow sent one 48-byte packet (20 + 28 headers).
    ours = [r for r in rows if r["orig"].get("dport") == 5555]
    check(all(r["orig"].get("bytes") == 48 for r in ours),
          "ctd -l --json counters: %s" % ours[:2])
    top = json.loads(ctd.query("-s", "top", "--json"))
    first = top["sources_by_flows"][0]
    check(first["addr"] == "127.0.0.1" and first["flows"] == ALIVE and
          first["bytes"] >= 48 * ALIVE,
          "top sources: %s" % top["sources_by_flows"][:3])
    check_metrics(ns)
    return text


def promtool_check(body):
    """promtool's linter on the scrape: no finding at all (HELP and TYPE
    for every family, counters ending in _total, units in names)."""
    if not shutil.which("promtool"):
        raise Fail("promtool not found: install the Debian package prometheus")
    r = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
          "promtool check metrics: exit %d\n%s" % (r.returncode, r.stdout + r.stderr))


def check_metrics(ns):
    page = ns.run(["python3", "-c", SCRAPE, METRICS, "/metrics"])
    head, _, body = page.partition("\n\n")
    check(head.startswith("HTTP/1.0 200") and "version=0.0.4" in head,
          "metrics header: %r" % head)
    promtool_check(body)
    values, types, helps = {}, {}, set()
    for line in body.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            check(kind in ("counter", "gauge", "histogram"), "bad line %r" % line)
            check(kind != "counter" or family.endswith("_total"),
                  "counter %s without _total" % family)
            types[family] = kind
            continue
        name, value = line.rsplit(" ", 1)
        family = re.sub(r"_(bucket|sum|count)$", "", name.split("{")[0])
        if types.get(family) != "histogram":
            family = name.split("{")[0]
        check(family in types and family in helps,
              "sample %r before its TYPE and HELP" % line)
        values[name] = float(value) if "." in value else int(value)
    # DESTROY only: the live flows began after the startup dump.
    check(values.get("ctd_flows_tracked") == 0 and
          'ctd_output_delivered_total{output="json"}' in values and
          'ctd_events_total{type="destroy"}' in values and
          values.get("ctd_netlink_rcvbuf_bytes", 0) > 0,
          "metrics: flows_tracked %s, %d series"
          % (values.get("ctd_flows_tracked"), len(values)))
    # The DESTROY latency is a histogram histogram_quantile can use.
    check(values.get('ctd_destroy_latency_seconds_bucket{le="+Inf"}') ==
          values.get("ctd_destroy_latency_seconds_count") and
          "ctd_destroy_latency_seconds_sum" in values,
          "no DESTROY latency histogram")
    build = [k for k in values if k.startswith("ctd_build_info{version=")]
    check(len(build) == 1 and values[build[0]] == 1, "build info: %s" % build)
    started = values.get("process_start_time_seconds", 0)
    check(time.time() - 600 < started <= time.time(),
          "process_start_time_seconds %s, now %d" % (started, time.time()))
    # Every health check is a series; this healthy namespace has no problem.
    health = {k: v for k, v in values.items() if k.startswith("ctd_health_problem{")}
    check(len(health) == 11 and not any(health.values()) and
          'ctd_health_problem{check="nf_conntrack_acct"}' in health,
          "health series: %s" % health)
    other = ns.run(["python3", "-c", SCRAPE, METRICS, "/"])
    check(other.startswith("HTTP/1.0 404"), "GET / answered %r" % other[:40])
    print("metrics: promtool check metrics clean on %d series in %d families"
          % (len(values), len(types)))


def check_early_close(ctd):
    """A client that leaves in the middle of a live listing (thousands of
    flows: several slices) costs ctd nothing: the dump is released (an
    ASan build would report the leak at exit) and the next query works."""
    listed = sum(1 for l in ctd.query("-l").splitlines() if ":5555" in l)
    check(listed > 1000, "ctd -l during the storm listed %d flows" % listed)
    for request in (b"flows\n", b"top\n"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(ctd.control)
        s.sendall(request)
        s.recv(100)
        s.close()
    time.sleep(0.3)
    check("counters" in ctd.query("-s", "--json"), "ctd -s after early closes")


def check_access(ctd):
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", ctd.binary, "--control", ctd.control,
                        "-s"], capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "Permission denied" in r.stderr,
          "a non-root user reached the control socket: %r" % (r.stdout + r.stderr))
    # Open the way for the peer-credential check: directory and socket.
    os.chmod(os.path.dirname(ctd.control), 0o711)
    os.chmod(ctd.control, 0o666)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", ctd.binary, "--control", ctd.control,
                        "-s"], capture_output=True, text=True, timeout=30)
    check("ctd_requests" not in r.stdout and "counters" not in r.stdout,
          "a non-root user got an answer: %r" % r.stdout)
    check(r.returncode != 0, "ctd -s as non-root succeeded")
    os.chmod(ctd.control, 0o600)
    os.chmod(os.path.dirname(ctd.control), 0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctd.control)
    s.sendall(b"x" * 400)
    s.settimeout(5)
    try:
        answer = s.recv(100)
    except ConnectionResetError:   # closed with our bytes unread
        answer = b""
    check(answer == b"", "an oversized request got an answer")
    s.close()
    st = json.loads(ctd.query("-s", "--json"))
    check(st["counters"]["ctl_refused"] == 2,
          "ctl_refused %d, want 2" % st["counters"]["ctl_refused"])


def as_user(ctd, gid, groups, *args):
    """ctd -s as uid 65534 with this primary group and supplementary ones."""
    extra = ["--groups=" + ",".join(map(str, groups))] if groups else \
        ["--clear-groups"]
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=%d" % gid] +
                          extra + [ctd.binary, "--control", ctd.control] +
                          list(args), capture_output=True, text=True,
                          timeout=30)


def check_group(ns, binary, tmp):
    """control-group nogroup: its members get answers (primary or
    supplementary group), others are refused, as is a request that is
    not text; both refusals counted and logged."""
    ctd = Ctd(ns, binary, tmp, ["--control-group", "nogroup"], tag="grp",
              json=os.path.join(tmp, "grp.json"))
    os.chmod(tmp, 0o711)
    try:
        st = os.stat(ctd.control)
        check(st.st_gid == 65534 and st.st_mode & 0o777 == 0o660,
              "control socket gid %d mode %o" % (st.st_gid, st.st_mode & 0o777))
        for gid, groups in ((65534, ()), (1, (65534,))):
            r = as_user(ctd, gid, groups, "-s")
            check(r.returncode == 0 and "ctl_requests" in r.stdout,
                  "member (gid %d, groups %s) got no answer: %r"
                  % (gid, groups, r.stderr))
        r = as_user(ctd, 1, (), "-s")
        check(r.returncode != 0 and "Permission denied" in r.stderr,
              "a non-member reached the socket: %r" % (r.stdout + r.stderr))
        os.chmod(ctd.control, 0o666)
        r = as_user(ctd, 1, (), "-s")
        check(r.returncode != 0 and "counters" not in r.stdout,
              "a non-member got an answer: %r" % r.stdout)
        os.chmod(ctd.control, 0o660)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(ctd.control)
        s.sendall(b"st\x00ats\n")
        s.settimeout(5)
        try:
            answer = s.recv(100)
        except ConnectionResetError:
            answer = b""
        s.close()
        check(answer == b"", "a binary request got an answer: %r" % answer)
        st = json.loads(ctd.query("-s", "--json"))
        check(st["counters"]["ctl_refused"] == 2,
              "ctl_refused %d, want 2" % st["counters"]["ctl_refused"])
        check("control socket: 1 connections or requests refused"
              in ctd.log_text(),
              "the refusal was not logged:\n" + ctd.log_text())
    finally:
        os.chmod(tmp, 0o700)
        ctd.stop()


def check_reload(ctd, ns, conf, a, b):
    # Spread over 1.5 s, so the reload lands in the middle of the storm.
    gen = Traffic(ns, flows("udp", STORM, sport=40000, rate=2000))
    time.sleep(0.5)
    flush = ns.start(["conntrack", "-F"], subprocess.DEVNULL, subprocess.DEVNULL)
    flush.wait(timeout=30)
    write(conf, "output %s\n" % b)
    os.kill(ctd.proc.pid, signal.SIGHUP)
    gen.wait(timeout=60)
    check_early_close(ctd)
    want = {f.sport for f in gen.flows()}
    ns.run(["conntrack", "-F"])
    write(conf, "output %s\nrcvbuf lots\n" % b)
    os.kill(ctd.proc.pid, signal.SIGHUP)
    end = time.time() + 30
    total = 0
    while time.time() < end:
        total = sum(sum(1 for l in open(p) if '"dport":5555' in l)
                    for p in (a, b) if os.path.exists(p))
        if total >= ALIVE + STORM and "keeping the running configuration" in ctd.log_text():
            break
        time.sleep(0.2)
    check(ctd.proc.poll() is None, "ctd died on a bad reload:\n" + ctd.log_text())
    check("rcvbuf: 'lots' is not a size" in ctd.log_text(),
          "the bad reload was not logged:\n" + ctd.log_text())
    ctd.query("-s")
    counts, per_file = {}, []
    for p in (a, b):
        recs = [json.loads(l) for l in open(p)] if os.path.exists(p) else []
        ours = [s for s in sports(recs) if s in want]
        per_file.append(len(ours))
        for s in ours:
            counts[s] = counts.get(s, 0) + 1
    missing = sorted(want - set(counts))
    doubled = sorted(k for k, v in counts.items() if v > 1)
    check(not missing and not doubled and all(per_file),
          "reload: %d flows, %d missing %s, %d doubled, per file %s"
          % (STORM, len(missing), missing[:5], len(doubled), per_file))
    return per_file


def main(args):
    with ctdns.sandbox("ct") as (ns, tmp):
        check_config(ns, args.ctd, tmp)
        check_group(ns, args.ctd, tmp)
        conf = os.path.join(tmp, "ctd.conf")
        a, b = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
        write(conf, "# from the test\noutput %s\n" % a)
        ctd = Ctd(ns, args.ctd, tmp, ["-c", conf, "--metrics", METRICS],
                  json=a, output_arg=False)
        check_queries(ctd, ns)
        check_access(ctd)
        per_file = check_reload(ctd, ns, conf, a, b)
        text = ctd.query("-s")
        ctd.stop()
        print("ctl: -t good/bad/missing ok; -s/-l/top and /metrics counted "
              "%d live flows; "
              "non-root refused twice; control-group members "
              "answered, others and a binary request refused; reload split %d flows as %s with none "
              "lost or doubled; bad reload kept the running config"
              % (ALIVE, STORM, per_file))
        print("ctd -s after the storm:\n" + text)


if __name__ == "__main__":
    ctdns.main(main)

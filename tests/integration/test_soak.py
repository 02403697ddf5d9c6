#!/usr/bin/env python3
"""Soak test (ctest label "soak", not in the default run): ctd for a long
time (30 minutes by default) under a steady flow load with everything that
goes wrong on a real firewall happening on a schedule:

  - steady load: RATE one-packet UDP flows per second, each ending by the
    namespace's 5 s UDP timeout (the kernel's own DESTROY);
  - overruns: every BURST_EVERY s a burst of BURST flows as fast as one
    socket goes, then `conntrack -F`, against a 64 KiB receive buffer
    that may not grow: the socket overruns and the kernel re-sends;
  - output outages: every OUTAGE_EVERY s the stream reader is stopped
    (SIGSTOP) for OUTAGE s, so ctd must hold its records back;
  - reloads: SIGHUP every HUP_EVERY s.

Every RSS_EVERY s ctd's RSS and open file descriptors are sampled. At the
end: every flow made has exactly one record in the JSON file and exactly
one on the stream (ground truth: the tuples the generators sent), the fd
count is what it was at the start, and the overruns did happen. RSS: the
first WARMUP s hold a burst and an outage, which set the high-water mark
(the flow pool and held records); after that, the last third's peak must
stay within 10 % + 4 MiB of the middle third's. That needs 24 minutes or
more; --short runs skip it (for trying the test out) and say so.

Usage: test_soak.py --ctd PATH [--minutes 30] [--rate 1000] [--short]
"""
import json
import os
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, Fail, Traffic, check, flows

BURST, BURST_EVERY = 30000, 300
OUTAGE, OUTAGE_EVERY = 60, 420
HUP_EVERY, RSS_EVERY = 120, 30
WARMUP = OUTAGE_EVERY / 2 + OUTAGE + 30



def fan(sport, count, rate=0):
    """Flow i: 127.0.0.1:sport -> 127.a.b.c:7777 where a.b.c is i + 2^16,
    from one socket. Steady flows use sport 7000 (and hold the server
    socket), burst k uses 7001 + k."""
    return flows("udp", count, sport=sport, fan=True, dport=7777, rate=rate,
                 size=list(range(64)),
                 listen=("0.0.0.0", 7777) if sport == 7000 else False)

READER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect(sys.argv[1])
with open(sys.argv[2], "wb", buffering=0) as f:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        f.write(b)
"""


def key(sport, dst):
    """(sport, i) of a flow made by fan()."""
    a, b, c, d = (int(x) for x in dst.split("."))
    return (sport, (b << 16 | c << 8 | d) - 65536)


def flow_key(rec):
    o = rec["orig"]
    if o["dport"] != 7777 or not 7000 <= o["sport"] <= 7100:
        return None
    return key(o["sport"], o["dst"])


def tally(path, want, what):
    counts = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                k = flow_key(json.loads(line))
            except ValueError as e:
                raise Fail("%s line %d is not JSON: %s" % (what, n, e))
            if k is not None:
                counts[k] = counts.get(k, 0) + 1
    missing = [k for k in want if k not in counts]
    doubled = [k for k, v in counts.items() if v > 1]
    extra = [k for k in counts if k not in want]
    check(not missing and not doubled and not extra,
          "%s: %d flows made, %d missing %s, %d doubled %s, %d unknown %s"
          % (what, len(want), len(missing), missing[:3], len(doubled),
             doubled[:3], len(extra), extra[:3]))
    return len(counts)


def sample(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait_quiet(paths, want, secs):
    """Until every file has want lines, or nothing moved for 20 s."""
    end, last, still = time.time() + secs, None, time.time()
    while time.time() < end:
        now = [lines(p) for p in paths]
        if all(n >= want for n in now):
            return
        if now != last:
            last, still = now, time.time()
        elif time.time() - still > 20:
            return
        time.sleep(1)


def soak(ns, ctd, reader, stream_out, secs, rate, tmp):
    ns.sysctl("nf_conntrack_udp_timeout", 5)
    steady = Traffic(ns, fan(7000, int(rate * secs), rate), truth_dir=tmp)
    want, bursts, curve = set(), [], []
    start = time.time()
    fds0 = sample(ctd.proc.pid)[1]
    next_burst, next_outage, next_hup, next_rss = \
        BURST_EVERY / 2, OUTAGE_EVERY / 2, HUP_EVERY, 0
    while time.time() - start < secs:
        t = time.time() - start
        check(ctd.proc.poll() is None, "ctd died:\n" + ctd.log_text()[-2000:])
        if t >= next_rss:
            rss, fds = sample(ctd.proc.pid)
            curve.append((int(t), rss, fds))
            next_rss += RSS_EVERY
        if t >= next_burst:
            made = ns.traffic(fan(7001 + len(bursts), BURST))
            want.update(key(f.sport, f.dst) for f in made)
            bursts.append(len(made))
            ns.run(["conntrack", "-F"])
            next_burst += BURST_EVERY
        if t >= next_outage:
            reader.send_signal(signal.SIGSTOP)
            time.sleep(OUTAGE)
            reader.send_signal(signal.SIGCONT)
            next_outage += OUTAGE_EVERY
        if t >= next_hup:
            ctd.proc.send_signal(signal.SIGHUP)
            next_hup += HUP_EVERY
        time.sleep(0.5)
    made = steady.wait(timeout=120)["made"]
    want.update(key(f.sport, f.dst) for f in steady.flows())
    time.sleep(6)                       # the last steady flows time out
    ns.run(["conntrack", "-F"])
    wait_quiet([ctd.json, stream_out], len(want), 600)
    rss, fds = sample(ctd.proc.pid)
    curve.append((int(time.time() - start), rss, fds))
    return want, made, bursts, curve, fds0


def arguments(ap):
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--short", action="store_true",
                    help="allow runs under 24 minutes, without the RSS check")


def main(args):
    check(args.minutes >= 24 or args.short,
          "the RSS check needs --minutes 24 or more (or --short)")
    with ctdns.sandbox("soak", dir="/var/tmp") as (ns, tmp):
        stream = os.path.join(tmp, "stream.sock")
        stream_out = os.path.join(tmp, "stream.json")
        ctd = Ctd(ns, args.ctd, tmp, ["--rcvbuf", "64k", "--rcvbuf-max",
                                      "64k", "--stream", stream])
        reader = ns.start(["python3", "-c", READER, stream, stream_out],
                          subprocess.DEVNULL, subprocess.DEVNULL)
        time.sleep(1)
        want, made, bursts, curve, fds0 = soak(
            ns, ctd, reader, stream_out, args.minutes * 60, args.rate, tmp)
        n_json = tally(ctd.json, want, "JSON file")
        n_stream = tally(stream_out, want, "stream")
        end = curve[-1][0]
        third = (end - WARMUP) / 3
        mid = [r for t, r, f in curve
               if WARMUP < t <= WARMUP + 2 * third]
        late = [r for t, r, f in curve if t > WARMUP + 2 * third]
        rss_note = "RSS not checked (--short)"
        if not args.short:
            check(mid and late and max(late) <= max(mid) * 1.1 + 4096,
                  "RSS grew: peak %s KiB after warm-up, %s KiB at the end"
                  % (max(mid or [0]), max(late or [0])))
            rss_note = "RSS peak %d KiB after warm-up, %d KiB in the " \
                       "last third" % (max(mid), max(late))
        check(curve[-1][2] == fds0, "fds: %d at the start, %d at the end"
              % (fds0, curve[-1][2]))
        c = ctd.stop()
        check(c["nl_drops"] > 0, "no overrun happened (nl_drops 0)")
        reader.wait(timeout=10)
        print("soak %.0f min: %d steady flows + %d bursts of %s; JSON %d, "
              "stream %d flows, each exactly once; nl_drops %d, "
              "stream deferred %d, spooled %d; fds %d -> %d; %s"
              % (args.minutes, made, len(bursts), bursts[:1], n_json,
                 n_stream, c["nl_drops"], c.get("out_stream_deferred", -1),
                 c.get("out_stream_spooled", -1), fds0, curve[-1][2],
                 rss_note))
        print("RSS curve (s, KiB, fds): " +
              " ".join("%d:%d:%d" % x for x in curve))


if __name__ == "__main__":
    ctdns.main(main, arguments)

#!/usr/bin/env python3
"""conntrackd-log: ctd's lines are conntrackd's lines.

conntrackd itself (stats mode, LogFile, reliable events) and ctd with
`conntrackd-log` listen in the same namespace while UDP flows over IPv4
and IPv6 (varied packet counts), flows through a DNAT and an SNAT rule,
marked flows and TCP connections come and go (`conntrack -F`). Every
flow must have exactly one line in ctd's log, and every line conntrackd
wrote must be in ctd's log character for character after the time
stamp; the time stamps have ctime()'s layout and agree within 2 s.
ctd's log also goes to syslog in this run: a datagram socket standing in
for /dev/log must receive one RFC 5424 message per flow, with the same
text, facility local3 and level notice.

Usage: test_ctlog.py --ctd PATH
"""
import os
import re
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check, flows

RULES = (ctdns.NAT4 +
         "add table inet m; "
         "add chain inet m out { type filter hook output priority 0; }; "
         "add rule inet m out udp dport 5557 ct mark set 42")



def udp(count, sport, **kw):
    """UDP flows of 1-3 datagrams of 5-34 bytes, every other one answered
    with 3-7 bytes."""
    return flows("udp", count, sport=sport, packets=[1, 2, 3],
                 size=list(range(5, 35)), replies=[0, 1],
                 reply_size=list(range(3, 8)), **kw)


# Plain over both families, through the DNAT rule, the SNAT rule, marked,
# and TCP connections from ports the kernel picks.
TRAFFIC = [udp(300, 20000), udp(100, 20000, src="::1"),
           udp(40, 21000, dst="127.0.0.10", dport=7000,
               listen=("127.0.0.1", 5555)),
           udp(40, 22000, dport=5556), udp(40, 23000, dport=5557),
           flows("tcp", 30, dport=6666, size=list(range(10, 40)))]

CONF = """General {
	LogFile %(d)s/conntrackd.log
	LockFile %(d)s/conntrackd.lock
	UNIX {
		Path %(d)s/conntrackd.ctl
	}
	NetlinkBufferSize 8388608
	NetlinkBufferSizeMaxGrowth 67108864
	NetlinkEventsReliable On
}
Stats {
	LogFile %(d)s/stats.log
}
"""

TIME = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                  r"Sep|Oct|Nov|Dec) [ 123][0-9] \d\d:\d\d:\d\d \d{4}$")

SYSLOG = r"""
import signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(sys.argv[1])
out = open(sys.argv[2], "wb")
signal.signal(signal.SIGTERM, lambda *a: (out.close(), sys.exit(0)))
print("ready", flush=True)
while True:
    out.write(s.recv(65536) + b"\n"); out.flush()
"""


def lines(path):
    with open(path) as f:
        return [l.rstrip("\n") for l in f]


def split(line):
    stamp, _, text = line.partition("\t")
    check(TIME.match(stamp), "not ctime()'s layout: %r" % stamp)
    return time.mktime(time.strptime(stamp)), text


def check_syslog(path, ctd_texts):
    with open(path, "rb") as f:
        msgs = [l.decode() for l in f.read().splitlines() if l]
    # <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG; local3.notice = 19*8+5
    pat = re.compile(r"^<157>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ ctd \d+ flow "
                     r"\[ctd@32473 [^\]]*\] (.*)$")
    texts = []
    for m in msgs:
        g = pat.match(m)
        check(g, "not the expected RFC 5424 message: %r" % m[:200])
        texts.append(g.group(1))
    check(sorted(texts) == sorted(ctd_texts),
          "syslog got %d messages, the log %d lines, or they differ" % (len(texts), len(ctd_texts)))
    return len(texts)


def main(args):
    check(subprocess.run(["which", "conntrackd"], capture_output=True).returncode == 0,
          "conntrackd is missing (apt-get install conntrackd)")
    with ctdns.sandbox("ctl") as (ns, tmp):
        ns.sysctl("nf_conntrack_acct", 1)
        ns.sysctl("nf_conntrack_timestamp", 1)
        ns.run(["nft", RULES])
        conf = os.path.join(tmp, "conntrackd.conf")
        with open(conf, "w") as f:
            f.write(CONF % {"d": tmp})
        ns.run(["conntrackd", "-C", conf, "-d"])
        sock, got = os.path.join(tmp, "log.sock"), os.path.join(tmp, "syslog.txt")
        rx = ns.start(["python3", "-c", SYSLOG, sock, got], subprocess.PIPE,
                      subprocess.DEVNULL, text=True)
        check(rx.stdout.readline().strip() == "ready", "syslog receiver did not start")
        mine = os.path.join(tmp, "ctd-conntrackd.log")
        ctd = Ctd(ns, args.ctd, tmp, ["--conntrackd-log", mine, "--syslog", "yes",
                                      "--syslog-socket", sock, "--syslog-facility",
                                      "local3", "--syslog-level", "notice",
                                      "--syslog-format", "rfc5424"])
        time.sleep(1)
        made = ns.traffic(*TRAFFIC)
        nflows = len(made)
        ns.run(["conntrack", "-F"])
        check(ctd.wait_records(nflows, 30) is not None, "ctd's JSON records missing")
        time.sleep(2)
        counters = ctd.stop()
        ns.run(["conntrackd", "-C", conf, "-k"])
        time.sleep(0.5)
        rx.send_signal(signal.SIGTERM)
        rx.wait(timeout=10)
        ours = [split(l) for l in lines(mine)]
        theirs = [split(l) for l in lines(os.path.join(tmp, "stats.log"))]
        check(len(ours) == nflows, "ctd logged %d flows, made %d" % (len(ours), nflows))
        texts = {}
        for t, text in ours:
            check(text not in texts, "ctd logged twice: %s" % text)
            texts[text] = t
        missing = [text for _, text in theirs if text not in texts]
        check(not missing, "%d of conntrackd's %d lines are not in ctd's log, e.g.:\n%s"
              % (len(missing), len(theirs), "\n".join(missing[:5])))
        skew = max((abs(texts[text] - t) for t, text in theirs), default=0)
        check(skew <= 2, "time stamps differ by %.0f s" % skew)
        check(len(theirs) >= nflows * 0.9, "conntrackd logged only %d of %d flows: "
              "too few to compare" % (len(theirs), nflows))
        nsys = check_syslog(got, [text for _, text in ours])
        kinds = sum(1 for _, t in theirs if "mark=42" in t), \
            sum(1 for _, t in theirs if "dst=127.0.0.7" in t)
        check(all(kinds), "the comparison lacks marked or NATed lines: %s" % (kinds,))
        print("conntrackd-log: %d flows, %d lines each; all %d lines conntrackd wrote "
              "are identical in ctd's log (%d marked, %d SNAT); syslog got %d RFC 5424 "
              "messages; out_ctlog_skipped %d" % (
                  nflows, len(ours), len(theirs), kinds[0], kinds[1], nsys,
                  counters.get("out_ctlog_skipped", -1)))


if __name__ == "__main__":
    ctdns.main(main)

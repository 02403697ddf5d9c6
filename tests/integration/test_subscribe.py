#!/usr/bin/env python3
"""DESTROY-only subscription: every flow exactly once, with the kernel's
counters, also across reloads that join and leave NEW/UPDATE mid-storm.

With nothing that uses NEW/UPDATE events (no -f, no event records,
reliable mode), ctd joins the DESTROY group alone. The test:

1. makes flows before ctd starts (UDP with a reply, TCP connections):
   they come from the startup dump;
2. starts ctd from a config file (subscribe auto: DESTROY only, which it
   must log and /proc/net/netlink must show), after checking that -f,
   NEW/UPDATE event records and lossy mode each join all three groups;
3. runs a storm of UDP flows with a reply and TCP connections, and while
   it runs rewrites the config to `subscribe all`, `auto`, `all` again,
   with a SIGHUP each time (the groups change on the same socket);
4. reads the kernel's table (`conntrack -L`, counters on) as ground
   truth, then `conntrack -F`.

Every conntrack listed must have exactly one record, with the same
packet and byte counters both ways, TCP ones with their TCP state, and
start_seen false exactly for the flows made before ctd. ctd must have
seen NEW events (the `all` windows) and logged each change.

Usage: test_subscribe.py --ctd PATH
"""
import argparse
import os
import re
import signal
import sys
import tempfile
import time

from ctdns import Ctd, Fail, Netns, check

GEN = r"""
import socket, sys, time
base, n, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 5555))
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", 5556))
lst.listen(64)
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", base + i))
    c.sendto(b"u" * (10 + i % 50), ("127.0.0.1", 5555))
    data, peer = udp.recvfrom(2048)
    udp.sendto(b"r" * 5, peer)
    c.recv(64)
    c.close()
    if i % 3 == 0:
        t = socket.socket()
        t.bind(("127.0.0.1", base + i + 20000))
        t.connect(("127.0.0.1", 5556))
        s, _ = lst.accept()
        t.sendall(b"t" * (1 + i % 100))
        s.recv(4096)
        s.sendall(b"ok")
        t.recv(16)
        t.close()
        s.close()
    if pause and i % 50 == 49:
        time.sleep(pause)
"""

BEFORE, STORM = 150, 1500
FLOW_RE = re.compile(r"^(tcp|udp)\s+\d+\s+\d+\s+(?:([A-Z_]+)\s+)?src=\S+ dst=\S+ "
                     r"sport=(\d+) dport=(\d+) packets=(\d+) bytes=(\d+) "
                     r"src=\S+ dst=\S+ sport=\d+ dport=\d+ packets=(\d+) bytes=(\d+)")


def truth(ns):
    """(proto, sport) -> (tcp state, counters), from conntrack -L."""
    flows = {}
    for line in ns.run(["conntrack", "-L"]).splitlines():
        m = FLOW_RE.match(line)
        if not m or m.group(4) not in ("5555", "5556"):
            continue
        flows[(m.group(1), int(m.group(3)))] = (
            m.group(2), tuple(int(m.group(k)) for k in range(5, 9)))
    return flows


def groups(pid):
    """The conntrack event groups (bit 0 NEW, 1 UPDATE, 2 DESTROY) ctd's
    ctnetlink sockets are in, as the kernel lists them."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    mask = 0
    with open("/proc/%d/net/netlink" % pid) as f:
        for row in f.read().splitlines()[1:]:
            c = row.split()
            if len(c) >= 10 and c[1] == "12" and c[9] in inodes:
                mask |= int(c[3], 16)
    return mask


def wait_groups(ctd, want):
    end = time.time() + 5
    while groups(ctd.proc.pid) != want and time.time() < end:
        time.sleep(0.02)
    check(groups(ctd.proc.pid) == want, "ctd's event groups 0x%x, want 0x%x"
          % (groups(ctd.proc.pid), want))


def set_subscribe(ctd, conf, value):
    with open(conf, "w") as f:
        f.write("subscribe %s\n" % value)
    ctd.proc.send_signal(signal.SIGHUP)
    wait_groups(ctd, 7 if value == "all" else 4)


def check_needs(ns, binary, tmp):
    """-f, event records and lossy mode each join NEW and UPDATE too."""
    for args in (["-f"], ["--json-events", "new,destroy"],
                 ["--no-broadcast-error"]):
        ctd = Ctd(ns, binary, tmp, args, tag="need",
                  json=os.path.join(tmp, "need.json"))
        wait_groups(ctd, 7)
        ctd.stop()


def storm(ns, ctd, conf):
    gen = ns.start(["python3", "-c", GEN, "30000", str(STORM), "0.05"],
                   open(os.devnull, "w"), open(os.devnull, "w"))
    for value in ("all", "auto", "all"):
        time.sleep(0.4)
        set_subscribe(ctd, conf, value)
    check(gen.wait(timeout=120) == 0, "the storm generator failed")
    time.sleep(0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctd", required=True)
    args = ap.parse_args()
    try:
        with Netns("sub") as ns, tempfile.TemporaryDirectory() as tmp:
            ns.sysctl("nf_conntrack_acct", 1)
            ns.sysctl("nf_conntrack_timestamp", 1)
            # Events for the flows made before ctd whether or not some
            # listener elsewhere exists (events=2 decides by that, at the
            # conntrack's creation: test_startup's subject, not this).
            ns.sysctl("nf_conntrack_events", 1)
            ns.run(["python3", "-c", GEN, "1000", str(BEFORE), "0"])
            conf = os.path.join(tmp, "ctd.conf")
            with open(conf, "w") as f:
                f.write("subscribe auto\n")
            check_needs(ns, args.ctd, tmp)
            ctd = Ctd(ns, args.ctd, tmp, ["-c", conf])
            check("DESTROY only" in ctd.log_text(),
                  "ctd did not subscribe to DESTROY only:\n" + ctd.log_text())
            wait_groups(ctd, 4)
            storm(ns, ctd, conf)
            want = truth(ns)
            ns.run(["conntrack", "-F"])
            ctd.wait_records(len(want), 60)
            time.sleep(0.5)
            counters = ctd.stop()
            log = ctd.log_text()
            recs = ctd.records()
    except Fail as e:
        print("FAIL:", e)
        return 1
    return judge(want, recs, counters, log)


def judge(want, recs, counters, log):
    got = {}
    for r in recs:
        if r["orig"].get("dport") in (5555, 5556):
            got.setdefault((r["proto"], r["orig"]["sport"]), []).append(r)
    bad = []
    for key, (state, cnt) in sorted(want.items()):
        rs = got.get(key, [])
        if len(rs) != 1:
            bad.append("%s/%d: %d records" % (key[0], key[1], len(rs)))
            continue
        r = rs[0]
        have = (r["orig"].get("packets"), r["orig"].get("bytes"),
                r["reply"].get("packets"), r["reply"].get("bytes"))
        before = key[1] < 30000
        if have != cnt or r["start_seen"] == before or \
                (key[0] == "tcp" and r.get("tcp_state") != state):
            bad.append("%s/%d: %s %s start_seen=%s, want %s %s"
                       % (key[0], key[1], have, r.get("tcp_state"),
                          r["start_seen"], cnt, state))
    extra = sum(len(v) for k, v in got.items() if k not in want)
    reloads = log.count("reload: now subscribed to")
    tcp = sum(1 for k in want if k[0] == "tcp")
    print("subscribe: %d flows (%d TCP) listed before the flush, %d records; "
          "NEW events %d, DESTROY events %d, reloads that changed the groups "
          "%d, bad %d, extra %d"
          % (len(want), tcp, len(recs), counters.get("events_new", 0),
             counters.get("events_destroy", 0), reloads, len(bad), extra))
    ok = not bad and not extra and reloads == 3 and \
        counters.get("events_new", 0) > 0 and \
        len(want) == (BEFORE + STORM) + (BEFORE + 2) // 3 + (STORM + 2) // 3
    if not ok:
        print("FAIL:", "; ".join(bad[:10]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""record-labels: conntrack labels set by nft rules reach the records.

In a namespace, nft rules label UDP flows: to port 5555 bits 5 and 100
when the flow begins (the NEW event carries them) and bit 64 on the
server's reply (only an UPDATE carries that one); to port 5557 bit 7;
flows to port 5556 get none. A connlabel.conf names bits 5 ("web") and
7 ("vpn customer-a"); the test writes it to /etc/xtables/connlabel.conf
and removes it after (it refuses to run when the system has one).

1. ctd with `--record-labels yes` and IPFIX (ipfix-pen) into a UDP sink:
   every flow's JSON record has exactly its labels, named where the file
   names them, bit numbers otherwise, and none on the unlabelled flows;
   libfixbuf's ipfixDump decodes every data record with the ctLabels
   element equal to the labels as a big-endian number.
2. ctd started from a config file with record-labels no (DESTROY only),
   then reloaded with yes (it must join NEW and UPDATE: labelled flows
   now have labels) and with no again (DESTROY only, no labels).

Usage: test_labels.py --ctd PATH
"""
import os
import re
import signal
import subprocess
import time

import ctdns
from ctdns import Ctd, check
import ipfixtool

CONF_DIR = "/etc/xtables"
CONF = CONF_DIR + "/connlabel.conf"
NAMES = "# ctd's kernel test\n5 web\n7 vpn customer-a\n"
RULES = ("add table inet lbl; "
         "add chain inet lbl out { type filter hook output priority 0; }; "
         "add rule inet lbl out udp dport 5555 ct label set 5; "
         "add rule inet lbl out udp dport 5555 ct label set 100; "
         "add rule inet lbl out udp sport 5555 ct label set 64; "
         "add rule inet lbl out udp dport 5557 ct label set 7")
# What each kind's records must show: JSON names, the bits.
WANT = {"web": (["web", "64", "100"], (5, 64, 100)),
        "vpn": (["vpn customer-a"], (7,)),
        "plain": (None, ())}
PORT = {"web": 5555, "vpn": 5557, "plain": 5556}
IPFIX_PORT = 4750

def gen(ns, base, n):
    """n flows of each kind, each with one reply."""
    return ns.traffic(*[ctdns.flows("udp", n, tag=kind, sport=base + 1000 * i,
                                    dport=PORT[kind], replies=1)
                        for i, kind in enumerate(sorted(PORT))])


def check_json(ctd, flows, labels_on):
    """Every flow's record has its kind's labels (none when off)."""
    by_key = {}
    for r in ctd.records():
        o = r["orig"]
        by_key[(o["src"], o["sport"], o["dst"], o["dport"])] = r
    for f in flows:
        r = by_key.get((f.src, f.sport, f.dst, f.dport))
        check(r is not None, "no record for %s" % (f.key,))
        want = WANT[f.tag][0] if labels_on else None
        check(r.get("labels") == want, "%s flow %s: labels %r, want %r"
              % (f.tag, f.key, r.get("labels"), want))


def ipfix_records(path):
    """ipfixDump's data records of the flow templates as dicts keyed by
    element number ("8", "32473/3"), octetArrays in hex: it has no
    names for ctd's enterprise elements. Fails on its complaints."""
    r = subprocess.run(["ipfixDump", "--hexdump=16", "-i", path],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and not r.stderr.strip(),
          "ipfixDump failed (%d): %s" % (r.returncode, r.stderr[-500:]))
    recs, cur = [], None
    for line in r.stdout.splitlines():
        if line.startswith("--- "):
            cur = {} if line.startswith("--- data record") else None
            if cur is not None:
                recs.append(cur)
        elif cur is not None and "tid:" in line:
            cur["tid"] = int(line.split("tid:")[1].split()[0])
        elif cur is not None:
            m = re.match(r"\t\(([0-9/]+)\)\s+\S+ : (.*)$", line)
            if m:
                cur[m.group(1)] = m.group(2).strip()
    return [x for x in recs if x.get("tid") in (256, 257, 258, 259)]


def check_ipfix(flows, path):
    """Every flow once, ctLabels (32473/3) = its bits as a number."""
    recs = ipfix_records(path)
    by_key = {}
    for r in recs:
        key = (r["8"], int(r["7"]), r["12"], int(r["11"]), int(r["4"]))
        by_key.setdefault(key, []).append(r)
    for f in flows:
        got = by_key.get((f.src, f.sport, f.dst, f.dport, 17), [])
        check(len(got) == 1, "%s: %d IPFIX records" % (f.key, len(got)))
        m = re.match(r"\(len: 16\) 0x([0-9a-f]{32})$", got[0].get("32473/3", ""))
        check(m, "no 16-octet ctLabels in %s" % got[0])
        want = sum(1 << b for b in WANT[f.tag][1])
        value = int(m.group(1), 16)
        check(value == want, "%s flow %s: ctLabels %x, want %x"
              % (f.tag, f.key, value, want))
    return len(recs)


def exported(ns, tmp, binary, n):
    sink = os.path.join(tmp, "recv.ipfix")
    recv = ipfixtool.UdpSink(ns, IPFIX_PORT, sink)
    ctd = Ctd(ns, binary, tmp, ["--record-labels", "yes", "--ipfix",
                                "udp:127.0.0.1:%d" % IPFIX_PORT,
                                "--ipfix-pen", "32473", "--ipfix-mtu", "1500"])
    ctd.wait_log("record-labels: 2 label names from " + CONF, 5)
    flows = gen(ns, 20000, n)
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(flows), 60) is not None, "records missing")
    time.sleep(1)
    ctd.stop()
    recv.stop()
    check_json(ctd, flows, True)
    return len(flows), check_ipfix(flows, sink)


def reload_to(ctd, conf, value, word):
    with open(conf, "w") as f:
        f.write("record-labels %s\n" % value)
    ctd.proc.send_signal(signal.SIGHUP)
    ctd.wait_log(word, 10)


def reloaded(ns, tmp, binary, n):
    sub = os.path.join(tmp, "reload")
    os.mkdir(sub)
    conf = os.path.join(sub, "ctd.conf")
    with open(conf, "w") as f:
        f.write("record-labels no\n")
    ctd = Ctd(ns, binary, sub, ["-c", conf])
    check("DESTROY only" in ctd.log_text(), "not DESTROY only at start")
    reload_to(ctd, conf, "yes", "now subscribed to NEW, UPDATE and DESTROY")
    on = gen(ns, 30000, n)
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(on), 60) is not None, "records missing (on)")
    reload_to(ctd, conf, "no", "now subscribed to DESTROY events only")
    off = gen(ns, 40000, n)
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(on) + len(off), 60) is not None,
          "records missing (off)")
    ctd.stop()
    check_json(ctd, on, True)
    check_json(ctd, off, False)
    return len(on), len(off)


def main(args):
    check(not os.path.exists(CONF) and not os.path.exists("/etc/connlabel.conf"),
          "this system has a connlabel.conf: the test writes its own and "
          "will not replace it")
    made_dir = not os.path.isdir(CONF_DIR)
    os.makedirs(CONF_DIR, exist_ok=True)
    try:
        with open(CONF, "w") as f:
            f.write(NAMES)
        with ctdns.sandbox("lbl") as (ns, tmp):
            ns.run(["nft", RULES])
            n, ndata = exported(ns, tmp, args.ctd, 100)
            on, off = reloaded(ns, tmp, args.ctd, 50)
    finally:
        os.unlink(CONF)
        if made_dir:
            os.rmdir(CONF_DIR)
    print("labels: %d flows with labels from NEW and UPDATE events, named by "
          "connlabel.conf or numbered, in JSON and IPFIX ctLabels (ipfixDump: "
          "%d flow records); reload on: %d flows labelled, off: %d without"
          % (n, ndata, on, off))


if __name__ == "__main__":
    ctdns.main(main)

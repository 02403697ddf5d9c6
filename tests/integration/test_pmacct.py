#!/usr/bin/env python3
"""IPFIX into pmacct's nfacctd with the recipe docs/outputs.md gives.

In a namespace with the SNAT/DNAT rules of test_ipfix_udp.py, nfacctd
listens on 127.0.0.1:4739 with a plain configuration: two print plugins,
CSV and JSON (the output pmacct's Kafka/ELK path uses), aggregating by
addresses, ports and protocol. ctd exports with the shape the recipe
names (uniflow) and `ipfix-nat-event none`. Made: 300 IPv4 and 100 IPv6
UDP flows with known packets both ways, 40 NATed flows of each kind and
20 TCP connections; then `conntrack -F`.

Both of pmacct's outputs must have every flow's both directions (the
reply as its own row, keyed by the reply tuple) with packets and bytes
equal to ctd's JSON record, NATed flows included; no row nobody made;
and the totals equal ctd's JSON totals.

Usage: test_pmacct.py --ctd PATH
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import tempfile
import time

from ctdns import Ctd, Fail, Netns, check
from test_ipfix_udp import NAT, gen

PORT = 4739
PROTO = {"udp": 17, "tcp": 6}

# The recipe of docs/outputs.md ("pmacct"), with test paths.
NFACCTD_CONF = """daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: %(port)d
plugins: print[csv], print[json]
aggregate[csv]: src_host, dst_host, src_port, dst_port, proto
aggregate[json]: src_host, dst_host, src_port, dst_port, proto
print_output[csv]: csv
print_output[json]: json
print_output_file[csv]: %(dir)s/pmacct.csv
print_output_file[json]: %(dir)s/pmacct.json
print_output_file_append: true
print_refresh_time: 1
"""


def add(table, key, packets, nbytes):
    p, b = table.get(key, (0, 0))
    table[key] = (p + packets, b + nbytes)


def ctd_directions(records):
    """(src, sport, dst, dport, proto) of each direction -> (packets, bytes),
    and each flow's forward key -> its reply key."""
    want, reply_of = {}, {}
    for j in records:
        keys = [(j[d]["src"], j[d].get("sport"), j[d]["dst"], j[d].get("dport"),
                 j["proto_num"]) for d in ("orig", "reply")]
        if PORT in keys[0][1:4:2]:
            continue
        for d, key in zip(("orig", "reply"), keys):
            check(key not in want, "ctd's JSON has %s twice" % (key,))
            want[key] = (j[d]["packets"], j[d]["bytes"])
        reply_of[keys[0]] = keys[1]
    return want, reply_of


def read_csv(path):
    got = {}
    with open(path) as f:
        for row in csv.reader(f):
            if not row or row[0] == "SRC_IP":
                continue
            src, dst, sport, dport, proto, packets, nbytes = row
            key = (src, int(sport), dst, int(dport), PROTO[proto])
            add(got, key, int(packets), int(nbytes))
    return got


def read_json(path):
    got = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            key = (r["ip_src"], r["port_src"], r["ip_dst"], r["port_dst"],
                   PROTO[r["ip_proto"]])
            # A record pmacct takes for a NAT event has no counters at all.
            add(got, key, r.get("packets", -1), r.get("bytes", -1))
    return got


def without_collector(table):
    return {k: v for k, v in table.items() if PORT not in k[1:4:2]}


def wait_rows(path, reader, n, secs):
    end = time.time() + secs
    got = {}
    while time.time() < end:
        if os.path.exists(path):
            got = without_collector(reader(path))
            if len(got) >= n:
                time.sleep(2)   # one more refresh: nothing may follow
                return without_collector(reader(path))
        time.sleep(0.2)
    return got


def compare(name, got, want, reply_of, flows):
    bad = ["%s: %s, ctd %s" % (k, got.get(k), v) for k, v in want.items()
           if got.get(k) != v]
    extra = sorted(set(got) - set(want))
    check(not bad and not extra, "%s: %d directions wrong, %d unknown, e.g.:\n%s"
          % (name, len(bad), len(extra), "\n".join(bad[:10] + [str(e) for e in extra[:5]])))
    # Every flow made: both directions counted (the reply when it had
    # packets), under the tuples ctd's record has.
    for f in flows:
        fwd = (f.src, f.sport, f.dst, f.dport, 6 if f.proto == "tcp" else 17)
        check(fwd in reply_of, "%s: ctd has no record of %s" % (name, fwd))
        a, b = got.get(fwd), got.get(reply_of[fwd])
        check(a and a[0] > 0 and a[1] > 0 and b and
              (b[0] > 0) == (f.proto == "tcp" or (f.reply_packets or 0) > 0),
              "%s: flow %s: forward %s, reply %s" % (name, f.key, a, b))
    totals = tuple(sum(v[i] for v in got.values()) for i in (0, 1))
    check(totals == tuple(sum(v[i] for v in want.values()) for i in (0, 1)),
          "%s: totals %s differ from ctd's JSON" % (name, totals))
    return totals


def run(ns, tmp, binary):
    ns.run(["nft", NAT])
    conf = os.path.join(tmp, "nfacctd.conf")
    with open(conf, "w") as f:
        f.write(NFACCTD_CONF % {"port": PORT, "dir": tmp})
    col = ns.start(["nfacctd", "-f", conf], open(os.path.join(tmp, "nfacctd.log"), "w"),
                   subprocess.STDOUT)
    time.sleep(1.5)
    check(col.poll() is None, "nfacctd exited: %s" % open(os.path.join(tmp, "nfacctd.log")).read())
    ctd = Ctd(ns, binary, tmp, ["--ipfix", "udp:127.0.0.1:%d" % PORT,
                                "--ipfix-shape", "uniflow", "--ipfix-nat-event", "none"])
    flows = gen(ns, 20000, 300, 100, 40, 20)
    ns.run(["conntrack", "-F"])
    check(ctd.wait_records(len(flows), 60) is not None,
          "ctd wrote fewer than %d records" % len(flows))
    time.sleep(0.5)
    counters = ctd.stop()
    check(counters.get("out_ipfix_failed") == 0, "ctd lost IPFIX records: %s" % counters)
    want, reply_of = ctd_directions(ctd.records())
    csv_got = wait_rows(os.path.join(tmp, "pmacct.csv"), read_csv, len(want), 30)
    json_got = wait_rows(os.path.join(tmp, "pmacct.json"), read_json, len(want), 30)
    col.kill()
    col.wait(timeout=10)
    nat = sum(1 for f in flows if "nat" in f.tag)
    totals = compare("nfacctd CSV", csv_got, want, reply_of, flows)
    compare("nfacctd JSON", json_got, want, reply_of, flows)
    print("pmacct: %d flows (%d NATed), %d directions in nfacctd's CSV and JSON "
          "equal to ctd's JSON; totals %d packets, %d bytes"
          % (len(flows), nat, len(want), totals[0], totals[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctd", required=True)
    args = ap.parse_args()
    try:
        check(shutil.which("nfacctd"), "nfacctd not found: install the Debian package pmacct")
        with Netns("pm") as ns, tempfile.TemporaryDirectory() as tmp:
            run(ns, tmp, args.ctd)
    except Fail as e:
        print("FAIL:", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

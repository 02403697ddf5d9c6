#!/usr/bin/env python3
"""The Kafka output delivers every record at least once across broker
outages and a restart.

No Kafka broker is packaged for Debian 12: tests/kafka_mock starts
librdkafka's mock cluster (3 brokers on loopback, the real protocol) in
the test's namespace and creates the topic; ctd publishes to it like to
any cluster, and kcat, an independent consumer, reads the topic back.

  outage   all brokers go down; 10,000 UDP flows are made and flushed
           (conntrack -F); the brokers stay down OUTAGE_S seconds (60),
           then come back. ctd holds what it produced until the delivery
           reports say persisted, the rest waits in its dying list.
  restart  the brokers go down again; 2,000 more flows end; ctd gets
           SIGTERM and spools what was never acknowledged; the brokers
           come back; a new ctd replays the spool.

Then every flow must be in the topic, each message the JSON file's record
of that flow field for field, keyed by the flow's original tuple, with a
ctd-dedup header; messages beyond one per record are duplicates that
at-least-once allows, counted and at most 1 %.

Usage: test_kafka.py --ctd PATH --mock PATH
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from ctdns import Ctd, Fail, Netns, check, identity

TOPIC = "ctd-flows"
OUTAGE_S = 60
FIRST, SECOND = 10000, 2000
BASE = 20000

GEN = r"""
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 5555))
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", base + i))
    c.sendto(b"x" * (10 + i % 50), ("127.0.0.1", 5555))
    c.close()
"""


class Mock:
    """tests/kafka_mock in the namespace, driven line by line."""

    def __init__(self, ns, binary):
        self.p = ns.start([binary, TOPIC, "3", "3"], subprocess.PIPE,
                          subprocess.DEVNULL, stdin=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        check(len(line) == 2 and line[0] == "bootstrap",
              "kafka_mock did not start: %r" % line)
        self.bootstrap = line[1]

    def cmd(self, what):
        self.p.stdin.write(what + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        check(ans == "ok", "kafka_mock %s: %s" % (what, ans))


def make_flows(ns, base, n):
    ns.run(["python3", "-c", GEN, str(base), str(n)], timeout=120)
    ns.run(["conntrack", "-F"])


def settled(st):
    return st["out_kafka_unacked"] == 0 and st["out_kafka_dying"] == 0 and \
        st["out_kafka_spool_size"] == 0


def consume(ns, bootstrap):
    """Every message of the topic: (key, headers, value) by kcat."""
    out = ns.run(["kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-o", "beginning",
                  "-e", "-q", "-f", "%k\t%h\t%s\n"], timeout=120)
    msgs = []
    for line in out.splitlines():
        key, hdr, value = line.split("\t", 2)
        msgs.append((key, hdr, json.loads(value)))
    return msgs


def tuple_key(r):
    o = r["orig"]
    return "%d %s %d %s %d %d" % (r["proto_num"], o["src"], o["sport"], o["dst"],
                                  o["dport"], r["zone"])


def ours(r):
    o = r["orig"]
    return r.get("type") == "flow" and o["dport"] == 5555 and \
        BASE <= o["sport"] < BASE + FIRST + SECOND


def verify(msgs, file_records):
    """Returns (flows, messages of ours, duplicates)."""
    want = {r["orig"]["sport"]: r for r in file_records if ours(r)}
    check(len(want) == FIRST + SECOND, "the JSON file has %d of %d flows"
          % (len(want), FIRST + SECOND))
    seen, dedup, n = {}, set(), 0
    for key, hdr, r in msgs:
        if not ours(r):
            continue
        n += 1
        sport = r["orig"]["sport"]
        check(r == want[sport], "message differs from the file's record:\n%s\n%s"
              % (r, want[sport]))
        check(key == tuple_key(r), "key %r is not the tuple %r" % (key, tuple_key(r)))
        name, _, val = hdr.partition("=")
        parts = val.split()
        check(name == "ctd-dedup" and len(parts) == 10 and
              parts[0] == str(r["id"]) and " ".join(parts[1:7]) == key and
              int(parts[7]) // 1000000 == r["start_ms"],
              "bad ctd-dedup header %r for %s" % (hdr, key))
        seen[sport] = seen.get(sport, 0) + 1
        dedup.add(hdr)
    missing = sorted(set(want) - set(seen))
    check(not missing, "%d flows never reached the topic, e.g. %s"
          % (len(missing), missing[:10]))
    check(len(dedup) == len(want), "%d de-duplication keys for %d flows"
          % (len(dedup), len(want)))
    return len(seen), n, n - len(seen)


def run(ns, args, tmp):
    mock = Mock(ns, args.mock)
    kafka = ["--kafka", mock.bootstrap, "--shutdown-timeout", "3"]
    ctd = Ctd(ns, args.ctd, tmp, kafka)
    ctd.wait_stats("a broker up", lambda s: s["out_kafka_brokers_up"] >= 1,
                   20, show="out_kafka")

    mock.cmd("down")
    make_flows(ns, BASE, FIRST)
    check(ctd.wait_records(FIRST, 60) is not None, "JSON records missing")
    time.sleep(args.outage)
    held = ctd.stats()
    check(held["out_kafka_acked"] < FIRST // 10,
          "%d acknowledged while every broker was down" % held["out_kafka_acked"])
    mock.cmd("up")
    st = ctd.wait_stats("every record acknowledged", settled, 120,
                        show="out_kafka")
    print("outage: %d flows, %d s down; held %d produced + %d waiting; after: acked "
          "%d, resent %d, report timeouts %d, errors %d, queue full %d"
          % (FIRST, args.outage, held["out_kafka_unacked"], held["out_kafka_dying"],
             st["out_kafka_acked"], st["out_kafka_resent"],
             st["out_kafka_report_timeouts"], st["out_kafka_report_errors"],
             st["out_kafka_queue_full"]))

    mock.cmd("down")
    before = ctd.count_records()
    make_flows(ns, BASE + FIRST, SECOND)
    check(ctd.wait_records(before + SECOND, 60) is not None, "JSON records missing")
    c1 = ctd.stop()
    # ctd's connections to the brokers that ended are flows too.
    made = len(ctd.records())
    check(made >= FIRST + SECOND, "%d records in the file" % made)
    identity(c1, "json", made)
    k1 = identity(c1, "kafka", made, held=c1["out_kafka_held"])
    check(k1["held"] == k1["spooled"], "held %d at exit, spooled %d"
          % (k1["held"], k1["spooled"]))
    check(c1["out_kafka_spooled"] + c1["out_kafka_spooled_bytes"] > 0,
          "nothing spooled at SIGTERM with every broker down")
    mock.cmd("up")
    ctd = Ctd(ns, args.ctd, tmp, kafka, tag="ctd2")
    ctd.wait_stats("the spool delivered", settled, 120, show="out_kafka")
    c2 = ctd.stop()
    k2 = identity(c2, "kafka", 0)
    check(k2["carried"] == k1["held"], "the next ctd carried %d of %d held"
          % (k2["carried"], k1["held"]))
    print("restart: %d flows; at SIGTERM spooled %d records + %d bytes of held "
          "ones; next ctd replayed %d, resent %d; identity: first ctd records "
          "%d = delivered %d + failed %d + held %d, next carried %d = "
          "delivered %d, held 0"
          % (SECOND, c1["out_kafka_spooled"], c1["out_kafka_spooled_bytes"],
             c2["out_kafka_replayed"], c2["out_kafka_resent"], k1["records"],
             k1["delivered"], k1["failed"], k1["held"], k2["carried"],
             k2["delivered"]))

    flows, n, dup = verify(consume(ns, mock.bootstrap), ctd.records())
    print("kafka: %d flows, %d messages, %d duplicates (%.2f %%)"
          % (flows, n, dup, 100.0 * dup / n))
    check(dup <= n // 100, "%d duplicates: more than 1 %%" % dup)
    mock.p.stdin.write("quit\n")
    mock.p.stdin.close()
    check(mock.p.wait(timeout=20) == 0, "kafka_mock failed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctd", required=True)
    ap.add_argument("--mock", required=True)
    ap.add_argument("--outage", type=int, default=OUTAGE_S,
                    help="seconds the brokers stay down (default 60)")
    args = ap.parse_args()
    try:
        check(subprocess.run(["sh", "-c", "command -v kcat"],
                             capture_output=True).returncode == 0,
              "kcat is missing (apt-get install kcat)")
        with Netns("kafka") as ns, tempfile.TemporaryDirectory() as tmp:
            ns.sysctl("nf_conntrack_acct", 1)
            run(ns, args, tmp)
    except Fail as e:
        print("FAIL:", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

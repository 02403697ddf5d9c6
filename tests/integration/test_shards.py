#!/usr/bin/env python3
"""The shard filters partition the kernel's DESTROY events (issue 31).

In a namespace of its own, shardprobe opens N reliable DESTROY listeners
(NETLINK_BROADCAST_ERROR), listener k with ctd's classic BPF filter for
shard k of N, and one listener without a filter: the kernel's own view.
FLOWS UDP flows end at once (`conntrack -F`). Every CTA_ID the unfiltered
listener saw was read by exactly one shard, the one its id names (id % N),
and no shard read an id the kernel did not send: the filters the kernel
ran are disjoint and complete. Run for N = 2 and 3.

Usage: test_shards.py --ctd PATH --probe PATH
"""
import collections
import subprocess

import ctdns
from ctdns import check, flows

FLOWS = 3000


def probe_run(ns, probe, n):
    p = ns.start([probe, str(n), str(FLOWS), "60"], subprocess.PIPE,
                 subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise ctdns.Fail("shardprobe did not start: " + p.stderr.read())
    made = ns.traffic(flows("udp", FLOWS, sport=20000))
    check(len(made) == FLOWS, "traffic made %d flows" % len(made))
    ns.run(["conntrack", "-F"])
    out, err = p.communicate(timeout=90)
    check(p.returncode == 0, "shardprobe: %s (%d lines, %d unfiltered)"
          % (err, len(out.splitlines()), out.count("all ")))
    seen = collections.defaultdict(list)
    for line in out.splitlines():
        tag, ident = line.split()
        seen[tag].append(int(ident))
    return seen


def check_partition(seen, n):
    # Every DESTROY once: CTA_ID is a 32-bit hash, so two of 3,000
    # conntracks may share one (about 1 run in 1,000); the ids are then
    # compared as multisets, each id as often in the shards as here.
    kernel = collections.Counter(seen["all"])
    check(sum(kernel.values()) == FLOWS,
          "unfiltered listener: %d DESTROYs for %d flows"
          % (sum(kernel.values()), FLOWS))
    got = collections.Counter()
    for k in range(n):
        ids = seen.get(str(k), [])
        wrong = [i for i in ids if i % n != k]
        check(not wrong, "shard %d read ids of other shards: %s" % (k, wrong[:5]))
        check(len(ids) > FLOWS // (2 * n), "shard %d read only %d of %d"
              % (k, len(ids), FLOWS))
        got.update(ids)
    doubled = [i for i, c in got.items() if c > kernel.get(i, 0)]
    missing = [i for i, c in kernel.items() if got.get(i, 0) < c]
    extra = [i for i in got if i not in kernel]
    check(not doubled and not missing and not extra,
          "%d shards: %d doubled, %d missing, %d not from the kernel"
          % (n, len(doubled), len(missing), len(extra)))
    return [len(seen.get(str(k), [])) for k in range(n)]


def main(args):
    for n in (2, 3):
        with ctdns.sandbox("sh%d" % n) as (ns, _):
            parts = check_partition(probe_run(ns, args.probe, n), n)
            print("shards %d: %d DESTROYs, each read by exactly one shard "
                  "(%s), the one its CTA_ID names" % (n, FLOWS, parts))


def arguments(ap):
    ap.add_argument("--probe", required=True, help="the shardprobe binary")


if __name__ == "__main__":
    ctdns.main(main, arguments)

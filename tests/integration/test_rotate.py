#!/usr/bin/env python3
"""Log rotation loses nothing: while flows keep ending, the record file is
renamed and ctd gets SIGHUP (what logrotate does), several times. Every
flow must have exactly one record across the rotated files and the new
one, and every file must hold whole JSON lines only.

Then without any signal: while flows end, the record file is deleted
(`rm`), and later moved away (`mv`). ctd notices each within a flush,
opens the path again and copies what it wrote into the deleted file into
the new one: every flow exactly once across the moved file and the new
one, none only in the deleted file, files_gone counted.

Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555, made in
batches; each batch is ended by `conntrack -F` while the next rotation
happens.

Usage: test_rotate.py --ctd PATH
"""
import json
import os
import signal
import time

import ctdns
from ctdns import Ctd, Fail, check, flows

BATCHES, PER_BATCH, BASE = 6, 5000, 20000


def read_lines(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    check(not data or data.endswith(b"\n"), "%s ends in a partial line" % path)
    for i, line in enumerate(data.splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise Fail("%s line %d is not JSON: %s" % (path, i, e))
    return out


def main(args):
    with ctdns.sandbox("ro") as (ns, tmp):
        ctd = Ctd(ns, args.ctd, tmp, [])
        rotated = []
        want = set()
        for b in range(BATCHES):
            want |= {f.sport for f in ns.traffic(
                flows("udp", PER_BATCH, sport=BASE + b * PER_BATCH))}
            # The flush's DESTROYs are being written while we rotate.
            flush = ns.start(["conntrack", "-F"], open(os.devnull, "w"),
                             open(os.devnull, "w"))
            # Different points in the flush: some records before the
            # rename, some buffered across it, some after.
            time.sleep(0.004 * b)
            old = "%s.%d" % (ctd.json, b)
            os.rename(ctd.json, old)
            rotated.append(old)
            os.kill(ctd.proc.pid, signal.SIGHUP)
            check(flush.wait(timeout=30) == 0, "conntrack -F failed")
        end = time.time() + 60
        while time.time() < end:
            total = sum(sum(1 for _ in open(p, "rb"))
                        for p in rotated + [ctd.json] if os.path.exists(p))
            if total >= len(want):
                break
            time.sleep(0.2)
        counters = ctd.stop()
        # (a rename may also be noticed before its SIGHUP: one more)
        check(ctd.log_text().count("reopened") >= BATCHES,
              "ctd did not reopen its file on every SIGHUP:\n" + ctd.log_text())
        seen = {}
        for p in rotated + [ctd.json]:
            for r in read_lines(p):
                o = r["orig"]
                if o["dport"] == 5555 and o["sport"] in want:
                    seen[o["sport"]] = seen.get(o["sport"], 0) + 1
        missing = sorted(want - set(seen))
        doubled = sorted(k for k, v in seen.items() if v > 1)
        check(not missing and not doubled,
              "%d flows: %d missing %s, %d doubled %s"
              % (len(want), len(missing), missing[:5], len(doubled), doubled[:5]))
        check(counters.get("out_json_failed") == 0, "records lost: %s"
              % counters.get("out_json_failed"))
        c = ctdns.identity(counters, "json", len(want))
        sizes = [sum(1 for _ in open(p, "rb")) for p in rotated + [ctd.json]]
        print("rotate: %d flows over %d rotations, each recorded exactly "
              "once; records per file %s; records %d = delivered %d, held 0"
              % (len(want), BATCHES, sizes, c["records"], c["delivered"]))


def gone(args):
    """rm, then mv, of the record file mid-run, with no signal at all."""
    with ctdns.sandbox("rg") as (ns, tmp):
        ctd = Ctd(ns, args.ctd, tmp, [])
        moved = ctd.json + ".moved"
        want = set()
        for b, act in enumerate(["rm", "mv", None]):
            want |= {f.sport for f in ns.traffic(
                flows("udp", PER_BATCH, sport=BASE + b * PER_BATCH))}
            flush = ns.start(["conntrack", "-F"], open(os.devnull, "w"),
                             open(os.devnull, "w"))
            time.sleep(0.01)
            if act == "rm":
                os.unlink(ctd.json)
            elif act == "mv":
                # ctd makes the file again at its first write after the rm
                end = time.time() + 10
                while not os.path.exists(ctd.json):
                    check(time.time() < end, "no new file after the rm")
                    time.sleep(0.005)
                os.rename(ctd.json, moved)
            check(flush.wait(timeout=30) == 0, "conntrack -F failed")
            time.sleep(0.5)
        ctd.wait_records(1, 5)
        time.sleep(1)
        counters = ctd.stop()
        seen = {}
        for p in (moved, ctd.json):
            for r in read_lines(p):
                o = r["orig"]
                if o["dport"] == 5555 and o["sport"] in want:
                    seen[o["sport"]] = seen.get(o["sport"], 0) + 1
        first = {BASE + i for i in range(PER_BATCH)}
        missing = sorted(want - first - set(seen))
        doubled = sorted(k for k, v in seen.items() if v > 1)
        check(not missing and not doubled,
              "%d flows after the rm: %d missing %s, %d doubled %s"
              % (len(want - first), len(missing), missing[:5], len(doubled),
                 doubled[:5]))
        check(counters.get("out_json_gone", 0) >= 2,
              "ctd did not notice the rm and the mv: %s"
              % counters.get("out_json_gone"))
        c = ctdns.identity(counters, "json", len(want))
        print("gone: %d flows; the file deleted mid-flush and then moved, "
              "no signal: every flow after the rm exactly once (%d of the "
              "first batch's records survive: what ctd wrote since its last "
              "look, %d bytes, was copied anew); noticed %d times; records "
              "%d = delivered %d, held 0"
              % (len(want), len(first & set(seen)),
                 counters.get("out_json_recovered_bytes", 0),
                 counters.get("out_json_gone", 0), c["records"],
                 c["delivered"]))


def run(args):
    main(args)
    gone(args)


if __name__ == "__main__":
    ctdns.main(run)

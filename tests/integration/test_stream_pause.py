#!/usr/bin/env python3
"""A stream reader that stops reading loses nothing and gets nothing twice.

ctd serves records on --stream. A reader connects, then stops reading for
--pause seconds (default 10; 30 under label soak; the connection stays open) while 5,000 UDP flows are made and ended
by `conntrack -F`: ctd's buffers for it fill, and ctd must hold the rest
back (dying list) rather than drop them. Then the reader resumes and must
receive each flow exactly once. A second reader phase: the reader
disconnects, 500 more flows end with nobody connected, and a new reader
must receive exactly those 500.

Ground truth: UDP flows 127.0.0.1:(base+i) -> 127.0.0.1:5555, one packet
each; dedupe key id + orig tuple + start_ms.

Usage: test_stream_pause.py --ctd PATH [--pause SECS]
"""
import json
import os
import socket
import time

import ctdns
from ctdns import Ctd, Fail, check, flows

PAUSE_S, FLOWS, LATER = 10, 5000, 500


class Reader:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A small receive buffer, so a pause fills it quickly.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.sock.connect(path)
        self.buf = b""

    def read_until(self, n, secs):
        end = time.time() + secs
        while self.buf.count(b"\n") < n and time.time() < end:
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                break
            check(chunk, "ctd closed the stream")
            self.buf += chunk
        return self.records()

    def records(self):
        lines = self.buf.split(b"\n")
        out = []
        for i, line in enumerate(lines[:-1], 1):
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise Fail("stream line %d is not JSON: %s" % (i, e))
        return out


def tally(records, want):
    counts = {}
    for r in records:
        o = r["orig"]
        if o["dport"] == 5555 and o["sport"] in want:
            counts[o["sport"]] = counts.get(o["sport"], 0) + 1
    missing = sorted(want - set(counts))
    doubled = sorted(k for k, v in counts.items() if v > 1)
    return len(counts), missing, doubled


def main(args):
    with ctdns.sandbox("sp") as (ns, tmp):
        path = os.path.join(tmp, "stream.sock")
        ctd = Ctd(ns, args.ctd, tmp, ["--stream", path, "--grace", "5"])
        reader = Reader(path)
        time.sleep(0.5)
        t0 = time.time()
        want = {f.sport for f in ns.traffic(flows("udp", FLOWS, sport=30000))}
        ns.run(["conntrack", "-F"])
        # The reader does not read now; ctd must not block or drop.
        time.sleep(max(0, args.pause - (time.time() - t0)))
        check(ctd.proc.poll() is None, "ctd died while the reader paused")
        got, missing, doubled = tally(reader.read_until(FLOWS, 60), want)
        check(not missing and not doubled,
              "after the pause: %d of %d, %d missing %s, %d doubled %s"
              % (got, FLOWS, len(missing), missing[:5], len(doubled), doubled[:5]))
        reader.sock.close()
        time.sleep(0.5)

        later = {f.sport for f in ns.traffic(flows("udp", LATER, sport=40000))}
        ns.run(["conntrack", "-F"])
        time.sleep(1)
        reader2 = Reader(path)
        got2, missing2, doubled2 = tally(reader2.read_until(LATER, 30), later)
        extra = [r for r in reader2.records() if r["orig"]["sport"] in want]
        check(not missing2 and not doubled2 and not extra,
              "reconnect: %d of %d, %d missing %s, %d doubled, %d old "
              "records again" % (got2, LATER, len(missing2), missing2[:5],
                                 len(doubled2), len(extra)))
        reader2.sock.close()
        counters = ctd.stop()
        deferred = counters.get("out_stream_deferred", 0)
        check(deferred > 0, "the pause never made ctd hold records back "
              "(out_stream_deferred 0): the test proves nothing")
        check(counters.get("out_stream_failed") == 0 and
              counters.get("out_json_failed") == 0,
              "records lost: stream %s json %s"
              % (counters.get("out_stream_failed"), counters.get("out_json_failed")))
        for name in ("stream", "json"):
            ctdns.identity(counters, name, FLOWS + LATER)
        print("stream: %d flows while the reader paused %d s: %d received "
              "exactly once (%d held back, peak %d on the dying list); "
              "%d flows while no reader was connected: %d received once; "
              "identity: records %d = delivered %d + failed 0 + held 0"
              % (FLOWS, args.pause, got, deferred,
                 counters.get("out_stream_dying_peak", 0), LATER, got2,
                 counters["out_stream_records"],
                 counters["out_stream_delivered"]))


def arguments(ap):
    ap.add_argument("--pause", type=int, default=PAUSE_S,
                    help="seconds the reader does not read")


if __name__ == "__main__":
    ctdns.main(main, arguments)
